//! refreshd: a session server that keeps users logged in with rotating refresh tokens.

pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod startup;
pub mod store;
pub mod tokens;

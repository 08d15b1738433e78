//! refreshd: a session server that keeps users logged in with rotating refresh tokens.
//!
//! The layers depend one way: `http -> auth -> {tokens, store} -> domain`, with `config` and
//! `metrics` as leaves that depend on nothing. Only `startup` sees every layer; the command line
//! (`main.rs` and `cli`) reaches the server through it. Each module's `//!` comment says what it
//! may depend on, and tests/api/boundaries.rs fails on an import that breaks it.

pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod startup;
pub mod store;
pub mod tokens;

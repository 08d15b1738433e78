//! The only module that speaks HTTP: the route table, the two APIs' handlers, the cookie builder,
//! token extraction, CSRF, CORS and the mapping of outcomes to statuses and bodies. Handlers call
//! `auth` and nothing deeper: nothing here imports `store` or `tokens`.
//!
//! Inside, dependencies point one way: `routes` (the table) -> `openapi` -> `router`, and
//! `routes` -> the handlers (`cookie_api`, `token_api`, `ops`, `pages`) -> `state`, `body`,
//! `cookies`, `csrf`, `extract`, `outcomes` -> `error`.

pub mod body;
pub mod cookie_api;
pub mod cookies;
pub mod csrf;
pub mod deadline;
pub mod device;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod ops;
pub mod outcomes;
pub mod pages;
pub mod router;
pub mod routes;
pub mod state;
pub mod token_api;

use actix_cors::Cors;
use actix_web::http::{Method, header};

use crate::config::Settings;

pub use self::state::AppState;

/// CORS for exactly the listed origins, with credentials. With no list, no cross-origin
/// request is allowed.
pub fn cors(settings: &Settings) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allowed_headers([header::CONTENT_TYPE, header::AUTHORIZATION, header::ACCEPT])
        .supports_credentials()
        .max_age(600);
    for origin in &settings.cors_allowed_origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

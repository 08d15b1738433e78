//! The only module that speaks HTTP: routes, the cookie builder, token extraction, CSRF, CORS and
//! the mapping of outcomes to statuses and bodies. Handlers call `auth` flows and nothing deeper.

pub mod cookies;
pub mod csrf;
pub mod deadline;
pub mod device;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod pages;
pub mod routes;
pub mod simplejwt;

use std::sync::Arc;

use actix_cors::Cors;
use actix_web::http::{Method, header};
use ipnet::IpNet;

use crate::auth::AuthService;
use crate::config::Settings;
use crate::metrics::Metrics;

use self::cookies::CookieJar;
use self::csrf::CsrfPolicy;

/// Everything a handler may use, built once at start.
pub struct AppState {
    pub auth: AuthService,
    pub cookies: CookieJar,
    pub csrf: CsrfPolicy,
    pub trusted_proxies: Vec<IpNet>,
    pub prefixes: routes::RoutePrefixes,
    pub metrics: Arc<Metrics>,
    /// Outside production the page offers the demo user's name and password when that user
    /// exists (the in-process store's, or one that `docker compose` made in Redis).
    pub demo_hint: bool,
    /// False with METRICS_ADDR: /metrics is served on the private listener, not here.
    pub public_metrics: bool,
    /// ACCESS_TOKEN_LIFETIME, for the page's note on seeing a silent refresh.
    pub access_token_lifetime: std::time::Duration,
}

impl AppState {
    pub fn new(settings: &Settings, auth: AuthService, metrics: Arc<Metrics>) -> Self {
        Self {
            auth,
            cookies: CookieJar::new(settings),
            csrf: CsrfPolicy {
                public_origin: settings.public_origin.clone(),
                allowed: settings.cors_allowed_origins.clone(),
                trusted_proxies: settings.trusted_proxies.clone(),
            },
            trusted_proxies: settings.trusted_proxies.clone(),
            prefixes: routes::RoutePrefixes {
                cookie_api: settings.cookie_api_prefix.clone(),
                token_api: settings.token_api_prefix.clone(),
            },
            metrics,
            demo_hint: !settings.production,
            public_metrics: settings.metrics_addr.is_none(),
            access_token_lifetime: settings.access_token_lifetime,
        }
    }
}

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

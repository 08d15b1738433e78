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

use crate::auth::AuthService;
use crate::config::{BrowserSettings, RouteSettings, Settings};
use crate::metrics::Metrics;

use self::cookies::CookieJar;

/// Everything a handler may use, built once at start.
pub struct AppState {
    pub auth: AuthService,
    pub cookies: CookieJar,
    /// CORS origins, PUBLIC_ORIGIN and TRUSTED_PROXIES: the CSRF check and client addresses.
    pub browser: BrowserSettings,
    pub routes: RouteSettings,
    pub metrics: Arc<Metrics>,
    /// Outside production the page offers the demo user's name and password when that user
    /// exists (the in-process store's, or one that `docker compose` made in Redis).
    pub demo_hint: bool,
    /// False with METRICS_ADDR: /metrics is served on the private listener, not here.
    pub public_metrics: bool,
}

impl AppState {
    pub fn new(settings: &Settings, auth: AuthService, metrics: Arc<Metrics>) -> Self {
        Self {
            auth,
            cookies: CookieJar::new(&settings.cookies),
            browser: settings.browser.clone(),
            routes: settings.routes.clone(),
            metrics,
            demo_hint: !settings.server.production,
            public_metrics: settings.server.metrics_addr.is_none(),
        }
    }
}

/// CORS for exactly the listed origins, with credentials. With no list, no cross-origin
/// request is allowed.
pub fn cors(browser: &BrowserSettings) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allowed_headers([header::CONTENT_TYPE, header::AUTHORIZATION, header::ACCEPT])
        .supports_credentials()
        .max_age(600);
    for origin in &browser.allowed_origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

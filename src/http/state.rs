//! What every handler may use, built once at start. Depends on the `http` modules it holds (the
//! cookie builder) and on `auth`, `config` and `metrics`; never on a handler.

use std::sync::Arc;

use super::cookies::CookieJar;
use crate::auth::AuthService;
use crate::config::{BrowserSettings, RouteSettings, Settings};
use crate::metrics::Metrics;

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

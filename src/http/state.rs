//! What every handler may use, built once at start. Depends on the `http` modules it holds
//! (cookies, CSRF, the route prefixes) and on `auth`, `config` and `metrics`; never on a handler.

use std::sync::Arc;

use ipnet::IpNet;

use super::cookies::CookieJar;
use super::csrf::CsrfPolicy;
use super::router::RoutePrefixes;
use crate::auth::AuthService;
use crate::config::Settings;
use crate::metrics::Metrics;

/// Everything a handler may use, built once at start.
pub struct AppState {
    pub auth: AuthService,
    pub cookies: CookieJar,
    pub csrf: CsrfPolicy,
    pub trusted_proxies: Vec<IpNet>,
    pub prefixes: RoutePrefixes,
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
            prefixes: RoutePrefixes {
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

//! Settings, in groups named for the layer that reads them (`server`, `store`, `tokens`,
//! `sessions`, `cookies`, `browser`, `routes`). Every environment variable is declared once, in
//! `VARIABLES`: name, default, one-line doc, whether it is secret, and how `check-config` shows it;
//! `describe`, `.env.example` and the README's settings table all come from that table (tests keep
//! the two files equal to it: `UPDATE_SETTINGS_DOCS=1 cargo test --lib config` rewrites them).
//! Reading reports every problem at once, naming the variable and the fix. Reads nothing by
//! itself: callers pass a lookup function (main passes the environment, tests pass a map).
//! Depends on no other module of the crate.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

/// One environment variable: everything said about it anywhere is said here.
pub struct Variable {
    pub name: &'static str,
    /// The value when unset ("": none).
    pub default: &'static str,
    /// One line for `.env.example` and the README's table (Markdown: `code` spans).
    pub doc: &'static str,
    /// Holds a password or key: never shown as given.
    pub secret: bool,
    /// May be given as `NAME_FILE`, the path of a file holding the value.
    pub from_file: bool,
    /// The effective value as `check-config` shows it; `None` for a variable read elsewhere.
    show: Option<fn(&Settings) -> String>,
}

const fn var(
    name: &'static str,
    default: &'static str,
    doc: &'static str,
    show: fn(&Settings) -> String,
) -> Variable {
    Variable {
        name,
        default,
        doc,
        secret: false,
        from_file: false,
        show: Some(show),
    }
}

impl Variable {
    const fn secret(self) -> Self {
        Variable {
            secret: true,
            ..self
        }
    }

    /// A secret that may also come from a file (`NAME_FILE`).
    const fn secret_or_file(self) -> Self {
        Variable {
            secret: true,
            from_file: true,
            ..self
        }
    }

    /// Read by something other than `Settings` (RUST_LOG: the logger), so not shown.
    const fn read_elsewhere(self) -> Self {
        Variable { show: None, ..self }
    }
}

/// Every variable the server reads, in the order `check-config`, `.env.example` and the README
/// list them.
pub const VARIABLES: &[Variable] = &[
    var(
        "APP_ENV",
        "development",
        "`development` or `production`; `production` refuses to start without a `SIGNING_KEY` of at least 32 bytes, without a Redis (`REDIS_URL`, `REDIS_CLUSTER_NODES` or `REDIS_SENTINELS`), with `COOKIE_SECURE=false`, or while an active user `demo` has the password `demo` (the docker compose demo leaves one in its Redis: `refreshd user deactivate demo`)",
        |s| if s.server.production { "production" } else { "development" }.into(),
    ),
    var(
        "BIND_ADDR",
        "127.0.0.1:8000",
        "`host:port` to listen on: `0.0.0.0:8000` for every interface, `[::]:8000` for IPv6, `localhost:8000` (a name is resolved)",
        |s| s.server.bind_addr.show(),
    ),
    var(
        "WORKERS",
        "0",
        "HTTP worker threads; `0` is one per CPU core",
        |s| match s.server.workers {
            0 => "0 (one per core)".into(),
            n => n.to_string(),
        },
    ),
    var(
        "REDIS_URL",
        "",
        "Redis URL (`redis://[user:password@]host:port[/db]`, or `rediss://` for TLS, always verified, host name included); unset means the in-process store (no set-up, lost on restart, one instance only)",
        |s| match s.store.redis_url() {
            Some(url) => redact_url(&url.expose_text()),
            None if s.store.is_in_process() => "(unset: in-process store)".into(),
            None => "(unset)".into(),
        },
    )
    .secret_or_file(),
    var(
        "REDIS_CLUSTER_NODES",
        "",
        "a Redis Cluster instead of `REDIS_URL`: its seed nodes, comma-separated `redis://host:port` (or all `rediss://`)",
        |s| match &s.store.backend {
            Backend::Cluster { nodes } => nodes
                .iter()
                .map(|u| redact_url(&u.expose_text()))
                .collect::<Vec<_>>()
                .join(","),
            _ => String::new(),
        },
    )
    .secret(),
    var(
        "REDIS_SENTINELS",
        "",
        "Redis Sentinel instead: comma-separated sentinels (`host:port`) that name the master, followed through a failover; `REDIS_URL`, if set, then gives only the data nodes' scheme (`rediss://` for TLS), user, password and database (see Running in production)",
        |s| match &s.store.backend {
            Backend::Sentinel { sentinels, .. } => sentinels.show(),
            _ => String::new(),
        },
    ),
    var(
        "REDIS_SENTINEL_MASTER",
        "",
        "the name of the master group the sentinels monitor (required with `REDIS_SENTINELS`)",
        |s| match &s.store.backend {
            Backend::Sentinel { master, .. } => master.show(),
            _ => None::<String>.show(),
        },
    ),
    var(
        "REDIS_SENTINEL_PASSWORD",
        "",
        "the sentinels' own password (their `requirepass`), if they have one",
        |s| match &s.store.backend {
            Backend::Sentinel { password, .. } => password.show(),
            _ => None::<Secret>.show(),
        },
    )
    .secret(),
    var(
        "REDIS_CA_FILE",
        "",
        "for `rediss://`: a PEM file of the only CA certificates trusted; unset means the system's roots",
        |s| s.store.ca_file.show(),
    ),
    var(
        "REDIS_CLIENT_CERT_FILE",
        "",
        "for mutual TLS: the client certificate (PEM), with `REDIS_CLIENT_KEY_FILE` (both or neither)",
        |s| s.store.client_cert_file.show(),
    ),
    var(
        "REDIS_CLIENT_KEY_FILE",
        "",
        "for mutual TLS: the client certificate's private key (PEM)",
        |s| s.store.client_key_file.show(),
    ),
    var(
        "STORE_TIMEOUT",
        "2s",
        "longest wait for one store call before answering 503 (the server fails closed)",
        |s| s.store.timeout.show(),
    ),
    var(
        "REDIS_MIN_REPLICAS",
        "0",
        "replicas that must hold each write a client is told about (Redis `WAIT`, within `STORE_TIMEOUT`), else 503; `/readyz` is 503 while fewer are online; `0`: none",
        |s| s.store.min_replicas.show(),
    ),
    var(
        "SHUTDOWN_TIMEOUT",
        "10s",
        "after SIGTERM or SIGINT, how long requests in flight may take to finish before the server exits",
        |s| s.server.shutdown_timeout.show(),
    ),
    var(
        "REQUEST_BODY_TIMEOUT",
        "10s",
        "how long a request body may take to arrive once the head has (the head itself has 5 s); then `408 {\"detail\": \"Request body timed out.\"}` and the connection is closed, on every route",
        |s| s.server.request_body_timeout.show(),
    ),
    var(
        "MAX_CONNECTIONS",
        "0",
        "open connections at most, all workers together; `0` takes the open-file limit (`ulimit -n`) less 64 descriptors kept for Redis, files and the log. Past half of it, each new connection cuts off (408) the request that has waited longest for its body",
        |s| match s.server.max_connections {
            0 => "0 (from the descriptor limit)".into(),
            n => n.to_string(),
        },
    ),
    var(
        "SIGNING_KEY",
        "",
        "the key that signs tokens: an HMAC secret for HS* (SimpleJWT's `SIGNING_KEY`; a Django app's `SECRET_KEY` when sharing tokens), or a PEM private key (PKCS#8, PKCS#1 or SEC1); unset: a random development key, made and announced at start",
        |s| match &s.tokens.signing_key {
            SigningKey::Generated { .. } => "(random development key)".into(),
            SigningKey::Hmac { secret: key, .. } | SigningKey::Pem { private_key: key, .. } => {
                format!("(set, {} bytes)", key.expose().len())
            }
        },
    )
    .secret_or_file(),
    var(
        "ALGORITHM",
        "HS256",
        "`HS256`, `HS384`, `HS512` (shared secret) or `RS256`, `RS384`, `RS512`, `ES256`, `ES384`, `EdDSA` (PEM keys)",
        |s| s.tokens.algorithm().as_str().into(),
    ),
    var(
        "VERIFYING_KEY",
        "",
        "the public key (PEM) for RS*/ES*/EdDSA; derived from `SIGNING_KEY` when unset, refused when it is not its public half; unused with HS*",
        |s| s.tokens.verifying_key.show(),
    )
    .secret_or_file(),
    var(
        "RETIRED_KEYS_DIR",
        "",
        "a directory of keys retired by a rotation (public PEMs, or files holding old HS secrets), still accepted until their tokens expire, and listed in the JWKS",
        |s| s.tokens.retired_keys_dir.show(),
    ),
    var(
        "ACCESS_TOKEN_LIFETIME",
        "15m",
        "life of an access token",
        |s| s.sessions.access_lifetime.show(),
    ),
    var(
        "REFRESH_TOKEN_LIFETIME",
        "30d",
        "life of a refresh token; each rotation issues a new one with a fresh expiry",
        |s| s.sessions.refresh_lifetime.show(),
    ),
    var(
        "ROTATE_REFRESH_TOKENS",
        "true",
        "issue a new refresh token on every refresh; when false the same token is set again with its remaining life",
        |s| s.sessions.rotate_refresh_tokens.show(),
    ),
    var(
        "BLACKLIST_AFTER_ROTATION",
        "true",
        "blacklist the presented token after rotation; reuse detection needs it (when false, rotated-out tokens stay valid until they expire, as in SimpleJWT, and the start-up log warns)",
        |s| s.sessions.blacklist_after_rotation.show(),
    ),
    var(
        "REFRESH_TOKEN_REUSE_INTERVAL",
        "10s",
        "how long a retired refresh token is still forgiven (answered with the session's newest token, for concurrent tabs), counted from its own retirement; after that it is reuse",
        |s| s.sessions.reuse_interval.show(),
    ),
    var(
        "LEEWAY",
        "0",
        "clock skew allowed when checking `exp` and `nbf`",
        |s| s.tokens.leeway.show(),
    ),
    var(
        "ISSUER",
        "",
        "`iss` claim written and required; unset: none written, and tokens are not checked for it",
        |s| s.tokens.issuer.show(),
    ),
    var(
        "AUDIENCE",
        "",
        "`aud` claim written and required; unset: none written, and a token that carries one is refused",
        |s| s.tokens.audience.show(),
    ),
    var(
        "USER_ID_CLAIM",
        "user_id",
        "name of the claim that holds the user id",
        |s| s.tokens.user_id_claim.show(),
    ),
    var(
        "ACCESS_COOKIE_NAME",
        "access_token",
        "name of the access token cookie",
        |s| s.cookies.access_name.show(),
    ),
    var(
        "REFRESH_COOKIE_NAME",
        "refresh_token",
        "name of the refresh token cookie",
        |s| s.cookies.refresh_name.show(),
    ),
    var(
        "COOKIE_DOMAIN",
        "",
        "Domain attribute of both cookies; unset means host-only cookies",
        |s| s.cookies.domain.show(),
    ),
    var(
        "COOKIE_SECURE",
        "",
        "Secure attribute of both cookies; unset means `false`, or `true` with `APP_ENV=production`",
        |s| s.cookies.secure.show(),
    ),
    var(
        "COOKIE_SAMESITE",
        "Lax",
        "SameSite attribute: `Lax`, `Strict` or `None` (`None` requires `COOKIE_SECURE=true`)",
        |s| s.cookies.same_site.as_str().into(),
    ),
    var(
        "REFRESH_COOKIE_PATH",
        "/",
        "Path attribute of the refresh cookie (the access cookie always has `Path=/`)",
        |s| s.cookies.refresh_path.show(),
    ),
    var(
        "CORS_ALLOWED_ORIGINS",
        "",
        "exact origins allowed to call with credentials, comma-separated (never `*`)",
        |s| s.browser.allowed_origins.show(),
    ),
    var(
        "PUBLIC_ORIGIN",
        "",
        "this server's own origin for the CSRF check, such as `https://auth.example.com`; unset means each request's scheme and Host",
        |s| s.browser.public_origin.show(),
    ),
    var(
        "SESSION_MAX_LIFETIME",
        "",
        "absolute limit on a session's life from login, across rotations; unset: none",
        |s| s.sessions.max_lifetime.show(),
    ),
    var(
        "SESSION_IDLE_TIMEOUT",
        "",
        "a session not refreshed for this long ends (checked on every refresh); unset: none",
        |s| s.sessions.idle_timeout.show(),
    ),
    var(
        "ADOPT_FOREIGN_TOKENS",
        "true",
        "refresh tokens minted elsewhere (a SimpleJWT app sharing the key; no `sid`) start a session at their first refresh here; `false` refuses them",
        |s| s.sessions.adopt_foreign_tokens.show(),
    ),
    var(
        "LOGIN_MAX_FAILURES",
        "10",
        "failed logins per username or per client address before 429 (an IPv6 client counts by its /64 prefix, `::ffff:a.b.c.d` as the IPv4 address); `0` turns limiting off",
        |s| s.sessions.login_max_failures.show(),
    ),
    var(
        "LOGIN_FAILURE_WINDOW",
        "15m",
        "window in which failed logins count",
        |s| s.sessions.login_failure_window.show(),
    ),
    var(
        "TRUSTED_PROXIES",
        "",
        "proxies whose `X-Forwarded-For` (and, for the CSRF check's own origin, `X-Forwarded-Host`/`-Proto`) is believed: comma-separated addresses or CIDR ranges",
        |s| s.browser.trusted_proxies.show(),
    ),
    var(
        "COOKIE_API_PREFIX",
        "/api/auth/",
        "where the cookie API lives: `<prefix>login/`, `<prefix>token/refresh/`, `<prefix>logout/`, `<prefix>me/`",
        |s| s.routes.cookie_api.show(),
    ),
    var(
        "TOKEN_API_PREFIX",
        "/api/token/",
        "where the SimpleJWT-compatible JSON API lives: `<prefix>`, `<prefix>refresh/`, `<prefix>verify/`, `<prefix>blacklist/`",
        |s| s.routes.token_api.show(),
    ),
    var(
        "RUST_LOG",
        "info",
        "log filter (env_logger syntax), such as `info` or `refreshd=debug`",
        |_| String::new(),
    )
    .read_elsewhere(),
    var(
        "LOG_FORMAT",
        "text",
        "`text`, or `json` for one JSON object per line (for log shippers)",
        |s| if s.server.log_json { "json" } else { "text" }.into(),
    ),
    var(
        "METRICS",
        "true",
        "count and time requests for `GET /metrics`; `false` takes even those atomic adds off the hot path",
        |s| s.server.metrics.show(),
    ),
    var(
        "METRICS_ADDR",
        "",
        "a private `host:port` (such as `127.0.0.1:9100`) serving `/metrics` and `/readyz`; with it, `/metrics` leaves the public listener (404 there)",
        |s| match &s.server.metrics_addr {
            Some(addr) => addr.clone(),
            None => "(unset: /metrics on BIND_ADDR)".into(),
        },
    ),
];

/// The declaration of `name`.
pub fn variable(name: &str) -> Option<&'static Variable> {
    VARIABLES.iter().find(|v| v.name == name)
}

/// The declared default of `name` ("" when it has none).
///
/// # Panics
/// When `name` is not declared in `VARIABLES`: reading an undeclared variable is a bug.
pub fn default_of(name: &str) -> &'static str {
    variable(name)
        .unwrap_or_else(|| panic!("{name} is missing from config::VARIABLES"))
        .default
}

/// Whether the server reads `name`: a declared variable, or the `_FILE` twin of one that may come
/// from a file.
pub fn is_variable(name: &str) -> bool {
    variable(name).is_some()
        || name
            .strip_suffix("_FILE")
            .and_then(variable)
            .is_some_and(|v| v.from_file)
}

/// The shortest HMAC key accepted in production (RFC 7518 §3.2: at least the hash size).
pub const MIN_HMAC_KEY_BYTES: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    ES256,
    ES384,
    EdDSA,
}

impl Algorithm {
    pub const ALL: [Algorithm; 9] = [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// HMAC: one shared secret signs and verifies.
    pub fn is_hmac(self) -> bool {
        matches!(self, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SameSite {
    Lax,
    Strict,
    None,
}

impl SameSite {
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
            SameSite::None => "None",
        }
    }
}

/// A secret that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
    /// The value as text (a URL, a password), invalid UTF-8 replaced.
    pub fn expose_text(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Every setting, grouped by the layer that reads it; each layer is handed its group.
#[derive(Clone, Debug)]
pub struct Settings {
    pub server: ServerSettings,
    pub store: StoreSettings,
    pub tokens: TokenSettings,
    pub sessions: SessionSettings,
    pub cookies: CookieSettings,
    pub browser: BrowserSettings,
    pub routes: RouteSettings,
}

/// The process: its listeners, workers, shutdown, logs and metrics (`startup` and `main`).
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// APP_ENV=production: unsafe settings are refused, and the page offers no demo login.
    pub production: bool,
    pub bind_addr: String,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// How long requests in flight may take to finish after SIGTERM/SIGINT.
    pub shutdown_timeout: Duration,
    /// How long a request's body may take to arrive, from the end of its head; then 408.
    pub request_body_timeout: Duration,
    /// Open connections at most, all workers together; 0: derived from the descriptor limit.
    pub max_connections: usize,
    /// LOG_FORMAT=json: one JSON object per log line.
    pub log_json: bool,
    /// Count and time requests for GET /metrics.
    pub metrics: bool,
    /// A private listener (`host:port`) for /metrics and /readyz; with it, /metrics leaves the
    /// public listener.
    pub metrics_addr: Option<String>,
}

/// Where users and sessions live, and how long one call to it may take (`startup` opens it).
#[derive(Clone, Debug)]
pub struct StoreSettings {
    pub backend: Backend,
    /// STORE_TIMEOUT: the longest wait for one call to Redis.
    pub timeout: Duration,
    /// Replicas that must hold each write a client is told about (Redis WAIT); 0: none.
    pub min_replicas: u32,
    /// For `rediss://`: a PEM file of the only roots trusted (unset: the system's roots).
    pub ca_file: Option<String>,
    /// For mutual TLS: a PEM client certificate (chain) and its private key.
    pub client_cert_file: Option<String>,
    pub client_key_file: Option<String>,
}

/// The store the variables name; reading refuses a configuration that names two.
#[derive(Clone, Debug)]
pub enum Backend {
    /// No REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS: this process's memory, lost on
    /// restart and not shared between instances.
    InProcess,
    /// REDIS_URL.
    Redis { url: Secret },
    /// REDIS_CLUSTER_NODES: seed nodes, `redis://host:port` each (a password may come with them).
    Cluster { nodes: Vec<Secret> },
    /// REDIS_SENTINELS (`host:port` each) name the master of REDIS_SENTINEL_MASTER; REDIS_URL, if
    /// set, gives only the data nodes' scheme, user, password and database.
    Sentinel {
        sentinels: Vec<String>,
        master: String,
        password: Option<Secret>,
        data_url: Option<Secret>,
    },
}

impl StoreSettings {
    /// Whether the store is this process's memory. The one place that decides it.
    pub fn is_in_process(&self) -> bool {
        matches!(self.backend, Backend::InProcess)
    }

    /// REDIS_URL when it was given: the Redis itself, or under Sentinel the data nodes' scheme
    /// and credentials.
    pub fn redis_url(&self) -> Option<&Secret> {
        match &self.backend {
            Backend::Redis { url } => Some(url),
            Backend::Sentinel { data_url, .. } => data_url.as_ref(),
            Backend::InProcess | Backend::Cluster { .. } => None,
        }
    }
}

/// The token layer: the key that signs, the keys that verify, and the claims written and checked.
#[derive(Clone, Debug)]
pub struct TokenSettings {
    pub signing_key: SigningKey,
    /// The public key (PEM) for asymmetric algorithms; derived from SIGNING_KEY when unset.
    pub verifying_key: Option<Secret>,
    /// Keys retired by a rotation, still accepted for verification (PEM public keys, or files
    /// holding old HMAC secrets).
    pub retired_keys_dir: Option<PathBuf>,
    /// Clock skew allowed when checking `exp` and `nbf`.
    pub leeway: Duration,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub user_id_claim: String,
}

/// SIGNING_KEY and ALGORITHM: where the key that signs tokens came from, and what kind it is.
#[derive(Clone, Debug)]
pub enum SigningKey {
    /// No SIGNING_KEY: a key for this process alone, so tokens do not survive a restart. For
    /// HS* it is `secret`, made at random; for RS*/ES*/EdDSA the token layer makes a key pair.
    Generated {
        algorithm: Algorithm,
        secret: Secret,
    },
    /// HS256/HS384/HS512: one shared secret signs and verifies.
    Hmac {
        algorithm: Algorithm,
        secret: Secret,
    },
    /// RS*/ES*/EdDSA: a PEM private key; its public half is VERIFYING_KEY, or derived from it.
    Pem {
        algorithm: Algorithm,
        private_key: Secret,
    },
}

impl SigningKey {
    pub fn algorithm(&self) -> Algorithm {
        match self {
            SigningKey::Generated { algorithm, .. }
            | SigningKey::Hmac { algorithm, .. }
            | SigningKey::Pem { algorithm, .. } => *algorithm,
        }
    }
}

impl TokenSettings {
    pub fn algorithm(&self) -> Algorithm {
        self.signing_key.algorithm()
    }
}

/// The flows' rules (`auth`): token lifetimes, rotation and reuse, session limits, login limits.
#[derive(Clone, Debug)]
pub struct SessionSettings {
    pub access_lifetime: Duration,
    pub refresh_lifetime: Duration,
    /// Issue a new refresh token on every refresh.
    pub rotate_refresh_tokens: bool,
    /// Blacklist the presented token after rotation; reuse detection needs it.
    pub blacklist_after_rotation: bool,
    /// How long a retired refresh token is still forgiven, from its own retirement.
    pub reuse_interval: Duration,
    /// SESSION_MAX_LIFETIME: a session's absolute limit from login.
    pub max_lifetime: Option<Duration>,
    /// A session not refreshed for this long ends (checked on every refresh).
    pub idle_timeout: Option<Duration>,
    /// Whether tokens minted elsewhere (no `sid`) start a session at their first refresh.
    pub adopt_foreign_tokens: bool,
    /// Failed logins per username or per address before 429; 0 turns limiting off.
    pub login_max_failures: u32,
    pub login_failure_window: Duration,
}

/// The session cookies' names and attributes (the one cookie builder reads them).
#[derive(Clone, Debug)]
pub struct CookieSettings {
    pub access_name: String,
    pub refresh_name: String,
    /// REFRESH_COOKIE_PATH: where the browser sends the refresh cookie (the access cookie's
    /// Path is always /).
    pub refresh_path: String,
    pub domain: Option<String>,
    pub secure: bool,
    pub same_site: SameSite,
}

/// What browsers may do across origins (CORS, the CSRF check) and whose forwarding headers are
/// believed.
#[derive(Clone, Debug)]
pub struct BrowserSettings {
    /// CORS_ALLOWED_ORIGINS, spelled as browsers send an Origin (so that CORS, an exact match,
    /// and the CSRF check agree).
    pub allowed_origins: Vec<String>,
    /// PUBLIC_ORIGIN, this server's own origin; without it, each request's scheme and Host.
    pub public_origin: Option<String>,
    /// Only these peers' Forwarded / X-Forwarded-* headers are believed: the client's address,
    /// and the server's own origin for the CSRF check.
    pub trusted_proxies: Vec<IpNet>,
}

/// Where the two APIs live (the router and the OpenAPI document read them).
#[derive(Clone, Debug)]
pub struct RouteSettings {
    /// COOKIE_API_PREFIX: `<prefix>login/`, `<prefix>token/refresh/`, ...
    pub cookie_api: String,
    /// TOKEN_API_PREFIX: `<prefix>`, `<prefix>refresh/`, ...
    pub token_api: String,
}

/// Every problem found in the configuration, each naming its variable.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration:")?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Parses `900`, `15m`, `30d`, `1h 30m`: a bare number is seconds.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err("is empty".into());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| "is too large".into());
    }
    humantime::parse_duration(s).map_err(|_| {
        format!("{s:?} is not a duration (use seconds like 900, or 10s, 15m, 12h, 30d)")
    })
}

fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(format!("{other:?} is not a boolean (use true or false)")),
    }
}

/// An origin as browsers send it: scheme, host and optional port, nothing else.
pub fn is_origin(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@', ' '])
}

/// Reads raw values: the variable itself, or the file its `_FILE` twin names, or its declared
/// default. Collects every problem instead of stopping at the first.
struct Reader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<String>,
}

impl Reader<'_> {
    /// The value, or `None` when unset or empty and without a default.
    fn raw(&mut self, name: &str) -> Option<String> {
        let declared =
            variable(name).unwrap_or_else(|| panic!("{name} is missing from config::VARIABLES"));
        let direct = (self.lookup)(name).filter(|v| !v.is_empty());
        if declared.from_file {
            let file_var = format!("{name}_FILE");
            if let Some(path) = (self.lookup)(&file_var).filter(|v| !v.is_empty()) {
                if direct.is_some() {
                    self.problems
                        .push(format!("{name} and {file_var} are both set: keep one"));
                    return direct;
                }
                return match std::fs::read_to_string(&path) {
                    Ok(text) if text.trim().is_empty() => {
                        self.problems
                            .push(format!("{file_var}={path} is empty: put the value in it"));
                        None
                    }
                    Ok(text) => Some(text.trim_end_matches(['\r', '\n']).to_owned()),
                    Err(e) => {
                        self.problems
                            .push(format!("{file_var}={path} cannot be read: {e}"));
                        None
                    }
                };
            }
        }
        direct.or_else(|| (!declared.default.is_empty()).then(|| declared.default.to_owned()))
    }

    fn string(&mut self, name: &str) -> String {
        self.raw(name).unwrap_or_default()
    }

    fn optional(&mut self, name: &str) -> Option<String> {
        self.raw(name)
    }

    fn secret(&mut self, name: &str) -> Option<Secret> {
        self.raw(name).map(|v| Secret::new(v.into_bytes()))
    }

    /// A comma-separated list, blanks dropped.
    fn list(&mut self, name: &str) -> Vec<String> {
        self.string(name)
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The value (or the default; "" when there is none) parsed. A refused value is reported
    /// and the declared default used instead, so that `check-config` can still show the rest.
    fn parse<T>(&mut self, name: &str, parse: impl Fn(&str) -> Result<T, String>) -> T {
        let raw = self.string(name);
        match parse(&raw) {
            Ok(v) => v,
            Err(why) => {
                self.problems.push(format!("{name}: {why}"));
                parse(default_of(name))
                    .unwrap_or_else(|_| panic!("the declared default of {name} does not parse"))
            }
        }
    }

    /// A value without a default, parsed: `None` when unset, or refused (and reported).
    fn parse_optional<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let raw = self.raw(name)?;
        match parse(&raw) {
            Ok(v) => Some(v),
            Err(why) => {
                self.problems.push(format!("{name}: {why}"));
                None
            }
        }
    }
}

/// Whether `addr` is `host:port`: an IPv4 address, a bracketed IPv6 address or a host name, and
/// a port number. Names are resolved when the listener is bound (`localhost:8000` works).
fn check_listen_addr(var: &str, addr: &str) -> Option<String> {
    let expected = || {
        format!(
            "{var}={addr}: expected host:port such as 127.0.0.1:8000 (or 0.0.0.0:8000 for every interface, [::1]:8000, localhost:8000)"
        )
    };
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Some(expected());
    };
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .is_some_and(|v6| v6.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    };
    if !host_ok || port.parse::<u16>().is_err() {
        return Some(expected());
    }
    None
}

/// Pushes `msg` unless `ok`.
fn need(problems: &mut Vec<String>, ok: bool, msg: &str) {
    if !ok {
        problems.push(msg.to_owned());
    }
}

impl Settings {
    /// Reads every variable through `lookup` and validates the result.
    pub fn from_lookup<F: Fn(&str) -> Option<String>>(lookup: F) -> Result<Settings, ConfigError> {
        let (settings, problems) = Self::from_lookup_with_problems(lookup);
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError(problems))
        }
    }

    /// Reads every variable through `lookup`: the settings as far as they could be read (a value
    /// that was refused keeps its default), and every problem. For `check-config`, which shows
    /// both; anything that runs must use `from_lookup`.
    pub fn from_lookup_with_problems<F: Fn(&str) -> Option<String>>(
        lookup: F,
    ) -> (Settings, Vec<String>) {
        let mut r = Reader {
            lookup: &lookup,
            problems: Vec::new(),
        };
        let server = ServerSettings::read(&mut r);
        let settings = Settings {
            store: StoreSettings::read(&mut r),
            tokens: TokenSettings::read(&mut r),
            sessions: SessionSettings::read(&mut r),
            cookies: CookieSettings::read(&mut r, server.production),
            browser: BrowserSettings::read(&mut r),
            routes: RouteSettings::read(&mut r),
            server,
        };
        let mut problems = r.problems;
        settings.validate(&mut problems);
        (settings, problems)
    }

    /// The rules that span groups: what production requires.
    fn validate(&self, problems: &mut Vec<String>) {
        if !self.server.production {
            return;
        }
        match &self.tokens.signing_key {
            SigningKey::Generated { .. } => problems.push("APP_ENV=production requires SIGNING_KEY (or SIGNING_KEY_FILE): for HS* a random secret of at least 32 bytes, for RS*/ES*/EdDSA a PEM private key (`refreshd keys generate --alg ...` makes either)".into()),
            SigningKey::Hmac { algorithm, secret } if secret.expose().len() < MIN_HMAC_KEY_BYTES => {
                problems.push(format!(
                    "SIGNING_KEY is {} bytes; APP_ENV=production requires at least {MIN_HMAC_KEY_BYTES} for {}",
                    secret.expose().len(),
                    algorithm.as_str()
                ));
            }
            SigningKey::Hmac { .. } | SigningKey::Pem { .. } => {}
        }
        if self.store.is_in_process() {
            problems.push("APP_ENV=production requires REDIS_URL (or REDIS_URL_FILE), REDIS_CLUSTER_NODES or REDIS_SENTINELS: the in-process store loses every session on restart and is not shared between instances".into());
        }
        if !self.cookies.secure {
            problems
                .push("APP_ENV=production requires COOKIE_SECURE=true (or leave it unset)".into());
        }
    }

    /// Every variable with its effective value, secrets redacted, for `refreshd check-config`.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        VARIABLES
            .iter()
            .filter_map(|v| Some((v.name, (v.show?)(self))))
            .collect()
    }
}

impl ServerSettings {
    fn read(r: &mut Reader<'_>) -> Self {
        let server = Self {
            production: r.parse("APP_ENV", |s| match s.to_ascii_lowercase().as_str() {
                "production" | "prod" => Ok(true),
                "development" | "dev" | "test" | "" => Ok(false),
                other => Err(format!(
                    "{other:?} is not known (use development or production)"
                )),
            }),
            bind_addr: r.string("BIND_ADDR"),
            workers: r.parse("WORKERS", |s| {
                s.parse::<usize>()
                    .ok()
                    .filter(|n| *n <= 1024)
                    .ok_or_else(|| format!("{s:?} is not a number of threads (0 for one per core)"))
            }),
            shutdown_timeout: r.parse("SHUTDOWN_TIMEOUT", parse_duration),
            request_body_timeout: r.parse("REQUEST_BODY_TIMEOUT", parse_duration),
            max_connections: r.parse("MAX_CONNECTIONS", |s| {
                s.parse::<usize>()
                    .ok()
                    .filter(|n| *n == 0 || (16..=1_000_000).contains(n))
                    .ok_or_else(|| {
                        format!("{s:?} is not a number of connections from 16 to 1000000 (0 derives it from the descriptor limit)")
                    })
            }),
            log_json: r.parse("LOG_FORMAT", |s| match s.to_ascii_lowercase().as_str() {
                "text" => Ok(false),
                "json" => Ok(true),
                other => Err(format!("{other:?} is not text or json")),
            }),
            metrics: r.parse("METRICS", parse_bool),
            metrics_addr: r.optional("METRICS_ADDR"),
        };
        server.check(&mut r.problems);
        server
    }

    fn check(&self, problems: &mut Vec<String>) {
        problems.extend(check_listen_addr("BIND_ADDR", &self.bind_addr));
        if let Some(addr) = &self.metrics_addr {
            problems.extend(check_listen_addr("METRICS_ADDR", addr));
            if *addr == self.bind_addr && !addr.ends_with(":0") {
                problems.push(format!(
                    "METRICS_ADDR={addr} is BIND_ADDR: give the private listener a port of its own (such as 127.0.0.1:9100), or leave METRICS_ADDR unset to serve /metrics on BIND_ADDR"
                ));
            }
        }
        if self.request_body_timeout < Duration::from_millis(100) {
            problems.push(format!(
                "REQUEST_BODY_TIMEOUT must be at least 100ms (default {})",
                default_of("REQUEST_BODY_TIMEOUT")
            ));
        }
        need(
            problems,
            self.shutdown_timeout >= Duration::from_secs(1),
            "SHUTDOWN_TIMEOUT must be at least 1s (it counts whole seconds)",
        );
    }
}

impl StoreSettings {
    /// Reads REDIS_* and STORE_TIMEOUT, and decides the store: Sentinel when sentinels are
    /// named, else REDIS_URL's Redis, else the cluster, else the in-process store.
    fn read(r: &mut Reader<'_>) -> Self {
        let url = r.secret("REDIS_URL");
        let nodes = r.list("REDIS_CLUSTER_NODES");
        let sentinels = r.list("REDIS_SENTINELS");
        let master = r.optional("REDIS_SENTINEL_MASTER");
        let password = r.secret("REDIS_SENTINEL_PASSWORD");
        let ca_file = r.optional("REDIS_CA_FILE");
        let client_cert_file = r.optional("REDIS_CLIENT_CERT_FILE");
        let client_key_file = r.optional("REDIS_CLIENT_KEY_FILE");
        let timeout = r.parse("STORE_TIMEOUT", parse_duration);
        let min_replicas = r.parse("REDIS_MIN_REPLICAS", |s| {
            s.parse::<u32>()
                .ok()
                .filter(|n| *n <= 64)
                .ok_or_else(|| format!("{s:?} is not a number of replicas (0 to 64)"))
        });
        let problems = &mut r.problems;
        need(
            problems,
            timeout >= Duration::from_millis(10),
            "STORE_TIMEOUT must be at least 10ms",
        );
        if url.is_some() && !nodes.is_empty() {
            problems.push("REDIS_URL and REDIS_CLUSTER_NODES are both set: name one store".into());
        }
        let urls: Vec<(&str, String)> = url
            .iter()
            .map(|u| ("REDIS_URL", u.expose_text()))
            .chain(nodes.iter().map(|n| ("REDIS_CLUSTER_NODES", n.clone())))
            .collect();
        for (var, url) in &urls {
            let lower = url.to_ascii_lowercase();
            let known = if *var == "REDIS_URL" {
                ["rediss://", "redis://", "unix://", "redis+unix://"].as_slice()
            } else {
                ["rediss://", "redis://"].as_slice()
            };
            if !known.iter().any(|k| lower.starts_with(k)) {
                problems.push(if *var == "REDIS_URL" {
                    "REDIS_URL must be a redis://[user:password@]host:port[/db] or rediss:// (TLS) URL (or unix:///path/to/socket)".into()
                } else {
                    format!(
                        "REDIS_CLUSTER_NODES: {:?} is not a redis://host:port or rediss://host:port URL",
                        redact_url(url)
                    )
                });
            }
            // The client library's `#insecure` turns certificate checks off; refreshd never does.
            if lower.starts_with("rediss://") && lower.contains('#') {
                problems.push(format!(
                    "{var}: a #fragment (such as #insecure) is not allowed on a rediss:// URL: certificates are always verified (give REDIS_CA_FILE for a private CA)"
                ));
            }
        }
        let tls: Vec<bool> = urls
            .iter()
            .map(|(_, u)| u.to_ascii_lowercase().starts_with("rediss://"))
            .collect();
        if tls.contains(&true) && tls.contains(&false) {
            problems.push("REDIS_CLUSTER_NODES mixes rediss:// and redis:// nodes: name every node with one scheme".into());
        }
        let tls_files = [
            ("REDIS_CA_FILE", &ca_file, "CERTIFICATE"),
            ("REDIS_CLIENT_CERT_FILE", &client_cert_file, "CERTIFICATE"),
            ("REDIS_CLIENT_KEY_FILE", &client_key_file, "PRIVATE KEY"),
        ];
        for (var, path, pem) in tls_files {
            let Some(path) = path else { continue };
            if !tls.contains(&true) {
                problems.push(format!(
                    "{var} is set but no Redis URL is rediss://: name the Redis with rediss:// for TLS (or unset {var})"
                ));
            }
            match std::fs::read_to_string(path) {
                Ok(text) if text.contains("-----BEGIN") && text.contains(pem) => {}
                Ok(_) => problems.push(format!("{var}={path} holds no PEM {pem}")),
                Err(e) => problems.push(format!("{var}={path} cannot be read: {e}")),
            }
        }
        if !sentinels.is_empty() {
            if !nodes.is_empty() {
                problems.push(
                    "REDIS_CLUSTER_NODES and REDIS_SENTINELS are both set: name one store".into(),
                );
            }
            if master.is_none() {
                problems.push("REDIS_SENTINELS needs REDIS_SENTINEL_MASTER, the name of the master group the sentinels monitor".into());
            }
            for sentinel in &sentinels {
                let ok = sentinel
                    .rsplit_once(':')
                    .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
                if !ok {
                    problems.push(format!(
                        "REDIS_SENTINELS: {sentinel:?} is not host:port (such as 10.0.0.5:26379)"
                    ));
                }
            }
        } else if master.is_some() || password.is_some() {
            problems.push("REDIS_SENTINEL_MASTER and REDIS_SENTINEL_PASSWORD need REDIS_SENTINELS (the sentinels' host:port list)".into());
        }
        let backend = if !sentinels.is_empty() {
            Backend::Sentinel {
                sentinels,
                master: master.unwrap_or_default(),
                password,
                data_url: url,
            }
        } else if let Some(url) = url {
            Backend::Redis { url }
        } else if !nodes.is_empty() {
            Backend::Cluster {
                nodes: nodes
                    .into_iter()
                    .map(|n| Secret::new(n.into_bytes()))
                    .collect(),
            }
        } else {
            Backend::InProcess
        };
        let store = Self {
            backend,
            timeout,
            min_replicas,
            ca_file,
            client_cert_file,
            client_key_file,
        };
        if store.min_replicas > 0 && store.is_in_process() {
            problems.push("REDIS_MIN_REPLICAS needs a Redis (REDIS_URL or REDIS_CLUSTER_NODES): the in-process store has no replicas".into());
        }
        if store.client_cert_file.is_some() != store.client_key_file.is_some() {
            problems.push("REDIS_CLIENT_CERT_FILE and REDIS_CLIENT_KEY_FILE go together: set both for mutual TLS, or neither".into());
        }
        store
    }
}

impl TokenSettings {
    fn read(r: &mut Reader<'_>) -> Self {
        let algorithm = r.parse("ALGORITHM", |s| {
            Algorithm::parse(s).ok_or_else(|| {
                format!(
                    "{s:?} is not supported (use HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384 or EdDSA)"
                )
            })
        });
        let signing_key = match r.secret("SIGNING_KEY") {
            None => SigningKey::Generated {
                algorithm,
                secret: random_secret(),
            },
            Some(secret) if algorithm.is_hmac() => SigningKey::Hmac { algorithm, secret },
            Some(private_key) => SigningKey::Pem {
                algorithm,
                private_key,
            },
        };
        let tokens = Self {
            signing_key,
            verifying_key: r.secret("VERIFYING_KEY"),
            retired_keys_dir: r.optional("RETIRED_KEYS_DIR").map(PathBuf::from),
            leeway: r.parse("LEEWAY", parse_duration),
            issuer: r.optional("ISSUER"),
            audience: r.optional("AUDIENCE"),
            user_id_claim: r.string("USER_ID_CLAIM"),
        };
        tokens.check(&mut r.problems);
        tokens
    }

    fn check(&self, problems: &mut Vec<String>) {
        if !is_claim_name(&self.user_id_claim) {
            problems.push(format!(
                "USER_ID_CLAIM must be a claim name of letters, digits and _ (default {})",
                default_of("USER_ID_CLAIM")
            ));
        }
        need(
            problems,
            !matches!(
                self.user_id_claim.as_str(),
                "token_type" | "exp" | "iat" | "jti" | "sid" | "iss" | "aud" | "nbf"
            ),
            "USER_ID_CLAIM must not be one of the registered claims (token_type, exp, iat, jti, sid, iss, aud, nbf)",
        );
    }
}

/// A random HMAC secret for a development server started without SIGNING_KEY.
fn random_secret() -> Secret {
    use rand::RngCore;
    let mut key = vec![0u8; 64];
    rand::thread_rng().fill_bytes(&mut key);
    Secret::new(key)
}

impl SessionSettings {
    fn read(r: &mut Reader<'_>) -> Self {
        // Unset, or 0: no limit.
        let mut limit = |name: &str| {
            r.parse_optional(name, parse_duration)
                .filter(|d| !d.is_zero())
        };
        let max_lifetime = limit("SESSION_MAX_LIFETIME");
        let idle_timeout = limit("SESSION_IDLE_TIMEOUT");
        let sessions = Self {
            access_lifetime: r.parse("ACCESS_TOKEN_LIFETIME", parse_duration),
            refresh_lifetime: r.parse("REFRESH_TOKEN_LIFETIME", parse_duration),
            rotate_refresh_tokens: r.parse("ROTATE_REFRESH_TOKENS", parse_bool),
            blacklist_after_rotation: r.parse("BLACKLIST_AFTER_ROTATION", parse_bool),
            reuse_interval: r.parse("REFRESH_TOKEN_REUSE_INTERVAL", parse_duration),
            max_lifetime,
            idle_timeout,
            adopt_foreign_tokens: r.parse("ADOPT_FOREIGN_TOKENS", parse_bool),
            login_max_failures: r.parse("LOGIN_MAX_FAILURES", |s| {
                s.parse::<u32>()
                    .map_err(|_| format!("{s:?} is not a whole number"))
            }),
            login_failure_window: r.parse("LOGIN_FAILURE_WINDOW", parse_duration),
        };
        sessions.check(&mut r.problems);
        sessions
    }

    fn check(&self, problems: &mut Vec<String>) {
        need(
            problems,
            self.access_lifetime >= Duration::from_secs(1),
            "ACCESS_TOKEN_LIFETIME must be at least 1s",
        );
        need(
            problems,
            self.refresh_lifetime >= Duration::from_secs(1),
            "REFRESH_TOKEN_LIFETIME must be at least 1s",
        );
        if self.login_max_failures > 0 && self.login_failure_window.is_zero() {
            problems.push("LOGIN_FAILURE_WINDOW must be longer than 0 (or set LOGIN_MAX_FAILURES=0 to turn limiting off)".into());
        }
    }
}

impl CookieSettings {
    fn read(r: &mut Reader<'_>, production: bool) -> Self {
        let cookies = Self {
            access_name: r.string("ACCESS_COOKIE_NAME"),
            refresh_name: r.string("REFRESH_COOKIE_NAME"),
            refresh_path: r.string("REFRESH_COOKIE_PATH"),
            domain: r.optional("COOKIE_DOMAIN"),
            // Unset (or refused): Secure in production only.
            secure: r
                .parse_optional("COOKIE_SECURE", parse_bool)
                .unwrap_or(production),
            same_site: r.parse("COOKIE_SAMESITE", |s| {
                match s.to_ascii_lowercase().as_str() {
                    "lax" => Ok(SameSite::Lax),
                    "strict" => Ok(SameSite::Strict),
                    "none" => Ok(SameSite::None),
                    other => Err(format!("{other:?} is not Lax, Strict or None")),
                }
            }),
        };
        cookies.check(&mut r.problems);
        cookies
    }

    fn check(&self, problems: &mut Vec<String>) {
        for (var, name) in [
            ("ACCESS_COOKIE_NAME", &self.access_name),
            ("REFRESH_COOKIE_NAME", &self.refresh_name),
        ] {
            if !is_cookie_name(name) {
                problems.push(format!(
                    "{var} must be a cookie name (letters, digits and !#$%&'*+-.^_`|~)"
                ));
                continue;
            }
            // Browsers match the prefixes without regard to case.
            if (has_prefix(name, "__Host-") || has_prefix(name, "__Secure-")) && !self.secure {
                problems.push(format!(
                    "{var}={name} requires COOKIE_SECURE=true (browsers drop prefixed cookies without Secure)"
                ));
            }
            if has_prefix(name, "__Host-") && self.domain.is_some() {
                problems.push(format!(
                    "{var}={name} forbids COOKIE_DOMAIN (a __Host- cookie is bound to one host)"
                ));
            }
        }
        if has_prefix(&self.refresh_name, "__Host-") && self.refresh_path != "/" {
            problems.push(format!(
                "REFRESH_COOKIE_NAME={} requires REFRESH_COOKIE_PATH=/ (a __Host- cookie must have Path=/)",
                self.refresh_name
            ));
        }
        if self.access_name == self.refresh_name {
            problems.push("ACCESS_COOKIE_NAME and REFRESH_COOKIE_NAME must differ".into());
        }
        if !self.refresh_path.starts_with('/')
            || self
                .refresh_path
                .contains([';', ',', ' ', '\t', '\r', '\n'])
        {
            problems.push(format!(
                "REFRESH_COOKIE_PATH must be a path starting with / (default {})",
                default_of("REFRESH_COOKIE_PATH")
            ));
        }
        if let Some(domain) = &self.domain
            && (domain.contains([';', ',', ' ', '/', ':']) || domain.trim_matches('.').is_empty())
        {
            problems.push(format!(
                "COOKIE_DOMAIN={domain:?} is not a domain name (leave it unset for a host-only cookie)"
            ));
        }
        if self.same_site == SameSite::None && !self.secure {
            problems.push(
                "COOKIE_SAMESITE=None requires COOKIE_SECURE=true (browsers reject SameSite=None cookies without Secure)".into(),
            );
        }
    }
}

impl BrowserSettings {
    fn read(r: &mut Reader<'_>) -> Self {
        let browser = Self {
            allowed_origins: r
                .string("CORS_ALLOWED_ORIGINS")
                .split(',')
                .map(canonical_origin)
                .filter(|s| !s.is_empty())
                .collect(),
            public_origin: r.optional("PUBLIC_ORIGIN").map(|s| canonical_origin(&s)),
            trusted_proxies: r.parse("TRUSTED_PROXIES", parse_proxies),
        };
        browser.check(&mut r.problems);
        browser
    }

    fn check(&self, problems: &mut Vec<String>) {
        for origin in &self.allowed_origins {
            if origin == "*" {
                problems.push(
                    "CORS_ALLOWED_ORIGINS must list origins; * cannot be used with credentials"
                        .into(),
                );
            } else if !is_origin(origin) {
                problems.push(format!(
                    "CORS_ALLOWED_ORIGINS: {origin:?} is not an origin like https://app.example.com"
                ));
            }
        }
        if let Some(origin) = &self.public_origin
            && !is_origin(origin)
        {
            problems.push(format!(
                "PUBLIC_ORIGIN={origin:?} is not an origin like https://auth.example.com"
            ));
        }
    }
}

impl RouteSettings {
    fn read(r: &mut Reader<'_>) -> Self {
        let routes = Self {
            cookie_api: r.string("COOKIE_API_PREFIX"),
            token_api: r.string("TOKEN_API_PREFIX"),
        };
        routes.check(&mut r.problems);
        routes
    }

    fn check(&self, problems: &mut Vec<String>) {
        for (var, prefix) in [
            ("COOKIE_API_PREFIX", &self.cookie_api),
            ("TOKEN_API_PREFIX", &self.token_api),
        ] {
            let ok = prefix.starts_with('/')
                && prefix.ends_with('/')
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'));
            if !ok {
                problems.push(format!(
                    "{var}={prefix:?} must be a path that starts and ends with / (like /api/user/token/)"
                ));
            }
        }
        if self.cookie_api.starts_with(&self.token_api)
            || self.token_api.starts_with(&self.cookie_api)
        {
            problems.push(format!(
                "COOKIE_API_PREFIX={} and TOKEN_API_PREFIX={} must not contain one another (their routes would collide)",
                self.cookie_api, self.token_api
            ));
        }
    }
}

/// A value as `check-config` shows it; an unset option is `(unset)`, a secret only `(set)`.
trait Show {
    fn show(&self) -> String;
}

impl Show for Duration {
    fn show(&self) -> String {
        humantime::format_duration(*self).to_string()
    }
}

impl Show for String {
    fn show(&self) -> String {
        self.clone()
    }
}

impl Show for bool {
    fn show(&self) -> String {
        self.to_string()
    }
}

impl Show for u32 {
    fn show(&self) -> String {
        self.to_string()
    }
}

impl Show for IpNet {
    fn show(&self) -> String {
        self.to_string()
    }
}

impl Show for PathBuf {
    fn show(&self) -> String {
        self.display().to_string()
    }
}

impl Show for Secret {
    fn show(&self) -> String {
        "(set)".into()
    }
}

impl<T: Show> Show for Option<T> {
    fn show(&self) -> String {
        self.as_ref().map_or_else(|| "(unset)".into(), T::show)
    }
}

impl<T: Show> Show for Vec<T> {
    fn show(&self) -> String {
        self.iter().map(T::show).collect::<Vec<_>>().join(",")
    }
}
/// A URL with any password replaced by `***`.
fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split(':').next().unwrap_or("");
                format!("{scheme}://{user}:***@{host}")
            }
            None => url.to_owned(),
        },
        None => "(set)".into(),
    }
}

fn is_claim_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// RFC 6265 cookie-name token characters.
fn is_cookie_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

fn parse_proxies(raw: &str) -> Result<Vec<IpNet>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{s:?} is not an IP address or CIDR range"))
        })
        .collect()
}

/// Whether a cookie name carries a prefix, in any case (as browsers compare them).
fn has_prefix(name: &str, prefix: &str) -> bool {
    name.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// An origin as a browser serialises it: lower case, no trailing slash, no default port. Equal
/// origins then compare equal however an operator spelled them.
pub fn canonical_origin(origin: &str) -> String {
    let o = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    for (scheme, port) in [("http://", ":80"), ("https://", ":443")] {
        if o.starts_with(scheme)
            && let Some(stripped) = o.strip_suffix(port)
        {
            return stripped.to_owned();
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    fn problems(pairs: &[(&str, &str)]) -> Vec<String> {
        settings(pairs).expect_err("expected a refusal").0
    }

    #[test]
    fn durations_accept_seconds_and_units() {
        assert_eq!(parse_duration("900"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86400)));
        assert_eq!(parse_duration(" 10s "), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("ten minutes").is_err());
        assert!(parse_duration("-5").is_err());
        assert!(parse_duration("99999999999999999999999").is_err());
    }

    #[test]
    fn defaults_give_a_working_development_server() {
        let s = settings(&[]).unwrap();
        assert!(!s.server.production);
        assert_eq!(s.server.bind_addr, "127.0.0.1:8000");
        assert!(s.store.is_in_process() && s.store.redis_url().is_none());
        let SigningKey::Generated { algorithm, secret } = &s.tokens.signing_key else {
            panic!(
                "no SIGNING_KEY: a generated key, not {:?}",
                s.tokens.signing_key
            );
        };
        assert_eq!(secret.expose().len(), 64);
        assert_eq!(*algorithm, Algorithm::HS256);
        assert_eq!(s.sessions.access_lifetime, Duration::from_secs(900));
        assert_eq!(s.sessions.refresh_lifetime, Duration::from_secs(30 * 86400));
        assert!(s.sessions.rotate_refresh_tokens && s.sessions.blacklist_after_rotation);
        assert_eq!(s.sessions.reuse_interval, Duration::from_secs(10));
        assert_eq!(s.tokens.leeway, Duration::ZERO);
        assert_eq!(s.tokens.user_id_claim, "user_id");
        assert_eq!(s.cookies.access_name, "access_token");
        assert_eq!(s.cookies.refresh_name, "refresh_token");
        assert!(!s.cookies.secure);
        assert_eq!(s.cookies.same_site, SameSite::Lax);
        assert_eq!(s.cookies.refresh_path, "/");
        assert!(s.browser.allowed_origins.is_empty());
        assert!(s.sessions.max_lifetime.is_none());
        assert_eq!(s.sessions.login_max_failures, 10);
        assert_eq!(s.sessions.login_failure_window, Duration::from_secs(900));
        assert_eq!(s.server.request_body_timeout, Duration::from_secs(10));
        assert_eq!(s.server.max_connections, 0);
        let s = settings(&[("REQUEST_BODY_TIMEOUT", "15m"), ("MAX_CONNECTIONS", "500")]).unwrap();
        assert_eq!(s.server.request_body_timeout, Duration::from_secs(900));
        assert_eq!(s.server.max_connections, 500);
        assert!(settings(&[("REQUEST_BODY_TIMEOUT", "0")]).is_err());
        assert!(settings(&[("MAX_CONNECTIONS", "3")]).is_err());
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_variable() {
        let p = problems(&[
            ("ACCESS_TOKEN_LIFETIME", "soon"),
            ("ROTATE_REFRESH_TOKENS", "maybe"),
            ("ALGORITHM", "none"),
            ("LOGIN_MAX_FAILURES", "-1"),
        ]);
        assert_eq!(p.len(), 4, "{p:#?}");
        for var in [
            "ACCESS_TOKEN_LIFETIME",
            "ROTATE_REFRESH_TOKENS",
            "ALGORITHM",
            "LOGIN_MAX_FAILURES",
        ] {
            assert!(
                p.iter().any(|m| m.starts_with(var)),
                "{var} not named: {p:#?}"
            );
        }
    }

    #[test]
    fn production_refuses_dev_keys_missing_redis_and_insecure_cookies() {
        let p = problems(&[("APP_ENV", "production"), ("COOKIE_SECURE", "false")]);
        assert!(
            p.iter().any(|m| m.contains("requires SIGNING_KEY")),
            "{p:#?}"
        );
        assert!(p.iter().any(|m| m.contains("requires REDIS_URL")), "{p:#?}");
        assert!(p.iter().any(|m| m.contains("COOKIE_SECURE=true")), "{p:#?}");

        let p = problems(&[
            ("APP_ENV", "production"),
            ("SIGNING_KEY", "short"),
            ("REDIS_URL", "redis://127.0.0.1:1/"),
        ]);
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(p[0].starts_with("SIGNING_KEY is 5 bytes"), "{p:#?}");

        let s = settings(&[
            ("APP_ENV", "production"),
            ("SIGNING_KEY", &"k".repeat(32)),
            ("REDIS_URL", "redis://127.0.0.1:1/"),
        ])
        .unwrap();
        assert!(
            s.cookies.secure,
            "production defaults COOKIE_SECURE to true"
        );
    }

    #[test]
    fn unsafe_cookie_combinations_are_refused() {
        let p = problems(&[("COOKIE_SAMESITE", "None")]);
        assert_eq!(
            p,
            vec![
                "COOKIE_SAMESITE=None requires COOKIE_SECURE=true (browsers reject SameSite=None cookies without Secure)"
            ]
        );
        assert!(settings(&[("COOKIE_SAMESITE", "none"), ("COOKIE_SECURE", "true")]).is_ok());

        let p = problems(&[
            ("REFRESH_COOKIE_NAME", "__Host-refresh"),
            ("COOKIE_DOMAIN", "example.com"),
        ]);
        assert!(
            p.iter().any(|m| m.contains("requires COOKIE_SECURE=true")),
            "{p:#?}"
        );
        assert!(
            p.iter().any(|m| m.contains("forbids COOKIE_DOMAIN")),
            "{p:#?}"
        );
        // Browsers read the prefix in any case, and so does the check.
        let p = problems(&[
            ("ACCESS_COOKIE_NAME", "__host-access"),
            ("COOKIE_DOMAIN", "example.com"),
            ("COOKIE_SECURE", "true"),
        ]);
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(p[0].contains("forbids COOKIE_DOMAIN"), "{p:#?}");
        assert!(settings(&[("ACCESS_COOKIE_NAME", "bad name")]).is_err());
        assert!(
            settings(&[
                ("ACCESS_COOKIE_NAME", "same"),
                ("REFRESH_COOKIE_NAME", "same")
            ])
            .is_err()
        );
    }

    #[test]
    fn origins_must_be_exact_and_never_a_wildcard() {
        let p = problems(&[("CORS_ALLOWED_ORIGINS", "*, https://ok.example, ftp://x")]);
        assert_eq!(p.len(), 2, "{p:#?}");
        let s = settings(&[(
            "CORS_ALLOWED_ORIGINS",
            "https://app.example.com/, http://localhost:5173",
        )])
        .unwrap();
        assert_eq!(
            s.browser.allowed_origins,
            vec!["https://app.example.com", "http://localhost:5173"]
        );
        // Spelled as a browser sends an Origin: CORS matches exactly, so a listed
        // `https://App.example.com:443` must still match `https://app.example.com`.
        let s = settings(&[
            (
                "CORS_ALLOWED_ORIGINS",
                "https://App.Example.com:443,http://localhost:80,http://x.example:8080",
            ),
            ("PUBLIC_ORIGIN", "HTTPS://Auth.example.com/"),
        ])
        .unwrap();
        assert_eq!(
            s.browser.allowed_origins,
            vec![
                "https://app.example.com",
                "http://localhost",
                "http://x.example:8080"
            ]
        );
        assert_eq!(
            s.browser.public_origin.as_deref(),
            Some("https://auth.example.com")
        );
    }

    #[test]
    fn secrets_can_come_from_files_but_not_from_both_places() {
        let dir = std::env::temp_dir().join(format!("refreshd-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key");
        std::fs::write(&path, "from-a-file-0123456789-0123456789\n").unwrap();
        let path = path.to_str().unwrap();
        let s = settings(&[("SIGNING_KEY_FILE", path)]).unwrap();
        let SigningKey::Hmac { secret, .. } = &s.tokens.signing_key else {
            panic!("a given HS256 key, not {:?}", s.tokens.signing_key);
        };
        assert_eq!(secret.expose(), b"from-a-file-0123456789-0123456789");
        let p = problems(&[("SIGNING_KEY_FILE", path), ("SIGNING_KEY", "x")]);
        assert_eq!(
            p,
            vec!["SIGNING_KEY and SIGNING_KEY_FILE are both set: keep one"]
        );
        let empty = dir.join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let p = problems(&[("SIGNING_KEY_FILE", empty.to_str().unwrap())]);
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(p[0].ends_with("is empty: put the value in it"), "{p:#?}");
        assert!(settings(&[("REDIS_URL", "rediss://u:pw@cache:6380/")]).is_ok());
        let p = problems(&[("REDIS_URL", "rediss://cache:6380/#insecure")]);
        assert!(
            p[0].starts_with("REDIS_URL: a #fragment (such as #insecure) is not allowed"),
            "{p:#?}"
        );
        let p = problems(&[("REDIS_URL", "cache:6379")]);
        assert!(p[0].starts_with("REDIS_URL must be a redis://"), "{p:#?}");
        let p = problems(&[("REDIS_URL_FILE", "/nonexistent/refreshd")]);
        assert!(p[0].starts_with("REDIS_URL_FILE=/nonexistent/refreshd cannot be read"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn sentinels_need_a_master_name_and_host_port_addresses() {
        let s = settings(&[
            ("REDIS_SENTINELS", "10.0.0.5:26379, 10.0.0.6:26379"),
            ("REDIS_SENTINEL_MASTER", "refreshd"),
            ("REDIS_SENTINEL_PASSWORD", "s3cret"),
        ])
        .unwrap();
        let Backend::Sentinel {
            sentinels, master, ..
        } = &s.store.backend
        else {
            panic!("sentinels named: {:?}", s.store.backend);
        };
        assert_eq!(sentinels, &["10.0.0.5:26379", "10.0.0.6:26379"]);
        assert_eq!(master, "refreshd");
        assert!(!format!("{:?}", s.describe()).contains("s3cret"));
        let p = problems(&[("REDIS_SENTINELS", "10.0.0.5")]);
        assert!(
            p.iter()
                .any(|m| m.starts_with("REDIS_SENTINELS needs REDIS_SENTINEL_MASTER")),
            "{p:#?}"
        );
        assert!(
            p.iter()
                .any(|m| m.contains("\"10.0.0.5\" is not host:port")),
            "{p:#?}"
        );
        let p = problems(&[("REDIS_SENTINEL_MASTER", "refreshd")]);
        assert!(p[0].contains("need REDIS_SENTINELS"), "{p:#?}");
    }

    #[test]
    fn redis_min_replicas_is_a_small_number_and_needs_a_redis() {
        let s = settings(&[("REDIS_URL", "redis://cache/"), ("REDIS_MIN_REPLICAS", "2")]).unwrap();
        assert_eq!(s.store.min_replicas, 2);
        let p = problems(&[
            ("REDIS_URL", "redis://cache/"),
            ("REDIS_MIN_REPLICAS", "one"),
        ]);
        assert_eq!(
            p,
            vec!["REDIS_MIN_REPLICAS: \"one\" is not a number of replicas (0 to 64)"]
        );
        let p = problems(&[("REDIS_MIN_REPLICAS", "1")]);
        assert!(
            p[0].starts_with("REDIS_MIN_REPLICAS needs a Redis"),
            "{p:#?}"
        );
    }

    #[test]
    fn redis_tls_files_are_checked_and_need_a_rediss_url() {
        let dir = std::env::temp_dir().join(format!("refreshd-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let ca = ca.to_str().unwrap();
        assert!(settings(&[("REDIS_URL", "rediss://cache/"), ("REDIS_CA_FILE", ca)]).is_ok());
        let p = problems(&[("REDIS_URL", "redis://cache/"), ("REDIS_CA_FILE", ca)]);
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(
            p[0].starts_with("REDIS_CA_FILE is set but no Redis URL is rediss://"),
            "{p:#?}"
        );
        let p = problems(&[
            ("REDIS_URL", "rediss://cache/"),
            ("REDIS_CA_FILE", "/nonexistent/ca.pem"),
        ]);
        assert!(
            p[0].starts_with("REDIS_CA_FILE=/nonexistent/ca.pem cannot be read"),
            "{p:#?}"
        );
        let p = problems(&[
            ("REDIS_URL", "rediss://cache/"),
            ("REDIS_CLIENT_KEY_FILE", ca),
        ]);
        assert!(
            p.iter().any(|m| m.contains("holds no PEM PRIVATE KEY")),
            "{p:#?}"
        );
        assert!(
            p.iter()
                .any(|m| m
                    .starts_with("REDIS_CLIENT_CERT_FILE and REDIS_CLIENT_KEY_FILE go together")),
            "{p:#?}"
        );
        let p = problems(&[("REDIS_CLUSTER_NODES", "rediss://a:7000,redis://b:7000")]);
        assert!(p[0].contains("mixes rediss:// and redis://"), "{p:#?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_effective_settings_are_described_without_secrets() {
        let s = settings(&[
            ("SIGNING_KEY", "super-secret-value"),
            ("REDIS_URL", "redis://app:pw123@cache:6379/0"),
        ])
        .unwrap();
        let text = format!("{:?}", s.describe());
        assert!(
            !text.contains("super-secret-value") && !text.contains("pw123"),
            "{text}"
        );
        assert!(text.contains("redis://app:***@cache:6379/0"), "{text}");
        let names: Vec<&str> = s.describe().iter().map(|(n, _)| *n).collect();
        let declared: Vec<&str> = VARIABLES
            .iter()
            .filter(|v| v.name != "RUST_LOG")
            .map(|v| v.name)
            .collect();
        assert_eq!(
            names, declared,
            "check-config shows every variable, in order"
        );
    }

    #[test]
    fn no_variable_declared_secret_is_ever_shown() {
        // Alone, and beside sentinels (where REDIS_URL carries the data nodes' credentials).
        let contexts: [&[(&str, &str)]; 2] = [
            &[],
            &[
                ("REDIS_SENTINELS", "10.0.0.5:26379"),
                ("REDIS_SENTINEL_MASTER", "refreshd"),
            ],
        ];
        for context in contexts {
            for v in VARIABLES.iter().filter(|v| v.secret) {
                let value = format!("redis://user:hunter2-{}@cache:6379/", v.name);
                let mut map: HashMap<&str, &str> = context.iter().copied().collect();
                map.insert(v.name, &value);
                let (s, _) =
                    Settings::from_lookup_with_problems(|k| map.get(k).map(|v| v.to_string()));
                let shown = format!("{:?} {s:?}", s.describe());
                assert!(!shown.contains("hunter2"), "{} shows: {shown}", v.name);
            }
        }
    }

    #[test]
    fn every_declared_variable_is_read_and_every_default_parses() {
        let asked = std::cell::RefCell::new(Vec::<String>::new());
        let s = Settings::from_lookup(|k| {
            asked.borrow_mut().push(k.to_owned());
            None
        });
        assert!(s.is_ok(), "the defaults are a valid configuration: {s:?}");
        let asked = asked.into_inner();
        for v in VARIABLES {
            assert_eq!(
                asked.iter().any(|a| a == v.name),
                v.show.is_some(),
                "{} is declared, but Settings reads it: {}",
                v.name,
                v.show.is_some()
            );
            if v.from_file {
                assert!(asked.contains(&format!("{}_FILE", v.name)), "{}", v.name);
            }
        }
        for name in &asked {
            assert!(is_variable(name), "{name} is read but not declared");
        }
        assert!(is_variable("SIGNING_KEY_FILE") && !is_variable("LEEWAY_FILE"));
    }

    #[test]
    fn secrets_do_not_print() {
        let s = settings(&[
            ("SIGNING_KEY", "super-secret-value"),
            ("REDIS_URL", "redis://:pw@h/"),
        ])
        .unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("super-secret-value") && !shown.contains(":pw@"));
    }

    #[test]
    fn route_prefixes_must_be_paths_that_cannot_collide() {
        let s = settings(&[("TOKEN_API_PREFIX", "/api/user/token/")]).unwrap();
        assert_eq!(s.routes.token_api, "/api/user/token/");
        assert_eq!(s.routes.cookie_api, "/api/auth/");
        assert!(problems(&[("TOKEN_API_PREFIX", "api/token")])[0].starts_with("TOKEN_API_PREFIX"));
        let p = problems(&[("COOKIE_API_PREFIX", "/api/")]);
        assert!(p[0].contains("must not contain one another"), "{p:#?}");
    }

    #[test]
    fn listen_addresses_must_be_host_and_port_and_say_so() {
        assert_eq!(
            problems(&[("BIND_ADDR", "localhost")]),
            vec![
                "BIND_ADDR=localhost: expected host:port such as 127.0.0.1:8000 (or 0.0.0.0:8000 for every interface, [::1]:8000, localhost:8000)"
            ]
        );
        for bad in [
            "8000",
            ":8000",
            "127.0.0.1:http",
            "::1:8000",
            "[::1]",
            "a b:80",
        ] {
            let p = problems(&[("BIND_ADDR", bad)]);
            assert!(
                p[0].starts_with(&format!("BIND_ADDR={bad}: expected host:port")),
                "{p:#?}"
            );
        }
        for good in [
            "localhost:8000",
            "0.0.0.0:8000",
            "[::]:8000",
            "[::1]:0",
            "refreshd:8000",
        ] {
            assert_eq!(
                settings(&[("BIND_ADDR", good)]).unwrap().server.bind_addr,
                good
            );
        }
        let p = problems(&[("METRICS_ADDR", "9100")]);
        assert!(
            p[0].starts_with("METRICS_ADDR=9100: expected host:port"),
            "{p:#?}"
        );
        let p = problems(&[("METRICS_ADDR", "127.0.0.1:8000")]);
        assert!(p[0].contains("is BIND_ADDR"), "{p:#?}");
        let s = settings(&[("METRICS_ADDR", "127.0.0.1:9100")]).unwrap();
        assert_eq!(s.server.metrics_addr.as_deref(), Some("127.0.0.1:9100"));
        assert!(settings(&[]).unwrap().server.metrics_addr.is_none());
    }

    #[test]
    fn a_refused_configuration_still_describes_what_it_read() {
        let map: HashMap<&str, &str> = [
            ("BIND_ADDR", "localhost"),
            ("ACCESS_TOKEN_LIFETIME", "5s"),
            ("SIGNING_KEY", "do-not-show-me"),
        ]
        .into();
        let (s, p) = Settings::from_lookup_with_problems(|k| map.get(k).map(|v| v.to_string()));
        assert_eq!(p.len(), 1, "{p:#?}");
        let shown = s.describe();
        assert!(shown.contains(&("BIND_ADDR", "localhost".into())));
        assert!(shown.contains(&("ACCESS_TOKEN_LIFETIME", "5s".into())));
        assert!(!format!("{shown:?}").contains("do-not-show-me"));
    }

    #[test]
    fn trusted_proxies_take_addresses_and_ranges() {
        let s = settings(&[("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,::1")]).unwrap();
        assert_eq!(s.browser.trusted_proxies.len(), 3);
        assert!(problems(&[("TRUSTED_PROXIES", "proxy.local")])[0].starts_with("TRUSTED_PROXIES"));
    }

    /// `.env.example`, from the declarations: each variable's doc (as plain text) over its default.
    fn env_example() -> String {
        let from_file: Vec<&str> = VARIABLES
            .iter()
            .filter(|v| v.from_file)
            .map(|v| v.name)
            .collect();
        let (last, rest) = from_file
            .split_last()
            .expect("some secrets come from files");
        let mut text = format!(
            "# refreshd settings. Copy to .env and edit; real environment variables win over .env.\n\
             # Every line below shows the default. Durations take seconds (900) or units (10s, 15m, 12h, 30d).\n\
             # {} and {last} may instead be given as NAME_FILE=/path/to/file.\n\
             # Made from VARIABLES in src/config.rs: edit there, then run UPDATE_SETTINGS_DOCS=1 cargo test --lib config\n",
            rest.join(", ")
        );
        for v in VARIABLES {
            text.push_str(&format!(
                "\n# {}\n{}={}\n",
                v.doc.replace('`', ""),
                v.name,
                v.default
            ));
        }
        text
    }

    /// The README's settings table, from the declarations.
    fn readme_table() -> String {
        let mut table = String::from("| variable | default | meaning |\n| --- | --- | --- |\n");
        for v in VARIABLES {
            assert!(
                !v.doc.contains('|'),
                "{}: a | in its doc breaks the table",
                v.name
            );
            let default = if v.default.is_empty() {
                "unset".to_owned()
            } else {
                format!("`{}`", v.default)
            };
            table.push_str(&format!("| `{}` | {default} | {} |\n", v.name, v.doc));
        }
        table
    }

    /// Compares a file with what the declarations make of it; with UPDATE_SETTINGS_DOCS set,
    /// rewrites it instead.
    fn same_as_declared(file: &str, made: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        if text == made {
            return;
        }
        if std::env::var_os("UPDATE_SETTINGS_DOCS").is_some() {
            std::fs::write(&path, made).unwrap();
            return;
        }
        let first = text
            .lines()
            .zip(made.lines())
            .find(|(a, b)| a != b)
            .map_or_else(
                || "(one is longer)".into(),
                |(a, b)| format!("{a}\n  declared: {b}"),
            );
        panic!(
            "{file} differs from config::VARIABLES at:\n  file:     {first}\nRun UPDATE_SETTINGS_DOCS=1 cargo test --lib config to remake it"
        );
    }

    #[test]
    fn the_env_example_is_made_from_the_declarations() {
        same_as_declared(".env.example", &env_example());
    }

    #[test]
    fn the_readme_settings_table_is_made_from_the_declarations() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
        let text = std::fs::read_to_string(path).unwrap();
        let start = text
            .find("| variable | default | meaning |")
            .expect("the README has its settings table");
        let len = text[start..]
            .split_inclusive('\n')
            .take_while(|l| l.starts_with('|'))
            .map(str::len)
            .sum::<usize>();
        let made = format!(
            "{}{}{}",
            &text[..start],
            readme_table(),
            &text[start + len..]
        );
        same_as_declared("README.md", &made);
    }
}

//! Settings: one typed field per environment variable, every default in the `VARIABLES` table, and
//! `validate` that reports every problem at once, naming the variable and the fix. Reads nothing
//! by itself: callers pass a lookup function (main passes the environment, tests pass a map).
//! Depends on no other module of the crate.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

/// Every variable the server reads, with its default ("" means unset). `.env.example` lists the
/// same names with the same defaults; a test keeps the two in step.
pub const VARIABLES: &[(&str, &str)] = &[
    ("APP_ENV", "development"),
    ("BIND_ADDR", "127.0.0.1:8000"),
    ("WORKERS", "0"),
    ("REDIS_URL", ""),
    ("REDIS_CLUSTER_NODES", ""),
    ("REDIS_SENTINELS", ""),
    ("REDIS_SENTINEL_MASTER", ""),
    ("REDIS_SENTINEL_PASSWORD", ""),
    ("REDIS_CA_FILE", ""),
    ("REDIS_CLIENT_CERT_FILE", ""),
    ("REDIS_CLIENT_KEY_FILE", ""),
    ("STORE_TIMEOUT", "2s"),
    ("REDIS_MIN_REPLICAS", "0"),
    ("SHUTDOWN_TIMEOUT", "10s"),
    ("REQUEST_BODY_TIMEOUT", "10s"),
    ("MAX_CONNECTIONS", "0"),
    ("SIGNING_KEY", ""),
    ("ALGORITHM", "HS256"),
    ("VERIFYING_KEY", ""),
    ("RETIRED_KEYS_DIR", ""),
    ("ACCESS_TOKEN_LIFETIME", "15m"),
    ("REFRESH_TOKEN_LIFETIME", "30d"),
    ("ROTATE_REFRESH_TOKENS", "true"),
    ("BLACKLIST_AFTER_ROTATION", "true"),
    ("REFRESH_TOKEN_REUSE_INTERVAL", "10s"),
    ("LEEWAY", "0"),
    ("ISSUER", ""),
    ("AUDIENCE", ""),
    ("USER_ID_CLAIM", "user_id"),
    ("ACCESS_COOKIE_NAME", "access_token"),
    ("REFRESH_COOKIE_NAME", "refresh_token"),
    ("COOKIE_DOMAIN", ""),
    ("COOKIE_SECURE", ""),
    ("COOKIE_SAMESITE", "Lax"),
    ("REFRESH_COOKIE_PATH", "/"),
    ("CORS_ALLOWED_ORIGINS", ""),
    ("PUBLIC_ORIGIN", ""),
    ("SESSION_MAX_LIFETIME", ""),
    ("SESSION_IDLE_TIMEOUT", ""),
    ("ADOPT_FOREIGN_TOKENS", "true"),
    ("LOGIN_MAX_FAILURES", "10"),
    ("LOGIN_FAILURE_WINDOW", "15m"),
    ("TRUSTED_PROXIES", ""),
    ("COOKIE_API_PREFIX", "/api/auth/"),
    ("TOKEN_API_PREFIX", "/api/token/"),
    ("RUST_LOG", "info"),
    ("LOG_FORMAT", "text"),
    ("METRICS", "true"),
    ("METRICS_ADDR", ""),
];

/// Secrets that may be given as `X_FILE`, the path of a file holding the value.
const FILE_VARIABLES: &[&str] = &["SIGNING_KEY", "VERIFYING_KEY", "REDIS_URL"];

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
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub production: bool,
    pub bind_addr: String,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// `None` (and no cluster): the in-process store.
    pub redis_url: Option<Secret>,
    /// A Redis Cluster's seed nodes (`redis://host:port` each), instead of REDIS_URL.
    pub redis_cluster_nodes: Vec<String>,
    /// Sentinels (`host:port` each) that name the master, instead of REDIS_URL's host; REDIS_URL,
    /// if set, then gives the data nodes' scheme, user, password and database.
    pub redis_sentinels: Vec<String>,
    pub redis_sentinel_master: Option<String>,
    pub redis_sentinel_password: Option<Secret>,
    /// For `rediss://`: a PEM file of the only roots trusted (unset: the system's roots).
    pub redis_ca_file: Option<String>,
    /// For mutual TLS: a PEM client certificate (chain) and its private key.
    pub redis_client_cert_file: Option<String>,
    pub redis_client_key_file: Option<String>,
    pub store_timeout: Duration,
    /// Replicas that must hold each write a client is told about (Redis WAIT); 0: none.
    pub redis_min_replicas: u32,
    /// How long requests in flight may take to finish after SIGTERM/SIGINT.
    pub shutdown_timeout: Duration,
    /// How long a request's body may take to arrive, from the end of its head; then 408.
    pub request_body_timeout: Duration,
    /// Open connections at most, all workers together; 0: derived from the descriptor limit.
    pub max_connections: usize,
    pub signing_key: Secret,
    /// True when no SIGNING_KEY was given: the token layer makes a random key for this process.
    pub signing_key_generated: bool,
    pub algorithm: Algorithm,
    /// The public key (PEM) for asymmetric algorithms; derived from SIGNING_KEY when unset.
    pub verifying_key: Option<Secret>,
    /// Keys retired by a rotation, still accepted for verification (PEM public keys, or files
    /// holding old HMAC secrets).
    pub retired_keys_dir: Option<std::path::PathBuf>,
    pub access_token_lifetime: Duration,
    pub refresh_token_lifetime: Duration,
    pub rotate_refresh_tokens: bool,
    pub blacklist_after_rotation: bool,
    pub refresh_token_reuse_interval: Duration,
    pub leeway: Duration,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub user_id_claim: String,
    pub access_cookie_name: String,
    pub refresh_cookie_name: String,
    pub cookie_domain: Option<String>,
    pub cookie_secure: bool,
    pub cookie_samesite: SameSite,
    pub refresh_cookie_path: String,
    pub cors_allowed_origins: Vec<String>,
    pub public_origin: Option<String>,
    pub session_max_lifetime: Option<Duration>,
    /// A session not refreshed for this long ends (checked on every refresh).
    pub session_idle_timeout: Option<Duration>,
    /// Whether tokens minted elsewhere (no `sid`) start a session at their first refresh.
    pub adopt_foreign_tokens: bool,
    pub login_max_failures: u32,
    pub login_failure_window: Duration,
    pub trusted_proxies: Vec<IpNet>,
    /// Where the cookie API's routes live (`<prefix>login/`, `<prefix>token/refresh/`, ...).
    pub cookie_api_prefix: String,
    /// Where the SimpleJWT-compatible API lives (`<prefix>`, `<prefix>refresh/`, ...).
    pub token_api_prefix: String,
    /// `LOG_FORMAT=json`: one JSON object per log line.
    pub log_json: bool,
    /// Count and time requests for GET /metrics.
    pub metrics: bool,
    /// A private listener (`host:port`) for /metrics and /readyz; with it, /metrics leaves the
    /// public listener.
    pub metrics_addr: Option<String>,
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

/// Reads raw values: the variable itself, or the file its `_FILE` twin names, or the default.
struct Reader<'a, F: Fn(&str) -> Option<String>> {
    lookup: &'a F,
    problems: Vec<String>,
}

impl<F: Fn(&str) -> Option<String>> Reader<'_, F> {
    fn default_of(name: &str) -> &'static str {
        VARIABLES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| *d)
            .unwrap_or_else(|| panic!("{name} is missing from config::VARIABLES"))
    }

    /// The value, or `None` when unset or empty and without a default.
    fn raw(&mut self, name: &str) -> Option<String> {
        let direct = (self.lookup)(name).filter(|v| !v.is_empty());
        if FILE_VARIABLES.contains(&name) {
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
        direct.or_else(|| {
            let d = Self::default_of(name);
            (!d.is_empty()).then(|| d.to_owned())
        })
    }

    fn string(&mut self, name: &str) -> String {
        self.raw(name).unwrap_or_default()
    }

    fn optional(&mut self, name: &str) -> Option<String> {
        self.raw(name)
    }

    fn parsed<T>(
        &mut self,
        name: &str,
        fallback: T,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> T {
        match self.raw(name) {
            None => fallback,
            Some(raw) => match parse(&raw) {
                Ok(v) => v,
                Err(why) => {
                    self.problems.push(format!("{name}: {why}"));
                    fallback
                }
            },
        }
    }

    fn duration(&mut self, name: &str) -> Duration {
        let fallback = parse_duration(Self::default_of(name)).unwrap_or_default();
        self.parsed(name, fallback, parse_duration)
    }

    fn bool(&mut self, name: &str) -> bool {
        let fallback = parse_bool(Self::default_of(name)).unwrap_or(false);
        self.parsed(name, fallback, parse_bool)
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

        let production = match r.string("APP_ENV").to_ascii_lowercase().as_str() {
            "production" | "prod" => true,
            "development" | "dev" | "test" | "" => false,
            other => {
                r.problems.push(format!(
                    "APP_ENV: {other:?} is not known (use development or production)"
                ));
                false
            }
        };
        let algorithm = r.parsed("ALGORITHM", Algorithm::HS256, |s| {
            Algorithm::parse(s).ok_or_else(|| {
                format!(
                    "{s:?} is not supported (use HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384 or EdDSA)"
                )
            })
        });
        let (signing_key, signing_key_generated) = match r.optional("SIGNING_KEY") {
            Some(k) => (Secret::new(k.into_bytes()), false),
            None => {
                use rand::RngCore;
                let mut key = vec![0u8; 64];
                rand::thread_rng().fill_bytes(&mut key);
                (Secret::new(key), true)
            }
        };
        let verifying_key = r
            .optional("VERIFYING_KEY")
            .map(|k| Secret::new(k.into_bytes()));
        let samesite = r.parsed("COOKIE_SAMESITE", SameSite::Lax, |s| {
            match s.to_ascii_lowercase().as_str() {
                "lax" => Ok(SameSite::Lax),
                "strict" => Ok(SameSite::Strict),
                "none" => Ok(SameSite::None),
                other => Err(format!("{other:?} is not Lax, Strict or None")),
            }
        });
        let cookie_secure = match r.optional("COOKIE_SECURE") {
            None => production,
            Some(raw) => match parse_bool(&raw) {
                Ok(b) => b,
                Err(why) => {
                    r.problems.push(format!("COOKIE_SECURE: {why}"));
                    production
                }
            },
        };
        let optional_duration = |r: &mut Reader<'_, F>, name: &str| {
            r.optional(name).and_then(|raw| match parse_duration(&raw) {
                Ok(d) if d.is_zero() => None,
                Ok(d) => Some(d),
                Err(why) => {
                    r.problems.push(format!("{name}: {why}"));
                    None
                }
            })
        };
        let session_max_lifetime = optional_duration(&mut r, "SESSION_MAX_LIFETIME");
        let session_idle_timeout = optional_duration(&mut r, "SESSION_IDLE_TIMEOUT");

        let settings = Settings {
            production,
            bind_addr: r.string("BIND_ADDR"),
            workers: r.parsed("WORKERS", 0, |s| {
                s.parse::<usize>()
                    .ok()
                    .filter(|n| *n <= 1024)
                    .ok_or_else(|| format!("{s:?} is not a number of threads (0 for one per core)"))
            }),
            redis_url: r.optional("REDIS_URL").map(|u| Secret::new(u.into_bytes())),
            redis_cluster_nodes: r
                .string("REDIS_CLUSTER_NODES")
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            redis_sentinels: r
                .string("REDIS_SENTINELS")
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            redis_sentinel_master: r.optional("REDIS_SENTINEL_MASTER"),
            redis_sentinel_password: r
                .optional("REDIS_SENTINEL_PASSWORD")
                .map(|p| Secret::new(p.into_bytes())),
            redis_ca_file: r.optional("REDIS_CA_FILE"),
            redis_client_cert_file: r.optional("REDIS_CLIENT_CERT_FILE"),
            redis_client_key_file: r.optional("REDIS_CLIENT_KEY_FILE"),
            store_timeout: r.duration("STORE_TIMEOUT"),
            redis_min_replicas: r.parsed("REDIS_MIN_REPLICAS", 0, |s| {
                s.parse::<u32>()
                    .ok()
                    .filter(|n| *n <= 64)
                    .ok_or_else(|| format!("{s:?} is not a number of replicas (0 to 64)"))
            }),
            shutdown_timeout: r.duration("SHUTDOWN_TIMEOUT"),
            request_body_timeout: r.duration("REQUEST_BODY_TIMEOUT"),
            max_connections: r.parsed("MAX_CONNECTIONS", 0, |s| {
                s.parse::<usize>()
                    .ok()
                    .filter(|n| *n == 0 || (16..=1_000_000).contains(n))
                    .ok_or_else(|| {
                        format!("{s:?} is not a number of connections from 16 to 1000000 (0 derives it from the descriptor limit)")
                    })
            }),
            signing_key,
            signing_key_generated,
            algorithm,
            verifying_key,
            retired_keys_dir: r.optional("RETIRED_KEYS_DIR").map(std::path::PathBuf::from),
            access_token_lifetime: r.duration("ACCESS_TOKEN_LIFETIME"),
            refresh_token_lifetime: r.duration("REFRESH_TOKEN_LIFETIME"),
            rotate_refresh_tokens: r.bool("ROTATE_REFRESH_TOKENS"),
            blacklist_after_rotation: r.bool("BLACKLIST_AFTER_ROTATION"),
            refresh_token_reuse_interval: r.duration("REFRESH_TOKEN_REUSE_INTERVAL"),
            leeway: r.duration("LEEWAY"),
            issuer: r.optional("ISSUER"),
            audience: r.optional("AUDIENCE"),
            user_id_claim: r.string("USER_ID_CLAIM"),
            access_cookie_name: r.string("ACCESS_COOKIE_NAME"),
            refresh_cookie_name: r.string("REFRESH_COOKIE_NAME"),
            cookie_domain: r.optional("COOKIE_DOMAIN"),
            cookie_secure,
            cookie_samesite: samesite,
            refresh_cookie_path: r.string("REFRESH_COOKIE_PATH"),
            // Spelled as browsers send an Origin, so that CORS (an exact match) and the CSRF
            // check agree on what is listed.
            cors_allowed_origins: r
                .string("CORS_ALLOWED_ORIGINS")
                .split(',')
                .map(canonical_origin)
                .filter(|s| !s.is_empty())
                .collect(),
            public_origin: r.optional("PUBLIC_ORIGIN").map(|s| canonical_origin(&s)),
            session_max_lifetime,
            session_idle_timeout,
            adopt_foreign_tokens: r.bool("ADOPT_FOREIGN_TOKENS"),
            login_max_failures: r.parsed("LOGIN_MAX_FAILURES", 10, |s| {
                s.parse::<u32>()
                    .map_err(|_| format!("{s:?} is not a whole number"))
            }),
            login_failure_window: r.duration("LOGIN_FAILURE_WINDOW"),
            trusted_proxies: r.parsed("TRUSTED_PROXIES", Vec::new(), parse_proxies),
            cookie_api_prefix: r.string("COOKIE_API_PREFIX"),
            token_api_prefix: r.string("TOKEN_API_PREFIX"),
            log_json: r.parsed("LOG_FORMAT", false, |s| {
                match s.to_ascii_lowercase().as_str() {
                    "text" => Ok(false),
                    "json" => Ok(true),
                    other => Err(format!("{other:?} is not text or json")),
                }
            }),
            metrics: r.bool("METRICS"),
            metrics_addr: r.optional("METRICS_ADDR"),
        };
        let mut problems = r.problems;
        settings.validate(&mut problems);
        (settings, problems)
    }

    /// Cross-field rules. Each message names the variable and what it needs.
    fn validate(&self, problems: &mut Vec<String>) {
        problems.extend(check_listen_addr("BIND_ADDR", &self.bind_addr));
        if let Some(addr) = &self.metrics_addr {
            problems.extend(check_listen_addr("METRICS_ADDR", addr));
            if *addr == self.bind_addr && !addr.ends_with(":0") {
                problems.push(format!(
                    "METRICS_ADDR={addr} is BIND_ADDR: give the private listener a port of its own (such as 127.0.0.1:9100), or leave METRICS_ADDR unset to serve /metrics on BIND_ADDR"
                ));
            }
        }
        let mut need = |ok: bool, msg: &str| {
            if !ok {
                problems.push(msg.to_owned());
            }
        };
        need(
            self.access_token_lifetime >= Duration::from_secs(1),
            "ACCESS_TOKEN_LIFETIME must be at least 1s",
        );
        need(
            self.refresh_token_lifetime >= Duration::from_secs(1),
            "REFRESH_TOKEN_LIFETIME must be at least 1s",
        );
        need(
            self.store_timeout >= Duration::from_millis(10),
            "STORE_TIMEOUT must be at least 10ms",
        );
        need(
            self.request_body_timeout >= Duration::from_millis(100),
            "REQUEST_BODY_TIMEOUT must be at least 100ms (default 10s)",
        );
        need(
            self.shutdown_timeout >= Duration::from_secs(1),
            "SHUTDOWN_TIMEOUT must be at least 1s (it counts whole seconds)",
        );
        need(
            is_claim_name(&self.user_id_claim),
            "USER_ID_CLAIM must be a claim name of letters, digits and _ (default user_id)",
        );
        need(
            !matches!(
                self.user_id_claim.as_str(),
                "token_type" | "exp" | "iat" | "jti" | "sid" | "iss" | "aud" | "nbf"
            ),
            "USER_ID_CLAIM must not be one of the registered claims (token_type, exp, iat, jti, sid, iss, aud, nbf)",
        );
        for (var, name) in [
            ("ACCESS_COOKIE_NAME", &self.access_cookie_name),
            ("REFRESH_COOKIE_NAME", &self.refresh_cookie_name),
        ] {
            if !is_cookie_name(name) {
                problems.push(format!(
                    "{var} must be a cookie name (letters, digits and !#$%&'*+-.^_`|~)"
                ));
                continue;
            }
            // Browsers match the prefixes without regard to case.
            if (has_prefix(name, "__Host-") || has_prefix(name, "__Secure-")) && !self.cookie_secure
            {
                problems.push(format!(
                    "{var}={name} requires COOKIE_SECURE=true (browsers drop prefixed cookies without Secure)"
                ));
            }
            if has_prefix(name, "__Host-") && self.cookie_domain.is_some() {
                problems.push(format!(
                    "{var}={name} forbids COOKIE_DOMAIN (a __Host- cookie is bound to one host)"
                ));
            }
        }
        if has_prefix(&self.refresh_cookie_name, "__Host-") && self.refresh_cookie_path != "/" {
            problems.push(format!(
                "REFRESH_COOKIE_NAME={} requires REFRESH_COOKIE_PATH=/ (a __Host- cookie must have Path=/)",
                self.refresh_cookie_name
            ));
        }
        if self.access_cookie_name == self.refresh_cookie_name {
            problems.push("ACCESS_COOKIE_NAME and REFRESH_COOKIE_NAME must differ".into());
        }
        if !self.refresh_cookie_path.starts_with('/')
            || self
                .refresh_cookie_path
                .contains([';', ',', ' ', '\t', '\r', '\n'])
        {
            problems.push("REFRESH_COOKIE_PATH must be a path starting with / (default /)".into());
        }
        if let Some(domain) = &self.cookie_domain
            && (domain.contains([';', ',', ' ', '/', ':']) || domain.trim_matches('.').is_empty())
        {
            problems.push(format!(
                "COOKIE_DOMAIN={domain:?} is not a domain name (leave it unset for a host-only cookie)"
            ));
        }
        if self.cookie_samesite == SameSite::None && !self.cookie_secure {
            problems.push(
                "COOKIE_SAMESITE=None requires COOKIE_SECURE=true (browsers reject SameSite=None cookies without Secure)".into(),
            );
        }
        for origin in &self.cors_allowed_origins {
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
        for (var, prefix) in [
            ("COOKIE_API_PREFIX", &self.cookie_api_prefix),
            ("TOKEN_API_PREFIX", &self.token_api_prefix),
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
        if self.cookie_api_prefix.starts_with(&self.token_api_prefix)
            || self.token_api_prefix.starts_with(&self.cookie_api_prefix)
        {
            problems.push(format!(
                "COOKIE_API_PREFIX={} and TOKEN_API_PREFIX={} must not contain one another (their routes would collide)",
                self.cookie_api_prefix, self.token_api_prefix
            ));
        }
        if self.redis_url.is_some() && !self.redis_cluster_nodes.is_empty() {
            problems.push("REDIS_URL and REDIS_CLUSTER_NODES are both set: name one store".into());
        }
        let urls: Vec<(&str, String)> = self
            .redis_url
            .iter()
            .map(|u| {
                (
                    "REDIS_URL",
                    String::from_utf8_lossy(u.expose()).into_owned(),
                )
            })
            .chain(
                self.redis_cluster_nodes
                    .iter()
                    .map(|n| ("REDIS_CLUSTER_NODES", n.clone())),
            )
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
            ("REDIS_CA_FILE", &self.redis_ca_file, "CERTIFICATE"),
            (
                "REDIS_CLIENT_CERT_FILE",
                &self.redis_client_cert_file,
                "CERTIFICATE",
            ),
            (
                "REDIS_CLIENT_KEY_FILE",
                &self.redis_client_key_file,
                "PRIVATE KEY",
            ),
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
        if !self.redis_sentinels.is_empty() {
            if !self.redis_cluster_nodes.is_empty() {
                problems.push(
                    "REDIS_CLUSTER_NODES and REDIS_SENTINELS are both set: name one store".into(),
                );
            }
            if self.redis_sentinel_master.is_none() {
                problems.push("REDIS_SENTINELS needs REDIS_SENTINEL_MASTER, the name of the master group the sentinels monitor".into());
            }
            for sentinel in &self.redis_sentinels {
                let ok = sentinel
                    .rsplit_once(':')
                    .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
                if !ok {
                    problems.push(format!(
                        "REDIS_SENTINELS: {sentinel:?} is not host:port (such as 10.0.0.5:26379)"
                    ));
                }
            }
        } else if self.redis_sentinel_master.is_some() || self.redis_sentinel_password.is_some() {
            problems.push("REDIS_SENTINEL_MASTER and REDIS_SENTINEL_PASSWORD need REDIS_SENTINELS (the sentinels' host:port list)".into());
        }
        if self.redis_min_replicas > 0 && urls.is_empty() && self.redis_sentinels.is_empty() {
            problems.push("REDIS_MIN_REPLICAS needs a Redis (REDIS_URL or REDIS_CLUSTER_NODES): the in-process store has no replicas".into());
        }
        if self.redis_client_cert_file.is_some() != self.redis_client_key_file.is_some() {
            problems.push("REDIS_CLIENT_CERT_FILE and REDIS_CLIENT_KEY_FILE go together: set both for mutual TLS, or neither".into());
        }
        if self.login_max_failures > 0 && self.login_failure_window.is_zero() {
            problems.push("LOGIN_FAILURE_WINDOW must be longer than 0 (or set LOGIN_MAX_FAILURES=0 to turn limiting off)".into());
        }
        if self.production {
            if self.signing_key_generated {
                problems.push("APP_ENV=production requires SIGNING_KEY (or SIGNING_KEY_FILE): for HS* a random secret of at least 32 bytes, for RS*/ES*/EdDSA a PEM private key (`refreshd keys generate --alg ...` makes either)".into());
            } else if self.algorithm.is_hmac()
                && self.signing_key.expose().len() < MIN_HMAC_KEY_BYTES
            {
                problems.push(format!(
                    "SIGNING_KEY is {} bytes; APP_ENV=production requires at least {MIN_HMAC_KEY_BYTES} for {}",
                    self.signing_key.expose().len(),
                    self.algorithm.as_str()
                ));
            }
            if self.redis_url.is_none()
                && self.redis_cluster_nodes.is_empty()
                && self.redis_sentinels.is_empty()
            {
                problems.push("APP_ENV=production requires REDIS_URL (or REDIS_URL_FILE), REDIS_CLUSTER_NODES or REDIS_SENTINELS: the in-process store loses every session on restart and is not shared between instances".into());
            }
            if !self.cookie_secure {
                problems.push(
                    "APP_ENV=production requires COOKIE_SECURE=true (or leave it unset)".into(),
                );
            }
        }
    }
}

impl Settings {
    /// Every variable with its effective value, secrets redacted, for `refreshd check-config`.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let d = |d: std::time::Duration| humantime::format_duration(d).to_string();
        let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "(unset)".into());
        vec![
            (
                "APP_ENV",
                if self.production {
                    "production"
                } else {
                    "development"
                }
                .into(),
            ),
            ("BIND_ADDR", self.bind_addr.clone()),
            (
                "WORKERS",
                if self.workers == 0 {
                    "0 (one per core)".into()
                } else {
                    self.workers.to_string()
                },
            ),
            (
                "REDIS_URL",
                match &self.redis_url {
                    Some(url) => redact_url(&String::from_utf8_lossy(url.expose())),
                    None => "(unset: in-process store)".into(),
                },
            ),
            (
                "REDIS_CLUSTER_NODES",
                self.redis_cluster_nodes
                    .iter()
                    .map(|u| redact_url(u))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("REDIS_SENTINELS", self.redis_sentinels.join(",")),
            ("REDIS_SENTINEL_MASTER", opt(&self.redis_sentinel_master)),
            (
                "REDIS_SENTINEL_PASSWORD",
                if self.redis_sentinel_password.is_some() {
                    "(set)".into()
                } else {
                    "(unset)".into()
                },
            ),
            ("REDIS_CA_FILE", opt(&self.redis_ca_file)),
            ("REDIS_CLIENT_CERT_FILE", opt(&self.redis_client_cert_file)),
            ("REDIS_CLIENT_KEY_FILE", opt(&self.redis_client_key_file)),
            ("STORE_TIMEOUT", d(self.store_timeout)),
            ("REDIS_MIN_REPLICAS", self.redis_min_replicas.to_string()),
            ("SHUTDOWN_TIMEOUT", d(self.shutdown_timeout)),
            ("REQUEST_BODY_TIMEOUT", d(self.request_body_timeout)),
            (
                "MAX_CONNECTIONS",
                if self.max_connections == 0 {
                    "0 (from the descriptor limit)".into()
                } else {
                    self.max_connections.to_string()
                },
            ),
            (
                "SIGNING_KEY",
                if self.signing_key_generated {
                    "(random development key)".into()
                } else {
                    format!("(set, {} bytes)", self.signing_key.expose().len())
                },
            ),
            ("ALGORITHM", self.algorithm.as_str().into()),
            (
                "VERIFYING_KEY",
                if self.verifying_key.is_some() {
                    "(set)"
                } else {
                    "(unset)"
                }
                .into(),
            ),
            (
                "RETIRED_KEYS_DIR",
                self.retired_keys_dir
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "(unset)".into()),
            ),
            ("ACCESS_TOKEN_LIFETIME", d(self.access_token_lifetime)),
            ("REFRESH_TOKEN_LIFETIME", d(self.refresh_token_lifetime)),
            (
                "ROTATE_REFRESH_TOKENS",
                self.rotate_refresh_tokens.to_string(),
            ),
            (
                "BLACKLIST_AFTER_ROTATION",
                self.blacklist_after_rotation.to_string(),
            ),
            (
                "REFRESH_TOKEN_REUSE_INTERVAL",
                d(self.refresh_token_reuse_interval),
            ),
            ("LEEWAY", d(self.leeway)),
            ("ISSUER", opt(&self.issuer)),
            ("AUDIENCE", opt(&self.audience)),
            ("USER_ID_CLAIM", self.user_id_claim.clone()),
            ("ACCESS_COOKIE_NAME", self.access_cookie_name.clone()),
            ("REFRESH_COOKIE_NAME", self.refresh_cookie_name.clone()),
            ("COOKIE_DOMAIN", opt(&self.cookie_domain)),
            ("COOKIE_SECURE", self.cookie_secure.to_string()),
            ("COOKIE_SAMESITE", self.cookie_samesite.as_str().into()),
            ("REFRESH_COOKIE_PATH", self.refresh_cookie_path.clone()),
            ("CORS_ALLOWED_ORIGINS", self.cors_allowed_origins.join(",")),
            ("PUBLIC_ORIGIN", opt(&self.public_origin)),
            (
                "SESSION_MAX_LIFETIME",
                self.session_max_lifetime
                    .map(d)
                    .unwrap_or_else(|| "(unset)".into()),
            ),
            (
                "SESSION_IDLE_TIMEOUT",
                self.session_idle_timeout
                    .map(d)
                    .unwrap_or_else(|| "(unset)".into()),
            ),
            (
                "ADOPT_FOREIGN_TOKENS",
                self.adopt_foreign_tokens.to_string(),
            ),
            ("LOGIN_MAX_FAILURES", self.login_max_failures.to_string()),
            ("LOGIN_FAILURE_WINDOW", d(self.login_failure_window)),
            (
                "TRUSTED_PROXIES",
                self.trusted_proxies
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("COOKIE_API_PREFIX", self.cookie_api_prefix.clone()),
            ("TOKEN_API_PREFIX", self.token_api_prefix.clone()),
            (
                "LOG_FORMAT",
                if self.log_json { "json" } else { "text" }.into(),
            ),
            ("METRICS", self.metrics.to_string()),
            (
                "METRICS_ADDR",
                self.metrics_addr
                    .clone()
                    .unwrap_or_else(|| "(unset: /metrics on BIND_ADDR)".into()),
            ),
        ]
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
        assert!(!s.production);
        assert_eq!(s.bind_addr, "127.0.0.1:8000");
        assert!(s.redis_url.is_none());
        assert!(s.signing_key_generated);
        assert_eq!(s.signing_key.expose().len(), 64);
        assert_eq!(s.algorithm, Algorithm::HS256);
        assert_eq!(s.access_token_lifetime, Duration::from_secs(900));
        assert_eq!(s.refresh_token_lifetime, Duration::from_secs(30 * 86400));
        assert!(s.rotate_refresh_tokens && s.blacklist_after_rotation);
        assert_eq!(s.refresh_token_reuse_interval, Duration::from_secs(10));
        assert_eq!(s.leeway, Duration::ZERO);
        assert_eq!(s.user_id_claim, "user_id");
        assert_eq!(s.access_cookie_name, "access_token");
        assert_eq!(s.refresh_cookie_name, "refresh_token");
        assert!(!s.cookie_secure);
        assert_eq!(s.cookie_samesite, SameSite::Lax);
        assert_eq!(s.refresh_cookie_path, "/");
        assert!(s.cors_allowed_origins.is_empty());
        assert!(s.session_max_lifetime.is_none());
        assert_eq!(s.login_max_failures, 10);
        assert_eq!(s.login_failure_window, Duration::from_secs(900));
        assert_eq!(s.request_body_timeout, Duration::from_secs(10));
        assert_eq!(s.max_connections, 0);
        let s = settings(&[("REQUEST_BODY_TIMEOUT", "15m"), ("MAX_CONNECTIONS", "500")]).unwrap();
        assert_eq!(s.request_body_timeout, Duration::from_secs(900));
        assert_eq!(s.max_connections, 500);
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
        assert!(s.cookie_secure, "production defaults COOKIE_SECURE to true");
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
            s.cors_allowed_origins,
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
            s.cors_allowed_origins,
            vec![
                "https://app.example.com",
                "http://localhost",
                "http://x.example:8080"
            ]
        );
        assert_eq!(s.public_origin.as_deref(), Some("https://auth.example.com"));
    }

    #[test]
    fn secrets_can_come_from_files_but_not_from_both_places() {
        let dir = std::env::temp_dir().join(format!("refreshd-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key");
        std::fs::write(&path, "from-a-file-0123456789-0123456789\n").unwrap();
        let path = path.to_str().unwrap();
        let s = settings(&[("SIGNING_KEY_FILE", path)]).unwrap();
        assert_eq!(s.signing_key.expose(), b"from-a-file-0123456789-0123456789");
        assert!(!s.signing_key_generated);
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
        assert_eq!(s.redis_sentinels, ["10.0.0.5:26379", "10.0.0.6:26379"]);
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
        assert_eq!(s.redis_min_replicas, 2);
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
        for (var, _) in VARIABLES {
            if *var != "RUST_LOG" {
                assert!(names.contains(var), "check-config does not show {var}");
            }
        }
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
        assert_eq!(s.token_api_prefix, "/api/user/token/");
        assert_eq!(s.cookie_api_prefix, "/api/auth/");
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
            assert_eq!(settings(&[("BIND_ADDR", good)]).unwrap().bind_addr, good);
        }
        let p = problems(&[("METRICS_ADDR", "9100")]);
        assert!(
            p[0].starts_with("METRICS_ADDR=9100: expected host:port"),
            "{p:#?}"
        );
        let p = problems(&[("METRICS_ADDR", "127.0.0.1:8000")]);
        assert!(p[0].contains("is BIND_ADDR"), "{p:#?}");
        let s = settings(&[("METRICS_ADDR", "127.0.0.1:9100")]).unwrap();
        assert_eq!(s.metrics_addr.as_deref(), Some("127.0.0.1:9100"));
        assert!(settings(&[]).unwrap().metrics_addr.is_none());
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
        assert_eq!(s.trusted_proxies.len(), 3);
        assert!(problems(&[("TRUSTED_PROXIES", "proxy.local")])[0].starts_with("TRUSTED_PROXIES"));
    }

    #[test]
    fn the_readme_settings_table_lists_every_variable_with_its_default() {
        let text = include_str!("../README.md");
        let table = text
            .split("## Settings")
            .nth(1)
            .expect("the README has a Settings section");
        for (name, default) in VARIABLES {
            let row = table
                .lines()
                .find(|l| l.starts_with(&format!("| `{name}` |")))
                .unwrap_or_else(|| panic!("the README's settings table has no row for {name}"));
            let shown = row.split('|').nth(2).unwrap().trim();
            if default.is_empty() {
                assert!(
                    !shown.starts_with("``") && !shown.is_empty(),
                    "{name}: {row}"
                );
            } else {
                assert!(
                    shown.starts_with(&format!("`{default}`")),
                    "the README gives {name} the default {shown}, the code {default}"
                );
            }
        }
    }

    #[test]
    fn the_env_example_lists_every_variable_with_its_default() {
        let text = include_str!("../.env.example");
        let mut listed = Vec::new();
        for line in text.lines() {
            let line = line.trim_start_matches('#').trim();
            if let Some((name, value)) = line.split_once('=')
                && !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
            {
                listed.push((name.to_owned(), value.to_owned()));
            }
        }
        for (name, default) in VARIABLES {
            let found = listed.iter().find(|(n, _)| n == name);
            let Some((_, value)) = found else {
                panic!(".env.example does not list {name}");
            };
            assert_eq!(
                value, default,
                ".env.example gives {name} a default other than the code's"
            );
        }
        for (name, _) in &listed {
            let known = VARIABLES.iter().any(|(n, _)| n == name)
                || FILE_VARIABLES.iter().any(|f| format!("{f}_FILE") == *name);
            assert!(
                known,
                ".env.example lists {name}, which the code does not read"
            );
        }
    }
}

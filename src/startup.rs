//! Building and running the application. `build` binds (port 0 in tests) and wires every layer;
//! `run_until_stopped` serves until SIGTERM or SIGINT and lets in-flight requests finish. The only
//! module that sees every layer.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::{Server, ServerHandle, Service};
use actix_web::middleware::{Condition, Logger};
use actix_web::{App, HttpMessage, HttpServer, web};

use crate::auth::{self, AuthService};
use crate::config::{Backend, CookieSettings, Settings, StoreSettings};
use crate::domain::Username;
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::store::{
    Eviction, MemoryStore, RedisOptions, RedisStore, SentinelConfig, Store, StoreError,
};
use crate::tokens::TokenCodec;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot use Redis (REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS): {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Keys(#[from] crate::tokens::keys::KeyError),
    #[error(
        "APP_ENV=production: the user demo is active and its password is demo (the docker compose demo leaves it in Redis); anyone could log in as it. Run `refreshd user deactivate demo`, or give it another password, then start again"
    )]
    DemoAccount,
    #[error(
        "APP_ENV=production: Redis evicts keys (maxmemory {maxmemory} bytes, maxmemory-policy {policy}); it could silently drop sessions and revoked tokens. Set maxmemory-policy noeviction (a full Redis then refuses writes with 503s and loses nothing), or maxmemory 0"
    )]
    Evicting { policy: String, maxmemory: u64 },
    #[error("cannot listen on BIND_ADDR={addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// The store the settings name: a Redis (one, a cluster, or the master sentinels name), or
/// the in-process one. With `metrics`, every Redis call is timed.
pub async fn open_store(
    settings: &StoreSettings,
    metrics: Option<Arc<Metrics>>,
) -> Result<Arc<dyn Store>, StoreError> {
    let store = match &settings.backend {
        Backend::InProcess => return Ok(Arc::new(MemoryStore::new())),
        Backend::Redis { url } => {
            RedisStore::connect_with(&url.expose_text(), &redis_options(settings)?).await?
        }
        Backend::Cluster { nodes } => {
            let nodes: Vec<String> = nodes.iter().map(|n| n.expose_text()).collect();
            RedisStore::connect_cluster_with(&nodes, &redis_options(settings)?).await?
        }
        Backend::Sentinel {
            sentinels,
            master,
            password,
            data_url,
        } => {
            let sentinel = SentinelConfig {
                sentinels: sentinels.clone(),
                master: master.clone(),
                password: password.as_ref().map(|p| p.expose_text()),
                data_url: data_url.as_ref().map(|u| u.expose_text()),
            };
            RedisStore::connect_sentinel(sentinel, &redis_options(settings)?).await?
        }
    };
    Ok(Arc::new(match metrics {
        Some(m) => store.with_metrics(m),
        None => store,
    }))
}

/// The store's deadline and TLS material, the files read now (validation saw them readable).
fn redis_options(settings: &StoreSettings) -> Result<RedisOptions, StoreError> {
    let read = |var: &str, path: &Option<String>| {
        path.as_ref()
            .map(|p| {
                std::fs::read(p).map_err(|e| StoreError::Unavailable(format!("{var}={p}: {e}")))
            })
            .transpose()
    };
    let cert = read("REDIS_CLIENT_CERT_FILE", &settings.client_cert_file)?;
    let key = read("REDIS_CLIENT_KEY_FILE", &settings.client_key_file)?;
    Ok(RedisOptions {
        timeout: settings.timeout,
        ca: read("REDIS_CA_FILE", &settings.ca_file)?,
        client_cert: cert.zip(key),
        min_replicas: settings.min_replicas,
    })
}

pub struct Application {
    port: u16,
    server: Server,
    /// The private listener of METRICS_ADDR (/metrics and /readyz), and its port.
    private: Option<(u16, Server)>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let metrics = Arc::new(Metrics::new(
            settings.server.metrics,
            &http::routes::names(),
        ));
        let store = open_store(&settings.store, Some(metrics.clone())).await?;
        Self::build_with_store(settings, store, metrics).await
    }

    pub async fn build_with_store(
        settings: Settings,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StartupError> {
        // Bound before anything is announced: a port that is taken is the first thing said.
        let bind = |addr: &str| {
            let bind_error = |source| StartupError::Bind {
                addr: addr.to_owned(),
                source,
            };
            let listener = TcpListener::bind(addr).map_err(bind_error)?;
            let port = listener.local_addr().map_err(bind_error)?.port();
            Ok::<_, StartupError>((listener, port))
        };
        let server = &settings.server;
        let (listener, port) = bind(&server.bind_addr)?;
        let private_listener = match &server.metrics_addr {
            Some(addr) => Some(bind(addr)?),
            None => None,
        };
        let bind_error = |source| StartupError::Bind {
            addr: server.bind_addr.clone(),
            source,
        };
        announce(&settings, store.as_ref()).await?;
        let state = web::Data::new(AppState::new(
            &settings,
            AuthService::new(
                &settings.sessions,
                TokenCodec::new(&settings.tokens)?,
                store.clone(),
            ),
            metrics.clone(),
        ));
        let private = match private_listener {
            Some((listener, private_port)) => {
                let state = state.clone();
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(state.clone())
                        .configure(http::routes::configure_private)
                        .default_service(web::to(http::router::not_found))
                })
                .listen(listener)
                .map_err(|source| StartupError::Bind {
                    addr: server.metrics_addr.clone().unwrap_or_default(),
                    source,
                })?
                .workers(1)
                .shutdown_timeout(server.shutdown_timeout.as_secs().max(1))
                .disable_signals()
                .run();
                log::info!(
                    "/metrics and /readyz on METRICS_ADDR (port {private_port}); /metrics is not served on BIND_ADDR"
                );
                Some((private_port, server))
            }
            None => None,
        };
        let public_metrics = state.public_metrics;
        let browser = settings.browser.clone();
        let routes = settings.routes.clone();
        let app_metrics = metrics.clone();
        let workers = if server.workers > 0 {
            server.workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        };
        let max_connections = http::deadline::connection_limit(server.max_connections, workers);
        log::info!(
            "at most {max_connections} connections at once (MAX_CONNECTIONS; open-file limit {}); request bodies time out after {}",
            http::deadline::open_file_limit().map_or("unlimited".into(), |n| n.to_string()),
            humantime::format_duration(server.request_body_timeout)
        );
        let deadlines =
            http::deadline::BodyDeadlines::new(server.request_body_timeout, max_connections);
        let connections = deadlines.clone();
        let access_log =
            log::log_enabled!(target: "actix_web::middleware::logger", log::Level::Info);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .wrap(http::cors(&browser))
                // Path only: a query string or a header could carry a token. Mounted only when
                // its lines would be written: the logger formats every request even when the
                // level drops the line, a measurable share of a refresh's CPU.
                .wrap(Condition::new(
                    access_log,
                    Logger::new("%a \"%{method}xi %U\" %s %b %Dms")
                        .custom_request_replace("method", |req| req.method().to_string()),
                ))
                .wrap_fn({
                    let metrics = app_metrics.clone();
                    move |req, srv| {
                        let started = Instant::now();
                        let metrics = metrics.clone();
                        let call = srv.call(req);
                        async move {
                            let res = call.await?;
                            metrics.request(res.request().match_name(), started.elapsed());
                            Ok(res)
                        }
                    }
                })
                // Outermost: every route's body gets its deadline, and a response sent before its
                // request's body was read closes the connection instead of waiting to drain it.
                .wrap_fn({
                    let deadlines = deadlines.clone();
                    move |mut req, srv| {
                        let (payload, watch) = deadlines.guard(req.take_payload());
                        req.set_payload(payload);
                        let call = srv.call(req);
                        async move {
                            let mut res = call.await?;
                            let mut unread = None;
                            if !watch.finished() {
                                res.response_mut()
                                    .head_mut()
                                    .set_connection_type(actix_web::http::ConnectionType::Close);
                                unread = watch.unread();
                            }
                            Ok(res
                                .map_into_boxed_body()
                                .map_body(|_, body| http::deadline::KeepUnread::new(body, unread)))
                        }
                    }
                })
                .configure(|cfg| http::routes::configure(cfg, &routes, public_metrics))
                .default_service(web::to(http::router::not_found))
        })
        .on_connect(move |_, extensions| {
            extensions.insert(connections.connection_opened());
        })
        // Per worker: the bound is shared out among them.
        .max_connections(max_connections.div_ceil(workers))
        .listen(listener)
        .map_err(bind_error)?
        .shutdown_timeout(server.shutdown_timeout.as_secs().max(1))
        // actix would stop at once on SIGINT; `stop_on` drains on both.
        .disable_signals();
        let server = server.workers(workers).run();
        Ok(Self {
            port,
            server,
            private,
            store,
            metrics,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the METRICS_ADDR listener, when there is one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.private.as_ref().map(|(port, _)| *port)
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Stops the server: `handle().stop(true)` lets in-flight requests finish.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until the public server stops; the private listener stops with it.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Some((_, private)) = self.private else {
            return self.server.await;
        };
        let private_handle = private.handle();
        let private_task = tokio::spawn(private);
        let result = self.server.await;
        private_handle.stop(true).await;
        let _ = private_task.await;
        result
    }

    /// On SIGTERM or SIGINT (as `signals`, listened for before the server was built, report
    /// them): stop accepting, let in-flight requests finish (up to SHUTDOWN_TIMEOUT), then let
    /// `run_until_stopped` return.
    pub fn stop_on(&self, mut signals: StopSignals) {
        let handle = self.handle();
        tokio::spawn(async move {
            let name = signals.next().await;
            log::info!("{name}: finishing in-flight requests, then stopping");
            handle.stop(true).await;
        });
    }
}

/// SIGTERM and SIGINT, caught from the moment this is made: made before the listener is bound,
/// a signal that arrives while the server starts still drains it instead of killing the process.
pub struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Resolves at the next SIGTERM or SIGINT, with its name.
    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }

    pub fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }
}

/// Logs the mode the server runs in, and seeds the demo user on a development in-process store.
/// In production, refuses a store where `demo`/`demo` would log in.
async fn announce(settings: &Settings, store: &dyn Store) -> Result<(), StartupError> {
    let production = settings.server.production;
    if production {
        refuse_demo_account(store).await?;
    }
    if matches!(
        settings.tokens.signing_key,
        crate::config::SigningKey::Generated { .. }
    ) {
        log::warn!(
            "no SIGNING_KEY: using a random development key; tokens will not survive a restart"
        );
    }
    if let Some(advice) = host_prefix_advice(&settings.cookies) {
        log::warn!("{advice}");
    }
    if !settings.sessions.blacklist_after_rotation {
        log::warn!(
            "BLACKLIST_AFTER_ROTATION=false: rotated-out refresh tokens stay valid until they expire, and reuse detection is off"
        );
    }
    match &settings.store.backend {
        Backend::InProcess => {
            log::info!(
                "no REDIS_URL: using the in-process store (sessions are lost on restart and not shared between instances)"
            );
            if !production {
                let demo = Username::parse("demo").expect("a valid username");
                if store.user_by_username(&demo).await?.is_none() {
                    store.add_user(&auth::new_user(demo, "demo", None)).await?;
                    log::info!("demo user created: username \"demo\", password \"demo\"");
                }
            }
            return Ok(());
        }
        Backend::Sentinel { .. } => log::info!(
            "using the Redis master the sentinels (REDIS_SENTINELS) name for REDIS_SENTINEL_MASTER"
        ),
        Backend::Redis { .. } => log::info!("using Redis at REDIS_URL"),
        Backend::Cluster { .. } => log::info!("using the Redis Cluster at REDIS_CLUSTER_NODES"),
    }
    check_fitness(production, store).await
}

/// SPEC 5: an evicting Redis is refused in production and reported otherwise; one that keeps
/// nothing on disk is reported.
async fn check_fitness(production: bool, store: &dyn Store) -> Result<(), StartupError> {
    let fitness = store.fitness().await?;
    match fitness.eviction {
        Eviction::Never => {}
        Eviction::Evicts { policy, maxmemory } if production => {
            return Err(StartupError::Evicting { policy, maxmemory });
        }
        Eviction::Evicts { policy, maxmemory } => log::warn!(
            "Redis evicts keys (maxmemory {maxmemory} bytes, maxmemory-policy {policy}): sessions and revoked tokens can vanish, and /readyz answers 503 while it does. Set maxmemory-policy noeviction; APP_ENV=production refuses to start on it"
        ),
        Eviction::Unknown(why) => log::warn!(
            "could not check Redis' maxmemory-policy (CONFIG GET not allowed: {why}); make sure it is noeviction, or sessions and revoked tokens can vanish"
        ),
    }
    if let Some((online, needed)) = fitness.replicas
        && online < needed
    {
        log::warn!(
            "REDIS_MIN_REPLICAS={needed} but {online} replica(s) online: every write answers 503, and /readyz too, until enough are"
        );
    }
    if fitness.persistent == Some(false) {
        log::warn!(
            "Redis keeps nothing on disk (appendonly no, no save points): a restart of it logs everyone out. Turn on AOF (appendonly yes, appendfsync everysec)"
        );
    }
    Ok(())
}

/// SPEC 5: with APP_ENV=production no `demo`/`demo` login can ever succeed. The docker compose
/// demo writes that user into a persistent Redis, where it outlives the demo; the password is
/// checked as a login checks it, so a `demo` user with a real password is left alone.
async fn refuse_demo_account(store: &dyn Store) -> Result<(), StartupError> {
    let demo = Username::parse("demo").expect("a valid username");
    let Some(user) = store.user_by_username(&demo).await? else {
        return Ok(());
    };
    if user.is_active
        && auth::passwords::Passwords::new()
            .verify("demo", Some(&user.password_hash))
            .await
    {
        return Err(StartupError::DemoAccount);
    }
    Ok(())
}

/// With Secure cookies and no COOKIE_DOMAIN, the cookies could carry the `__Host-` prefix, and
/// should: a sibling subdomain (or anything that can answer for one, over plain HTTP included)
/// can set a cookie of the same name for the parent domain and so shadow or plant the session
/// cookies (cookie tossing); browsers refuse a `__Host-` cookie that is not host-only, Secure and
/// on Path=/.
fn host_prefix_advice(cookies: &CookieSettings) -> Option<String> {
    if !cookies.secure || cookies.domain.is_some() {
        return None;
    }
    let prefixed = |name: &str| {
        name.get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("__Host-"))
    };
    let mut names = Vec::new();
    if !prefixed(&cookies.access_name) {
        names.push(format!("ACCESS_COOKIE_NAME=__Host-{}", cookies.access_name));
    }
    if !prefixed(&cookies.refresh_name) {
        let path = if cookies.refresh_path == "/" {
            ""
        } else {
            " with REFRESH_COOKIE_PATH=/"
        };
        names.push(format!(
            "REFRESH_COOKIE_NAME=__Host-{}{path}",
            cookies.refresh_name
        ));
    }
    (!names.is_empty()).then(|| {
        format!(
            "COOKIE_SECURE=true and no COOKIE_DOMAIN: consider __Host- cookie names ({}); a __Host- cookie cannot be set or shadowed from a sibling subdomain (cookie tossing). Clients that name the cookies must follow",
            names.join(", ")
        )
    })
}

//! The Redis store, shared by every instance. Each refresh is one EVALSHA of `lua/refresh.lua`:
//! one round trip, decided atomically. Every call is bounded by STORE_TIMEOUT; a store that does
//! not answer is `Unavailable` and the caller fails closed.
//!
//! Key layout (the only place it is written down):
//!
//! ```text
//! refreshd:{u:<user id>}:user          hash   id, username, password (argon2id PHC, or an imported
//!                                             Django hash until the first login), active (1/0),
//!                                             src (the hash last imported for this id),
//!                                             cut (s: foreign tokens issued at or before it
//!                                             are refused; set by deactivation, passwd and
//!                                             delete, which leaves the cut alone behind)
//! refreshd:{u:<user id>}:s             hash   the user's sessions (token families): field = the
//!                                             session id packed (below), value = its record;
//!                                             plus sweep_at (how many fields the next login
//!                                             waits for before it drops dead records); expires
//!                                             when the last record may go
//! refreshd:epoch                       string the second this store was first used (SPEC 4)
//! refreshd:username:<username>         string the user id (while `user add` runs, a claim with a
//!                                             lease; kept once the user's record is written)
//! refreshd:users                       set    every user id
//! refreshd:lf:user:<username>          string login attempts for a username (successes reset it),
//!                                             expires with the window
//! refreshd:lf:addr:<ip>                string failed login attempts from a client address
//! ```
//!
//! A session record is a few packed bytes (`lua/records.lua` writes the layout down byte by
//! byte and is its only writer; `SessionRecord::decode` in `record.rs` reads it for access checks
//! and session lists): its flags (ended, browser-session cookies), when it may go (it outlives
//! every token of its family, so that an ended family stays ended), the last refresh, the current
//! jti, the pending successor's jti, iat and exp, the jtis retired within their reuse interval
//! with the moment of retirement; then, as written at the start, the creation, the absolute end,
//! the client address and the user agent. An ended session keeps its flags and keep-until only.
//! Jtis and session ids of 32 lowercase hex characters (every one this server mints, and
//! SimpleJWT's) are packed as their 16 bytes (`pack_id`), in records and as field names. Records
//! live in one hash per user, not a key each: a key costs Redis more than a record does (about
//! 100 bytes more: its dictionary entries and expiry), and the hash is the user's session list.

//! The blacklist is the record: with blacklisting on, a token of a session that is neither its
//! current nor its pending one was retired (or never issued), and is refused until the record
//! goes. The moment of a retirement is remembered while its reuse interval runs, for forgiveness.
//!
//! The previous layout kept a hash per session (`refreshd:{u:<id>}:s:<sid>`, fields cur, ce,
//! pend, pi, pe, rev, end, created, last, ua, ip, br), a blacklist key per retired jti
//! (`refreshd:{u:<id>}:bl:<jti>`, the moment of retirement) and an index of the user's sessions
//! (`refreshd:{u:<id>}:sessions`). Sessions it wrote keep working: a refresh or a logout moves
//! the session into the user's hash (`bring_over` in records.lua), its blacklist keys are still
//! read for that session, listing and ending every session read its index, and an access token
//! of such a session is checked against it. All of it expires by itself, within the refresh
//! token lifetime (or SESSION_MAX_LIFETIME) of the upgrade.
//!
//! Everything a refresh touches carries the user's hash tag `{u:<id>}`, so one script can read the
//! user and change the session in one slot of a Redis Cluster.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr,
};
use redis::{AsyncCommands, Cmd, Pipeline, RedisFuture, Script, Value};

use super::record::{SessionRecord, pack_id, unpack_id};
use super::{
    AnswerKind, CheckOutcome, Eviction, Fitness, Imported, LimitKey, LoginLimits, NewSession,
    RefreshAnswer, RefreshClaims, RefreshOutcome, RefreshRequest, RevokeOutcome, RevokeRequest,
    SessionInfo, SessionStore, Store, StoreError, TokenCheck, UserStore,
};
use crate::domain::{Jti, SessionId, User, UserId, Username};
use crate::metrics::Metrics;

const USERS_KEY: &str = "refreshd:users";
const EPOCH_KEY: &str = "refreshd:epoch";

fn user_key(id: &UserId) -> String {
    format!("refreshd:{{u:{id}}}:user")
}
fn sessions_key(id: &UserId) -> String {
    format!("refreshd:{{u:{id}}}:s")
}

/// Where the Redis store keeps a session's record: the user's sessions hash and the field in it
/// (read it with `HGET`, decode it with `SessionRecord::decode`). For operators' tools and tests.
pub fn session_record_at(user_id: &UserId, sid: &SessionId) -> (String, Vec<u8>) {
    (sessions_key(user_id), pack_id(sid.as_str()))
}

/// The keys of the previous layout (see the top of this file), read until they expire.
mod legacy {
    use crate::domain::{Jti, SessionId, UserId};

    pub fn session_key(id: &UserId, sid: &SessionId) -> String {
        format!("{}{sid}", session_prefix(id))
    }
    /// The common prefix of a user's session keys; the scripts that walk the index append a sid.
    pub fn session_prefix(id: &UserId) -> String {
        format!("refreshd:{{u:{id}}}:s:")
    }
    pub fn index_key(id: &UserId) -> String {
        format!("refreshd:{{u:{id}}}:sessions")
    }
    pub fn blacklist_key(id: &UserId, jti: &Jti) -> String {
        format!("refreshd:{{u:{id}}}:bl:{jti}")
    }
}

fn username_key(name: &Username) -> String {
    format!("refreshd:username:{name}")
}
fn limit_key(key: &LimitKey) -> String {
    format!("refreshd:lf:{}", key.as_key())
}

/// One Redis, or a Redis Cluster: every call below works on either, because every multi-key
/// call stays within one user's hash slot.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

thread_local! {
    /// Each HTTP worker thread's own connections, by store: a worker then waits on a socket its
    /// own runtime drives, instead of handing every call to another thread and back.
    /// (store id, the generation of the Redis it goes to, the connection).
    static WORKER_CONNECTIONS: std::cell::RefCell<Vec<(u64, u64, ConnectionManager)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

tokio::task_local! {
    /// The deadline of the store operation under way on this task (see `operation`).
    static DEADLINE: Instant;
}

static NEXT_STORE_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub struct RedisStore {
    id: u64,
    /// How to open more connections to a single Redis (one per worker thread), and which one.
    single: Option<Arc<Single>>,
    conn: Conn,
    timeout: Duration,
    /// Replicas that must confirm each write a client is told about (`WAIT`); 0: none.
    min_replicas: u32,
    metrics: Option<Arc<Metrics>>,
    scripts: Arc<Scripts>,
    /// When this store was made (s). A token issued later was issued by this version (or minted
    /// elsewhere): its session was never written by the previous layout.
    started_s: u64,
}

/// How to reach Redis beyond its URL: the deadline of every call, and the TLS material for
/// `rediss://` URLs (PEM, as read from the files the settings name).
#[derive(Clone, Default)]
pub struct RedisOptions {
    pub timeout: Duration,
    /// The only roots a `rediss://` server's certificate may chain to; `None`: the system's.
    pub ca: Option<Vec<u8>>,
    /// A client certificate chain and its private key, for mutual TLS.
    pub client_cert: Option<(Vec<u8>, Vec<u8>)>,
    /// REDIS_MIN_REPLICAS: how many replicas must hold a write before it is answered.
    pub min_replicas: u32,
}

impl RedisOptions {
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            ..Self::default()
        }
    }

    fn certificates(&self) -> redis::TlsCertificates {
        redis::TlsCertificates {
            client_tls: self
                .client_cert
                .as_ref()
                .map(|(cert, key)| redis::ClientTlsConfig {
                    client_cert: cert.clone(),
                    client_key: key.clone(),
                }),
            root_cert: self.ca.clone(),
        }
    }

    /// Where a server certificate is checked, for messages.
    fn roots(&self) -> &'static str {
        if self.ca.is_some() {
            "REDIS_CA_FILE"
        } else {
            "the system's roots"
        }
    }
}

/// Redis Sentinel: where the sentinels are, which master group, and how to reach its nodes.
#[derive(Clone)]
pub struct SentinelConfig {
    /// `host:port` of each sentinel.
    pub sentinels: Vec<String>,
    /// The master group's name (`sentinel monitor <name> ...`).
    pub master: String,
    /// The sentinels' own password (`requirepass` in their configuration).
    pub password: Option<String>,
    /// The data nodes' scheme, user, password and database, as a URL whose host and port are
    /// replaced by the master's (REDIS_URL); `None`: `redis://` with no password. The sentinels
    /// are asked with the same scheme and TLS material.
    pub data_url: Option<String>,
}

impl SentinelConfig {
    fn scheme(&self) -> &str {
        match &self.data_url {
            Some(url) if is_tls(url) => "rediss",
            _ => "redis",
        }
    }

    /// The data node at `addr` (`host:port`), with the template's scheme, user, password and db.
    fn data_url(&self, addr: &str) -> String {
        let Some(template) = &self.data_url else {
            return format!("redis://{addr}/");
        };
        let (scheme, rest) = template.split_once("://").unwrap_or(("redis", template));
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        let userinfo = authority
            .rsplit_once('@')
            .map(|(u, _)| format!("{u}@"))
            .unwrap_or_default();
        format!("{scheme}://{userinfo}{addr}{path}")
    }

    /// Asks each sentinel in turn for the master's address; the first answer counts.
    async fn master_addr(&self, options: &RedisOptions) -> Result<String, StoreError> {
        let mut why = Vec::new();
        for sentinel in &self.sentinels {
            let auth = self
                .password
                .as_ref()
                .map(|p| format!(":{}@", percent_encode(p)))
                .unwrap_or_default();
            let client =
                match client_for(&format!("{}://{auth}{sentinel}/", self.scheme()), options) {
                    Ok(c) => c,
                    Err(e) => {
                        why.push(format!("{sentinel}: {e}"));
                        continue;
                    }
                };
            let asked = tokio::time::timeout(options.timeout, async {
                let mut c = client.get_multiplexed_async_connection().await?;
                redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg(&self.master)
                    .query_async::<Option<(String, u16)>>(&mut c)
                    .await
            })
            .await;
            match asked {
                Ok(Ok(Some((host, port)))) if host.contains(':') => {
                    return Ok(format!("[{host}]:{port}"));
                }
                Ok(Ok(Some((host, port)))) => return Ok(format!("{host}:{port}")),
                Ok(Ok(None)) => why.push(format!("{sentinel}: no master named {:?}", self.master)),
                Ok(Err(e)) => why.push(format!("{sentinel}: {e}")),
                Err(_) => why.push(format!("{sentinel}: no answer in time")),
            }
        }
        Err(StoreError::Unavailable(format!(
            "no sentinel (REDIS_SENTINELS) named the master of REDIS_SENTINEL_MASTER={}: {}",
            self.master,
            why.join("; ")
        )))
    }
}

/// A password in a URL's user information: every byte but unreserved ones escaped.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The Redis a single-node store opens its connections to.
struct Single {
    config: ConnectionManagerConfig,
    /// The master's client and its generation (bumped each time the sentinels name another).
    target: std::sync::RwLock<(u64, redis::Client)>,
    /// The connection shared off the HTTP workers, and the generation it was made for.
    shared: std::sync::Mutex<(u64, ConnectionManager)>,
    sentinel: Option<Sentinel>,
}

struct Sentinel {
    config: SentinelConfig,
    options: RedisOptions,
    /// The master's `host:port`, as the sentinels last named it.
    current: std::sync::Mutex<String>,
    /// A question to the sentinels is under way.
    asking: std::sync::atomic::AtomicBool,
}

impl Single {
    /// Asks the sentinels for the master; when it moved, later calls go to the new one.
    async fn follow_master(&self) {
        let Some(sentinel) = &self.sentinel else {
            return;
        };
        let Ok(addr) = sentinel.config.master_addr(&sentinel.options).await else {
            return;
        };
        let mut current = sentinel.current.lock().unwrap_or_else(|e| e.into_inner());
        if *current == addr {
            return;
        }
        match client_for(&sentinel.config.data_url(&addr), &sentinel.options) {
            Ok(client) => {
                let mut target = self.target.write().unwrap_or_else(|e| e.into_inner());
                *target = (target.0 + 1, client);
                log::info!(
                    "Redis master of {} is now {addr} (was {current}), as the sentinels say",
                    sentinel.config.master
                );
                *current = addr;
            }
            Err(e) => log::warn!("the sentinels name {addr}, which cannot be used: {e}"),
        }
    }
}

fn is_tls(url: &str) -> bool {
    url.get(..9)
        .is_some_and(|s| s.eq_ignore_ascii_case("rediss://"))
}

/// rustls needs one crypto provider for the process; ring, chosen once.
fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err only when another provider was installed first, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A client for one URL: `rediss://` always verifies the server (host name included) against
/// `options`' roots. The URL's `#insecure` switch is refused by the settings and not built in.
fn client_for(url: &str, options: &RedisOptions) -> Result<redis::Client, StoreError> {
    let client = if is_tls(url) {
        install_tls_provider();
        redis::Client::build_with_tls(url, options.certificates())
    } else {
        redis::Client::open(url)
    };
    // The error names what is wrong with the URL, never the URL itself (it may hold a password).
    client.map_err(|e| StoreError::Unavailable(format!("bad Redis URL: {e}")))
}

/// A failed first connection, said so that an operator can act: a certificate that does not
/// verify is named as such (and never retried in plain text).
fn connect_error(e: redis::RedisError, options: &RedisOptions) -> StoreError {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("handshake") || lower.contains("tls") {
        return StoreError::Unavailable(format!(
            "TLS to Redis failed, the server's certificate checked against {}: {text}",
            options.roots()
        ));
    }
    unavailable(e)
}

impl RedisStore {
    /// Connects, failing within `timeout` when Redis cannot be reached. Afterwards the
    /// connection re-establishes itself in the background whenever it drops.
    pub async fn connect(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        Self::connect_with(url, &RedisOptions::new(timeout)).await
    }

    /// As `connect`, with TLS material for a `rediss://` URL.
    pub async fn connect_with(url: &str, options: &RedisOptions) -> Result<Self, StoreError> {
        Self::open_single(client_for(url, options)?, options, None).await
    }

    /// The master of a Sentinel-monitored group: asks the sentinels for it now, and again
    /// whenever a call fails (a failover: the old master is gone, or answers READONLY).
    pub async fn connect_sentinel(
        sentinel: SentinelConfig,
        options: &RedisOptions,
    ) -> Result<Self, StoreError> {
        let addr = sentinel.master_addr(options).await?;
        let client = client_for(&sentinel.data_url(&addr), options)?;
        let found = Sentinel {
            config: sentinel,
            options: options.clone(),
            current: std::sync::Mutex::new(addr),
            asking: std::sync::atomic::AtomicBool::new(false),
        };
        Self::open_single(client, options, Some(found)).await
    }

    async fn open_single(
        client: redis::Client,
        options: &RedisOptions,
        sentinel: Option<Sentinel>,
    ) -> Result<Self, StoreError> {
        let timeout = options.timeout;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = tokio::time::timeout(
            timeout * 2,
            ConnectionManager::new_with_config(client.clone(), config.clone()),
        )
        .await
        .map_err(|_| StoreError::Unavailable("timed out connecting to Redis".into()))?
        .map_err(|e| connect_error(e, options))?;
        let mut store = Self::with_conn(Conn::Single(conn.clone()), timeout);
        store.single = Some(Arc::new(Single {
            config,
            target: std::sync::RwLock::new((0, client)),
            shared: std::sync::Mutex::new((0, conn)),
            sentinel,
        }));
        store.min_replicas = options.min_replicas;
        // The first use of a store sets its epoch (SPEC 4): foreign tokens issued before it are
        // refused, so it must not wait for the first foreign token to come along.
        store.epoch().await?;
        Ok(store)
    }

    /// The connection for this call: on an HTTP worker (a single-threaded runtime), that
    /// thread's own; elsewhere, the shared one. Never waits: connecting is part of the call.
    /// A connection made for a master the sentinels no longer name is replaced.
    async fn conn(&self) -> Conn {
        let Some(single) = &self.single else {
            return self.conn.clone();
        };
        let (generation, client) = {
            let target = single.target.read().unwrap_or_else(|e| e.into_inner());
            (target.0, target.1.clone())
        };
        // Lazy: made at once, connected by the first call it carries, so that opening it counts
        // against that call's deadline (bounded) instead of adding a deadline of its own.
        let open =
            || ConnectionManager::new_lazy_with_config(client.clone(), single.config.clone());
        let on_worker = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread);
        if !on_worker {
            let mut shared = single.shared.lock().unwrap_or_else(|e| e.into_inner());
            if shared.0 != generation
                && let Ok(c) = open()
            {
                *shared = (generation, c);
            }
            return Conn::Single(shared.1.clone());
        }
        let local = WORKER_CONNECTIONS.with(|all| {
            all.borrow()
                .iter()
                .find(|(id, made_for, _)| *id == self.id && *made_for == generation)
                .map(|(_, _, c)| c.clone())
        });
        if let Some(c) = local {
            return Conn::Single(c);
        }
        match open() {
            Ok(c) => {
                WORKER_CONNECTIONS.with(|all| {
                    let mut all = all.borrow_mut();
                    all.retain(|(id, _, _)| *id != self.id);
                    all.push((self.id, generation, c.clone()));
                });
                Conn::Single(c)
            }
            Err(_) => self.conn.clone(),
        }
    }

    /// A call failed: with Sentinel, the master may have changed; ask (in the background, one
    /// question at a time).
    fn suspect_master(&self) {
        let Some(single) = &self.single else { return };
        let Some(sentinel) = &single.sentinel else {
            return;
        };
        if sentinel
            .asking
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        let single = single.clone();
        tokio::spawn(async move {
            single.follow_master().await;
            // Not more often than this, however many calls fail meanwhile.
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Some(s) = &single.sentinel {
                s.asking.store(false, std::sync::atomic::Ordering::Release);
            }
        });
    }

    /// Connects to a Redis Cluster through its seed nodes. Every session's keys share one hash
    /// slot, so each rotation is still one atomic script on one node.
    pub async fn connect_cluster(nodes: &[String], timeout: Duration) -> Result<Self, StoreError> {
        Self::connect_cluster_with(nodes, &RedisOptions::new(timeout)).await
    }

    /// As `connect_cluster`, with TLS material for `rediss://` nodes.
    pub async fn connect_cluster_with(
        nodes: &[String],
        options: &RedisOptions,
    ) -> Result<Self, StoreError> {
        let timeout = options.timeout;
        let mut builder = redis::cluster::ClusterClient::builder(nodes.to_vec());
        if nodes.iter().any(|n| is_tls(n)) {
            install_tls_provider();
            builder = builder.certs(options.certificates());
        }
        let client = builder
            .connection_timeout(timeout)
            .response_timeout(timeout)
            // MOVED, ASK and TRYAGAIN (a resharding, a failover) are followed or retried, each
            // redirection counting as one; `bounded` stops them all at the call's deadline.
            .retries(16)
            .min_retry_wait(10)
            .max_retry_wait(200)
            .build()
            .map_err(|e| StoreError::Unavailable(format!("bad REDIS_CLUSTER_NODES: {e}")))?;
        let conn = tokio::time::timeout(timeout * 2, client.get_async_connection())
            .await
            .map_err(|_| StoreError::Unavailable("timed out connecting to the cluster".into()))?
            .map_err(|e| connect_error(e, options))?;
        let mut store = Self::with_conn(Conn::Cluster(conn), timeout);
        store.min_replicas = options.min_replicas;
        store.epoch().await?;
        Ok(store)
    }

    fn with_conn(conn: Conn, timeout: Duration) -> Self {
        Self {
            id: NEXT_STORE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            single: None,
            conn,
            timeout,
            min_replicas: 0,
            metrics: None,
            scripts: Arc::new(Scripts::new()),
            started_s: super::Clock::now_ms(&super::SystemClock) / 1000,
        }
    }

    /// Runs one store operation of several calls: they share one deadline, STORE_TIMEOUT from
    /// now (an operation inside another keeps the outer deadline).
    async fn operation<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, StoreError>>,
    {
        if DEADLINE.try_with(|_| ()).is_ok() {
            return op.await;
        }
        DEADLINE.scope(Instant::now() + self.timeout, op).await
    }

    /// What is left of this call's deadline: its operation's, or STORE_TIMEOUT from now.
    fn remaining(&self) -> Duration {
        DEADLINE
            .try_with(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or(self.timeout)
    }

    /// Runs one store call within the timeout (what is left of its operation's deadline).
    async fn bounded<T, F>(&self, call: F) -> Result<T, StoreError>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        let started = Instant::now();
        let result = tokio::time::timeout(self.remaining(), call).await;
        if let Some(m) = &self.metrics {
            m.store_call(started.elapsed());
        }
        let result = match result {
            Ok(result) => result.map_err(unavailable),
            Err(_) => Err(StoreError::Unavailable(
                "Redis did not answer in time".into(),
            )),
        };
        if let Err(StoreError::Unavailable(_)) = &result {
            self.suspect_master();
        }
        result
    }

    /// Times every store call into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    async fn user_by_id(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        let mut c = self.conn().await;
        let fields: Vec<Option<String>> = self
            .bounded(
                redis::cmd("HMGET")
                    .arg(user_key(id))
                    .arg(&["username", "password", "active"])
                    .query_async(&mut c),
            )
            .await?;
        Ok(user_from_fields(id, &fields))
    }
}

impl RedisStore {
    /// Claims a username for `id` with a lease that lapses by itself (longer than the calls of an
    /// add or import can take); true when the claim is ours.
    async fn claim_username(
        &self,
        c: &mut Conn,
        name_key: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let lease = Duration::from_secs(30) + self.timeout * 4;
        Ok(self
            .bounded(
                redis::cmd("SET")
                    .arg(name_key)
                    .arg(id)
                    .arg("NX")
                    .arg("PX")
                    .arg(lease.as_millis() as u64)
                    .query_async::<Option<String>>(c),
            )
            .await?
            .is_some())
    }

    /// Keeps (`"keep"`) or drops (`"drop"`) a username claim while it is still `id`'s.
    async fn settle_claim(&self, key: &str, id: &str, how: &str) -> Result<bool, StoreError> {
        let call = settle_claim_call(key, id, how);
        let done: i64 = self.run(&self.scripts.settle_claim, &call).await?;
        Ok(done == 1)
    }
}

fn user_from_fields(id: &UserId, fields: &[Option<String>]) -> Option<User> {
    match fields {
        [Some(name), Some(hash), Some(active)] => Some(User {
            id: id.clone(),
            username: Username::parse(name)?,
            password_hash: hash.clone(),
            is_active: active == "1",
        }),
        _ => None,
    }
}

/// Connection trouble, timeouts and a Redis that is loading, read-only, out of memory or out of
/// client slots are outages (503); an error in a script or a reply this code cannot read is a
/// bug (500).
fn unavailable(e: redis::RedisError) -> StoreError {
    use redis::{ErrorKind, ServerErrorKind};
    // Capacity limits of the server, not bugs of ours: out of client slots (a plain ERR), and
    // out of memory under noeviction (OOM; inside a script, an ERR that quotes it).
    let text = e.to_string();
    if text.contains("max number of clients reached") || text.contains("OOM command not allowed") {
        return StoreError::Unavailable(text);
    }
    match e.kind() {
        ErrorKind::UnexpectedReturnType
        | ErrorKind::Parse
        | ErrorKind::Server(
            ServerErrorKind::ResponseError
            | ServerErrorKind::ExecAbort
            | ServerErrorKind::CrossSlot
            | ServerErrorKind::NoPerm,
        ) => StoreError::Unexpected(e.to_string()),
        _ => StoreError::Unavailable(e.to_string()),
    }
}

#[async_trait]
impl Store for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut c = self.conn().await;
        let _: String = self.bounded(redis::cmd("PING").query_async(&mut c)).await?;
        Ok(())
    }

    /// CONFIG GET on the Redis (on a cluster, on every master; the worst one counts), and with
    /// REDIS_MIN_REPLICAS the replicas each master has online.
    async fn fitness(&self) -> Result<Fitness, StoreError> {
        let mut get = redis::cmd("CONFIG");
        get.arg("GET")
            .arg("maxmemory")
            .arg("maxmemory-policy")
            .arg("appendonly")
            .arg("save");
        let mut fitness = Fitness {
            eviction: Eviction::Never,
            persistent: Some(true),
            replicas: None,
        };
        if self.min_replicas > 0 {
            let mut online = u32::MAX;
            for reply in self
                .on_every_master(redis::cmd("INFO").arg("replication"))
                .await?
            {
                let text: String = redis::from_redis_value(reply)
                    .map_err(|e| StoreError::Unexpected(format!("INFO replication: {e}")))?;
                online = online.min(online_replicas(&text));
            }
            fitness.replicas = Some((online.min(1024), self.min_replicas));
        }
        let replies = match self.on_every_master(&get).await {
            Ok(replies) => replies,
            Err(e) => {
                return refused_config(e).map(|unknown| Fitness {
                    replicas: fitness.replicas,
                    ..unknown
                });
            }
        };
        for reply in replies {
            let config: std::collections::HashMap<String, String> = redis::from_redis_value(reply)
                .map_err(|e| StoreError::Unexpected(format!("CONFIG GET: {e}")))?;
            let get = |k: &str| config.get(k).map(String::as_str).unwrap_or("");
            let maxmemory: u64 = get("maxmemory").parse().unwrap_or(0);
            let policy = get("maxmemory-policy");
            if maxmemory > 0 && !policy.is_empty() && policy != "noeviction" {
                fitness.eviction = Eviction::Evicts {
                    policy: policy.to_owned(),
                    maxmemory,
                };
            }
            if get("appendonly") != "yes" && get("save").trim().is_empty() {
                fitness.persistent = Some(false);
            }
        }
        Ok(fitness)
    }
}

impl RedisStore {
    /// One command on the Redis, or on every master of a cluster: their replies.
    async fn on_every_master(&self, cmd: &Cmd) -> Result<Vec<Value>, StoreError> {
        let mut c = self.conn().await;
        match &mut c {
            Conn::Cluster(cluster) => {
                let route = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
                match self
                    .bounded(cluster.route_command(cmd.clone(), route))
                    .await?
                {
                    Value::Map(nodes) => Ok(nodes.into_iter().map(|(_, v)| v).collect()),
                    other => Ok(vec![other]),
                }
            }
            Conn::Single(_) => Ok(vec![self.bounded(cmd.query_async::<Value>(&mut c)).await?]),
        }
    }
}

/// Replicas in `INFO replication` text whose link is up (`slaveN:...,state=online,...`).
fn online_replicas(info: &str) -> u32 {
    info.lines()
        .filter(|l| l.starts_with("slave") && l.contains("state=online"))
        .count() as u32
}

/// CONFIG GET not allowed (renamed or disabled by a managed service, or an ACL user without
/// +config): not known, and not an outage. Anything else is.
fn refused_config(e: StoreError) -> Result<Fitness, StoreError> {
    match e {
        StoreError::Unexpected(why) => Ok(Fitness {
            eviction: Eviction::Unknown(why),
            persistent: None,
            replicas: None,
        }),
        other => Err(other),
    }
}

#[async_trait]
impl UserStore for RedisStore {
    /// The username and the user's record live in different slots (a username's slot is not
    /// known from an id, nor an id's from a username), so adding a user cannot be one script.
    /// The username is claimed first with a lease that lapses by itself, and kept only once the
    /// record is written: a crash or a timeout part-way never leaves a username taken by
    /// nobody, and two adds of one name cannot both win.
    async fn add_user(&self, user: &User) -> Result<(), StoreError> {
        self.operation(async {
            let mut c = self.conn().await;
            let name_key = username_key(&user.username);
            let id = user.id.as_str();
            let claimed = self.claim_username(&mut c, &name_key, id).await?;
            if !claimed {
                // Taken, or being added right now. When a user of that name exists, make sure it is
                // listed, in case its own add stopped just short of that.
                if let Some(existing) = self.user_by_username(&user.username).await? {
                    let _: i64 = self
                        .bounded(c.sadd(USERS_KEY, existing.id.as_str()))
                        .await?;
                }
                return Err(StoreError::UsernameTaken);
            }
            let call = add_user_call(user);
            let created: i64 = self.write(&self.scripts.add_user, &call).await?;
            if created == 0 {
                self.settle_claim(&name_key, id, "drop").await?;
                return Err(StoreError::IdTaken);
            }
            if !self.settle_claim(&name_key, id, "keep").await? {
                // The lease ran out (a store slower than its timeouts) and the name went elsewhere.
                let _: i64 = self.bounded(c.del(user_key(&user.id))).await?;
                return Err(StoreError::UsernameTaken);
            }
            let _: i64 = self.bounded(c.sadd(USERS_KEY, id)).await?;
            self.confirm(USERS_KEY).await
        })
        .await
    }

    async fn user_by_username(&self, username: &Username) -> Result<Option<User>, StoreError> {
        self.operation(async {
            let mut c = self.conn().await;
            let id: Option<String> = self.bounded(c.get(username_key(username))).await?;
            match id.as_deref().and_then(UserId::parse) {
                Some(id) => self.user_by_id(&id).await,
                // The same second round trip as for a real user, so that timing does not tell
                // which usernames exist.
                None => self
                    .user_by_id(&UserId::parse("-").expect("a valid id"))
                    .await
                    .map(|_| None),
            }
        })
        .await
    }

    /// Deactivating marks the user, sets the cut-off and ends every session in one script.
    async fn set_user_active(&self, username: &Username, active: bool) -> Result<bool, StoreError> {
        self.operation(async {
            let Some(user) = self.user_by_username(username).await? else {
                return Ok(false);
            };
            if active {
                let mut c = self.conn().await;
                let _: i64 = self
                    .bounded(c.hset(user_key(&user.id), "active", "1"))
                    .await?;
                self.confirm(&user_key(&user.id)).await?;
                return Ok(true);
            }
            let ended: i64 = self
                .write(
                    &self.scripts.revoke_all,
                    &revoke_all_call(&user.id, "deactivate", ""),
                )
                .await?;
            Ok(ended >= 0)
        })
        .await
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let mut c = self.conn().await;
        let ids: Vec<String> = self.bounded(c.smembers(USERS_KEY)).await?;
        let mut users = Vec::with_capacity(ids.len());
        for id in ids.iter().filter_map(|s| UserId::parse(s)) {
            if let Some(user) = self.user_by_id(&id).await? {
                users.push(user);
            }
        }
        users.sort_by(|a, b| a.username.as_str().cmp(b.username.as_str()));
        Ok(users)
    }

    /// Like `add_user`, the username is claimed (with a lease) before the record is written and
    /// kept after; a former username of the id is let go last.
    async fn import_user(&self, user: &User) -> Result<Imported, StoreError> {
        let mut c = self.conn().await;
        let id = user.id.as_str();
        let old_name: Option<String> = self.bounded(c.hget(user_key(&user.id), "username")).await?;
        let name_key = username_key(&user.username);
        let renamed = old_name.as_deref() != Some(user.username.as_str());
        if renamed {
            let claimed = self.claim_username(&mut c, &name_key, id).await?;
            if !claimed {
                // Ours already when an earlier run stopped part-way.
                let holder: Option<String> = self.bounded(c.get(&name_key)).await?;
                if holder.as_deref() != Some(id) {
                    return Err(StoreError::UsernameTaken);
                }
            }
        }
        let outcome: String = self
            .write(&self.scripts.import_user, &import_call(user))
            .await?;
        if renamed {
            self.settle_claim(&name_key, id, "keep").await?;
            if let Some(old) = old_name.as_deref().and_then(Username::parse) {
                self.settle_claim(&username_key(&old), id, "drop").await?;
            }
        }
        let _: i64 = self.bounded(c.sadd(USERS_KEY, id)).await?;
        match outcome.as_str() {
            "created" => Ok(Imported::Created),
            "updated" => Ok(Imported::Updated),
            other => Err(StoreError::Unexpected(format!(
                "import script returned {other:?}"
            ))),
        }
    }

    async fn set_password(
        &self,
        username: &Username,
        password_hash: &str,
    ) -> Result<Option<usize>, StoreError> {
        let Some(user) = self.user_by_username(username).await? else {
            return Ok(None);
        };
        let call = revoke_all_call(&user.id, "password", password_hash);
        let ended: i64 = self.write(&self.scripts.revoke_all, &call).await?;
        Ok((ended >= 0).then_some(ended as usize))
    }

    /// The record goes first (sessions ended, cut-off left behind), then the username and the
    /// listing: a delete stopped part-way is finished by running it again.
    async fn delete_user(&self, username: &Username) -> Result<Option<usize>, StoreError> {
        let mut c = self.conn().await;
        let name_key = username_key(username);
        let id: Option<String> = self.bounded(c.get(&name_key)).await?;
        let Some(id) = id.as_deref().and_then(UserId::parse) else {
            return Ok(None);
        };
        let ended: i64 = self
            .write(
                &self.scripts.revoke_all,
                &revoke_all_call(&id, "delete", ""),
            )
            .await?;
        self.settle_claim(&name_key, id.as_str(), "drop").await?;
        let _: i64 = self.bounded(c.srem(USERS_KEY, id.as_str())).await?;
        Ok(Some(ended.max(0) as usize))
    }

    async fn replace_password_hash(
        &self,
        id: &UserId,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let done: i64 = self
            .write(&self.scripts.rehash, &rehash_call(id, old, new))
            .await?;
        Ok(done == 1)
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    /// Set on first use; read again before each adoption, so that a Redis that was emptied
    /// starts a new epoch instead of accepting old foreign tokens.
    async fn epoch(&self) -> Result<u64, StoreError> {
        let mut c = self.conn().await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let old: Option<String> = self
            .bounded(
                redis::cmd("SET")
                    .arg(EPOCH_KEY)
                    .arg(now)
                    .arg("NX")
                    .arg("GET")
                    .query_async(&mut c),
            )
            .await?;
        match old {
            None => Ok(now),
            Some(v) => v
                .parse()
                .map_err(|_| StoreError::Unexpected(format!("{EPOCH_KEY} holds {v:?}"))),
        }
    }

    async fn create_session(&self, s: &NewSession) -> Result<(), StoreError> {
        let _: i64 = self.write(&self.scripts.create, &create_call(s)).await?;
        Ok(())
    }

    async fn refresh(&self, r: &RefreshRequest) -> Result<RefreshOutcome, StoreError> {
        self.operation(async {
            let epoch = if r.foreign { self.epoch().await? } else { 0 };
            let reply: Vec<Value> = self
                .write(&self.scripts.refresh, &refresh_call(r, epoch))
                .await?;
            parse_refresh_reply(&reply)
        })
        .await
    }

    async fn revoke(&self, r: &RevokeRequest) -> Result<RevokeOutcome, StoreError> {
        let reply: String = self.write(&self.scripts.revoke, &revoke_call(r)).await?;
        match reply.as_str() {
            "revoked" => Ok(RevokeOutcome::Revoked),
            "reuse" => Ok(RevokeOutcome::ReuseRevoked),
            "nothing" => Ok(RevokeOutcome::Nothing),
            other => Err(StoreError::Unexpected(format!(
                "revoke script returned {other:?}"
            ))),
        }
    }

    async fn check_token(&self, check: &TokenCheck) -> Result<CheckOutcome, StoreError> {
        let mut c = self.conn().await;
        // Two reads in one slot, pipelined: one round trip.
        let (user, record): (Vec<Option<String>>, Option<Vec<u8>>) = self
            .bounded(
                redis::pipe()
                    .cmd("HMGET")
                    .arg(user_key(&check.user_id))
                    .arg(&["username", "password", "active", "cut"])
                    .cmd("HGET")
                    .arg(sessions_key(&check.user_id))
                    .arg(pack_id(check.sid.as_str()))
                    .query_async(&mut c),
            )
            .await?;
        let Some(found) = user_from_fields(&check.user_id, &user[..3]) else {
            return Ok(CheckOutcome::UserMissing);
        };
        if !found.is_active {
            return Ok(CheckOutcome::UserInactive);
        }
        let cutoff: u64 = user[3].as_deref().and_then(|v| v.parse().ok()).unwrap_or(0);
        // Idle is measured on this instance's clock: access checks take no script.
        let now = super::Clock::now_ms(&super::SystemClock);
        let idle = |since: u64| {
            check
                .idle_timeout_ms
                .is_some_and(|idle| now >= since.saturating_add(idle))
        };
        let record = record
            .as_deref()
            .and_then(SessionRecord::decode)
            .filter(|r| r.keep_ms > now);
        let standing = match record {
            Some(r) => {
                !r.revoked
                    && !idle(r.last_refreshed_ms.unwrap_or(r.created_ms))
                    && check.refresh_jti.as_ref().is_none_or(|jti| r.holds(jti))
            }
            // Only a token from before this store started can belong to a session of the
            // previous layout; a foreign access token (no session, often) needs no second trip.
            None if check.iat <= self.started_s => self.legacy_check(check, cutoff, idle).await?,
            // A token of one of our sessions needs its record: gone (ended and expired, or
            // lost) is refused. Only a session-less foreign token stands on the user alone.
            None => !check.session_required && check.iat > cutoff,
        };
        if !standing {
            return Ok(CheckOutcome::Revoked);
        }
        Ok(CheckOutcome::Ok(found))
    }

    async fn list_sessions(&self, user_id: &UserId) -> Result<Vec<SessionInfo>, StoreError> {
        let call = list_sessions_call(user_id);
        let (records, legacy): (Vec<Vec<u8>>, Vec<String>) =
            self.run(&self.scripts.list_sessions, &call).await?;
        let bad = || StoreError::Unexpected("list_sessions returned a malformed row".into());
        let mut list = records
            .chunks(2)
            .map(|pair| {
                let [field, raw] = pair else {
                    return Err(bad());
                };
                let r = SessionRecord::decode(raw).ok_or_else(bad)?;
                let sid = unpack_id(field).ok_or_else(bad)?;
                Ok(SessionInfo {
                    id: SessionId::parse(&sid).ok_or_else(bad)?,
                    created_ms: r.created_ms,
                    last_refreshed_ms: r.last_refreshed_ms,
                    user_agent: r.user_agent,
                    client_address: r.client_address,
                    ends_at: r.end,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        for row in legacy.chunks(6) {
            let [sid, created, last, ua, ip, end] = row else {
                return Err(bad());
            };
            list.push(SessionInfo {
                id: SessionId::parse(sid).ok_or_else(bad)?,
                created_ms: created.parse().map_err(|_| bad())?,
                last_refreshed_ms: last.parse().ok(),
                user_agent: ua.clone(),
                client_address: ip.clone(),
                ends_at: end.parse().ok(),
            });
        }
        list.sort_by_key(|s| s.created_ms);
        Ok(list)
    }

    async fn end_session(&self, user_id: &UserId, sid: &SessionId) -> Result<bool, StoreError> {
        let call = end_session_call(user_id, sid);
        let outcome: String = self.write(&self.scripts.revoke, &call).await?;
        Ok(outcome == "revoked")
    }

    async fn end_all_sessions(&self, user_id: &UserId) -> Result<usize, StoreError> {
        let ended: i64 = self
            .write(&self.scripts.revoke_all, &revoke_all_call(user_id, "", ""))
            .await?;
        Ok(ended.max(0) as usize)
    }

    async fn session_footprint(&self, user_id: &UserId) -> Result<usize, StoreError> {
        let mut c = self.conn().await;
        // The records in the user's sessions hash, and whatever the previous layout still holds.
        let fields: Vec<Vec<u8>> = self.bounded(c.hkeys(sessions_key(user_id))).await?;
        // Packed session ids are 16 bytes or more; shorter fields are bookkeeping.
        let mut count = fields.iter().filter(|f| f.len() >= 16).count();
        let pattern = format!("refreshd:{{u:{user_id}}}:*");
        let user = user_key(user_id);
        let sessions = sessions_key(user_id);
        // On a cluster, SCAN must go to the node that holds the user's slot.
        let slot: Option<u16> = match &self.conn {
            Conn::Single(_) => None,
            Conn::Cluster(_) => Some(
                self.bounded(
                    redis::cmd("CLUSTER")
                        .arg("KEYSLOT")
                        .arg(&user)
                        .query_async(&mut c),
                )
                .await?,
            ),
        };
        let mut cursor: u64 = 0;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000);
            let (next, keys): (u64, Vec<String>) = match (&mut c, slot) {
                (Conn::Cluster(cluster), Some(slot)) => {
                    let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                        Route::new(slot, SlotAddr::Master),
                    ));
                    let value = self.bounded(cluster.route_command(scan, route)).await?;
                    redis::from_redis_value(value)
                        .map_err(|e| StoreError::Unexpected(e.to_string()))?
                }
                _ => self.bounded(scan.query_async(&mut c)).await?,
            };
            count += keys
                .iter()
                .filter(|k| **k != user && **k != sessions)
                .count();
            if next == 0 {
                return Ok(count);
            }
            cursor = next;
        }
    }
}

#[async_trait]
impl LoginLimits for RedisStore {
    async fn count_login_attempt(
        &self,
        keys: &[LimitKey],
        max: u32,
        window: Duration,
    ) -> Result<Option<Duration>, StoreError> {
        self.operation(async {
            let mut wait = None;
            // One script per counter: the counters live in different slots of a cluster.
            for key in keys {
                let call = login_attempt_call(key, window);
                let (count, pttl): (i64, i64) =
                    self.run(&self.scripts.login_attempt, &call).await?;
                if count > i64::from(max) {
                    wait = wait.max(Some(Duration::from_millis(pttl.max(1) as u64)));
                }
            }
            Ok(wait)
        })
        .await
    }

    async fn forget_login_attempt(
        &self,
        reset: &LimitKey,
        refund: &[LimitKey],
    ) -> Result<(), StoreError> {
        self.operation(async {
            let mut c = self.conn().await;
            let _: i64 = self.bounded(c.del(limit_key(reset))).await?;
            for key in refund {
                let call = login_refund_call(key);
                let _: i64 = self.run(&self.scripts.login_refund, &call).await?;
            }
            Ok(())
        })
        .await
    }
}

fn flag(b: bool) -> &'static str {
    if b { "1" } else { "0" }
}

/// The scripts, each loaded once per store.
struct Scripts {
    refresh: Script,
    revoke: Script,
    revoke_all: Script,
    create: Script,
    login_attempt: Script,
    login_refund: Script,
    add_user: Script,
    settle_claim: Script,
    list_sessions: Script,
    rehash: Script,
    import_user: Script,
}

/// The session record's reading and writing, run ahead of every script that touches sessions
/// (a Lua script cannot include another).
const RECORDS_LUA: &str = include_str!("lua/records.lua");

/// The scripts that run after `RECORDS_LUA`.
const RUN_AFTER_RECORDS: &[&str] = &[
    "refresh.lua",
    "revoke.lua",
    "revoke_all.lua",
    "create.lua",
    "list_sessions.lua",
    "import_user.lua",
];

/// Every script's source, by file name (the unit tests read their headers).
const SCRIPT_SOURCES: &[(&str, &str)] = &[
    ("refresh.lua", include_str!("lua/refresh.lua")),
    ("revoke.lua", include_str!("lua/revoke.lua")),
    ("revoke_all.lua", include_str!("lua/revoke_all.lua")),
    ("create.lua", include_str!("lua/create.lua")),
    ("login_attempt.lua", include_str!("lua/login_attempt.lua")),
    ("login_refund.lua", include_str!("lua/login_refund.lua")),
    ("add_user.lua", include_str!("lua/add_user.lua")),
    ("settle_claim.lua", include_str!("lua/settle_claim.lua")),
    ("list_sessions.lua", include_str!("lua/list_sessions.lua")),
    ("rehash.lua", include_str!("lua/rehash.lua")),
    ("import_user.lua", include_str!("lua/import_user.lua")),
];

impl Scripts {
    fn new() -> Self {
        let load = |name: &str| {
            let (_, source) = SCRIPT_SOURCES
                .iter()
                .find(|(n, _)| *n == name)
                .expect("a listed script");
            if RUN_AFTER_RECORDS.contains(&name) {
                Script::new(&format!("{RECORDS_LUA}\n{source}"))
            } else {
                Script::new(source)
            }
        };
        Self {
            refresh: load("refresh.lua"),
            revoke: load("revoke.lua"),
            revoke_all: load("revoke_all.lua"),
            create: load("create.lua"),
            login_attempt: load("login_attempt.lua"),
            login_refund: load("login_refund.lua"),
            add_user: load("add_user.lua"),
            settle_claim: load("settle_claim.lua"),
            list_sessions: load("list_sessions.lua"),
            rehash: load("rehash.lua"),
            import_user: load("import_user.lua"),
        }
    }
}

/// One script call: its keys and arguments, each under the name the script's opening block binds
/// it to (`local name = KEYS[i]` / `ARGV[i]`), in that order. The names are only checked by the
/// unit tests below; at run time they cost nothing but a pointer.
#[derive(Default)]
struct Call {
    keys: Vec<(&'static str, String)>,
    args: Vec<(&'static str, Vec<u8>)>,
}

/// A script argument's bytes: text as it is, numbers in decimal, packed ids as packed.
trait ArgBytes {
    fn arg_bytes(self) -> Vec<u8>;
}

impl ArgBytes for Vec<u8> {
    fn arg_bytes(self) -> Vec<u8> {
        self
    }
}
impl ArgBytes for &str {
    fn arg_bytes(self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}
impl ArgBytes for &String {
    fn arg_bytes(self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}
impl ArgBytes for String {
    fn arg_bytes(self) -> Vec<u8> {
        self.into_bytes()
    }
}
impl ArgBytes for u64 {
    fn arg_bytes(self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

impl Call {
    fn key(mut self, name: &'static str, value: impl ToString) -> Self {
        self.keys.push((name, value.to_string()));
        self
    }

    fn arg(mut self, name: &'static str, value: impl ArgBytes) -> Self {
        self.args.push((name, value.arg_bytes()));
        self
    }
}

impl RedisStore {
    /// Runs one script within the timeout.
    async fn run<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        call: &Call,
    ) -> Result<T, StoreError> {
        self.run_with(script, call, false).await
    }

    /// Runs one script whose effect a client will be told about: with REDIS_MIN_REPLICAS, not
    /// answered until that many replicas hold it (SPEC 5), within the same deadline.
    async fn write<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        call: &Call,
    ) -> Result<T, StoreError> {
        self.run_with(script, call, true).await
    }

    async fn run_with<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        call: &Call,
        confirm: bool,
    ) -> Result<T, StoreError> {
        let mut c = self.conn().await;
        let mut inv = script.prepare_invoke();
        for (_, k) in &call.keys {
            inv.key(k);
        }
        for (_, a) in &call.args {
            inv.arg(a);
        }
        let started = Instant::now();
        let need = if confirm { self.min_replicas } else { 0 };
        let first_key = call.keys.first().map(|(_, k)| k.as_str()).unwrap_or("");
        let (reply, confirmed) = self
            .bounded(async {
                let reply: T = inv.invoke_async(&mut c).await?;
                if need == 0 {
                    return Ok((reply, 0));
                }
                let confirmed = self.wait_replicas(&mut c, first_key, started).await?;
                Ok((reply, confirmed))
            })
            .await?;
        if confirmed < need {
            return Err(StoreError::Unavailable(format!(
                "{confirmed} of the {need} replicas (REDIS_MIN_REPLICAS) confirmed a write within STORE_TIMEOUT"
            )));
        }
        Ok(reply)
    }

    /// `WAIT` on the connection that just wrote (on a cluster, on the master of `key`'s slot),
    /// for what is left of the call's deadline: how many replicas hold this client's writes.
    async fn wait_replicas(
        &self,
        c: &mut Conn,
        key: &str,
        started: Instant,
    ) -> redis::RedisResult<u32> {
        // WAIT 0 would wait for ever; leave the deadline a little room to say why.
        let left = self
            .remaining()
            .min(self.timeout.saturating_sub(started.elapsed()))
            .saturating_sub(Duration::from_millis(20))
            .max(Duration::from_millis(1));
        let mut wait = redis::cmd("WAIT");
        wait.arg(self.min_replicas).arg(left.as_millis() as u64);
        let confirmed: i64 = match c {
            Conn::Single(_) => wait.query_async(c).await?,
            Conn::Cluster(cluster) => {
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                    Route::with_key(key, SlotAddr::Master),
                ));
                redis::from_redis_value(cluster.route_command(wait, route).await?)?
            }
        };
        Ok(confirmed.max(0) as u32)
    }

    /// As `write`, for a plain command (the user commands' few writes outside scripts).
    async fn confirm(&self, key: &str) -> Result<(), StoreError> {
        if self.min_replicas == 0 {
            return Ok(());
        }
        let mut c = self.conn().await;
        let started = Instant::now();
        let confirmed = self
            .bounded(self.wait_replicas(&mut c, key, started))
            .await?;
        if confirmed < self.min_replicas {
            return Err(StoreError::Unavailable(format!(
                "{confirmed} of the {} replicas (REDIS_MIN_REPLICAS) confirmed a write within STORE_TIMEOUT",
                self.min_replicas
            )));
        }
        Ok(())
    }
}

fn create_call(s: &NewSession) -> Call {
    Call::default()
        .key("sessions_key", sessions_key(&s.user_id))
        .key("user_key", user_key(&s.user_id))
        .arg("sid", pack_id(s.sid.as_str()))
        .arg("jti", pack_id(s.refresh.jti.as_str()))
        .arg(
            "session_end",
            s.end.map(|e| e.to_string()).unwrap_or_default(),
        )
        .arg("browser_session", flag(!s.remember))
        .arg("user_agent", &s.client.user_agent)
        .arg("client_address", &s.client.address)
        .arg(
            "keep_until_ms",
            s.refresh.exp.saturating_add(s.leeway).saturating_mul(1000),
        )
}

fn refresh_call(r: &RefreshRequest, epoch: u64) -> Call {
    // Only an adopted session records its client: the others were recorded at login.
    let client = |v: &str| {
        if r.foreign {
            v.to_owned()
        } else {
            String::new()
        }
    };
    Call::default()
        .key("user_key", user_key(&r.user_id))
        .key("sessions_key", sessions_key(&r.user_id))
        .key(
            "legacy_session_key",
            legacy::session_key(&r.user_id, &r.sid),
        )
        .key(
            "legacy_bl_key",
            legacy::blacklist_key(&r.user_id, &r.presented.jti),
        )
        .arg("sid", pack_id(r.sid.as_str()))
        .arg("jti", pack_id(r.presented.jti.as_str()))
        .arg("next_jti", pack_id(r.successor.jti.as_str()))
        .arg("params", pack_params(&refresh_params(r, epoch)))
        .arg("user_agent", client(&r.client.user_agent))
        .arg("client_address", client(&r.client.address))
}

/// One number of a script's `params` argument: its name in the script, its value, and how many
/// bytes it takes (big-endian; a value too large for them is capped).
type Param = (&'static str, u64, usize);

/// The numbers and switches of one refresh, in the order refresh.lua unpacks them from
/// `params` (a unit test holds the two to the same names and widths).
fn refresh_params(r: &RefreshRequest, epoch: u64) -> [Param; 10] {
    let p = &r.policy;
    let switches = u64::from(r.foreign)
        | u64::from(p.adopt_foreign) << 1
        | u64::from(p.rotate) << 2
        | u64::from(p.blacklist) << 3
        | u64::from(p.idle_timeout_ms.is_some()) << 4
        | u64::from(r.adopt_end.is_some()) << 5;
    [
        ("switches", switches, 1),
        ("jti_iat", r.presented.iat, 5),
        ("jti_exp", r.presented.exp, 5),
        ("epoch", epoch, 5),
        ("reuse_interval_ms", p.reuse_interval_ms, 6),
        ("idle_timeout_ms", p.idle_timeout_ms.unwrap_or(0), 6),
        ("leeway", p.leeway, 5),
        ("next_iat", r.successor.iat, 5),
        ("next_exp", r.successor.exp, 5),
        ("adopt_end", r.adopt_end.unwrap_or(0), 5),
    ]
}

fn pack_params(params: &[Param]) -> Vec<u8> {
    let mut out = Vec::new();
    for &(_, value, width) in params {
        let cap = (1u64 << (8 * width as u32).min(63)) - 1;
        out.extend_from_slice(&value.min(cap).to_be_bytes()[8 - width..]);
    }
    out
}

fn revoke_call(r: &RevokeRequest) -> Call {
    let p = &r.policy;
    Call::default()
        .key("sessions_key", sessions_key(&r.user_id))
        .key(
            "legacy_session_key",
            legacy::session_key(&r.user_id, &r.sid),
        )
        .key(
            "legacy_bl_key",
            legacy::blacklist_key(&r.user_id, &r.presented.jti),
        )
        .key("legacy_index_key", legacy::index_key(&r.user_id))
        .arg("sid", pack_id(r.sid.as_str()))
        .arg("jti", pack_id(r.presented.jti.as_str()))
        .arg("jti_exp", r.presented.exp)
        .arg("leeway", p.leeway)
        .arg("foreign", flag(r.foreign))
        .arg("all", flag(r.all))
        .arg("blacklist", flag(p.blacklist))
        .arg("reuse_interval_ms", p.reuse_interval_ms)
        .arg("legacy_session_prefix", legacy::session_prefix(&r.user_id))
}

/// Ends one session by id: the revoke script with no presented token (the session's own key of
/// the previous layout stands in for the blacklist key it will not touch).
fn end_session_call(user_id: &UserId, sid: &SessionId) -> Call {
    let legacy_key = legacy::session_key(user_id, sid);
    Call::default()
        .key("sessions_key", sessions_key(user_id))
        .key("legacy_session_key", &legacy_key)
        .key("legacy_bl_key", &legacy_key)
        .key("legacy_index_key", legacy::index_key(user_id))
        .arg("sid", pack_id(sid.as_str()))
        .arg("jti", "")
        .arg("jti_exp", 0)
        .arg("leeway", 0)
        .arg("foreign", "0")
        .arg("all", "0")
        .arg("blacklist", "1")
        .arg("reuse_interval_ms", 0)
        .arg("legacy_session_prefix", legacy::session_prefix(user_id))
}

fn add_user_call(user: &User) -> Call {
    Call::default()
        .key("user_key", user_key(&user.id))
        .arg("id", user.id.as_str())
        .arg("username", user.username.as_str())
        .arg("password_hash", user.password_hash.as_str())
        .arg("active", flag(user.is_active))
}

fn settle_claim_call(key: &str, id: &str, how: &str) -> Call {
    Call::default()
        .key("claim_key", key)
        .arg("id", id)
        .arg("how", how)
}

fn list_sessions_call(user_id: &UserId) -> Call {
    Call::default()
        .key("sessions_key", sessions_key(user_id))
        .key("legacy_index_key", legacy::index_key(user_id))
        .arg("legacy_session_prefix", legacy::session_prefix(user_id))
}

fn login_attempt_call(key: &LimitKey, window: Duration) -> Call {
    Call::default()
        .key("counter_key", limit_key(key))
        .arg("window_ms", window.as_millis() as u64)
}

fn login_refund_call(key: &LimitKey) -> Call {
    Call::default().key("counter_key", limit_key(key))
}

/// `change` is '' (end the sessions only), 'deactivate', 'password' or 'delete'.
fn revoke_all_call(user_id: &UserId, change: &str, password_hash: &str) -> Call {
    Call::default()
        .key("sessions_key", sessions_key(user_id))
        .key("user_key", user_key(user_id))
        .key("legacy_index_key", legacy::index_key(user_id))
        .arg("legacy_session_prefix", legacy::session_prefix(user_id))
        .arg("change", change)
        .arg("password_hash", password_hash)
}

fn import_call(user: &User) -> Call {
    Call::default()
        .key("user_key", user_key(&user.id))
        .key("sessions_key", sessions_key(&user.id))
        .key("legacy_index_key", legacy::index_key(&user.id))
        .arg("id", user.id.as_str())
        .arg("username", user.username.as_str())
        .arg("password_hash", &user.password_hash)
        .arg("active", flag(user.is_active))
        .arg("legacy_session_prefix", legacy::session_prefix(&user.id))
}

fn rehash_call(id: &UserId, old: &str, new: &str) -> Call {
    Call::default()
        .key("user_key", user_key(id))
        .arg("old_hash", old)
        .arg("new_hash", new)
}

fn parse_refresh_reply(reply: &[Value]) -> Result<RefreshOutcome, StoreError> {
    let bad = || StoreError::Unexpected(format!("refresh script returned {reply:?}"));
    let kind = match reply.first() {
        Some(Value::BulkString(kind)) => kind.as_slice(),
        _ => return Err(bad()),
    };
    let kind = match kind {
        b"issued" => AnswerKind::Issued,
        b"repeated" => AnswerKind::Repeated,
        b"promoted" => AnswerKind::Promoted,
        b"forgiven" => AnswerKind::Forgiven,
        b"kept" => AnswerKind::Kept,
        b"invalid" => return Ok(RefreshOutcome::Invalid),
        b"revoked" => return Ok(RefreshOutcome::Revoked),
        b"reuse" => return Ok(RefreshOutcome::ReuseRevoked),
        b"no_user" => return Ok(RefreshOutcome::UserMissing),
        b"inactive" => return Ok(RefreshOutcome::UserInactive),
        _ => return Err(bad()),
    };
    let [_, Value::BulkString(jti), iat, exp, end, remember] = reply else {
        return Err(bad());
    };
    let num = |v: &Value| match v {
        Value::Int(n) if *n >= 0 => Ok(*n as u64),
        _ => Err(bad()),
    };
    Ok(RefreshOutcome::Ok(RefreshAnswer {
        kind,
        refresh: RefreshClaims {
            jti: unpack_id(jti)
                .and_then(|text| Jti::parse(&text))
                .ok_or_else(bad)?,
            iat: num(iat)?,
            exp: num(exp)?,
        },
        end: Some(num(end)?).filter(|end| *end > 0),
        remember: num(remember)? != 0,
    }))
}

impl RedisStore {
    /// The access check of a session the previous layout may still hold (see the top of this
    /// file), as that layout answered it: a second round trip, taken only when the sessions hash
    /// has no record for a token issued before this store started.
    async fn legacy_check(
        &self,
        check: &TokenCheck,
        cutoff: u64,
        idle: impl Fn(u64) -> bool,
    ) -> Result<bool, StoreError> {
        let mut c = self.conn().await;
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET")
            .arg(legacy::session_key(&check.user_id, &check.sid))
            .arg(&["cur", "rev", "created", "last"]);
        let (session, blacklisted): (Vec<Option<String>>, bool) = match &check.refresh_jti {
            Some(jti) => {
                pipe.cmd("EXISTS")
                    .arg(legacy::blacklist_key(&check.user_id, jti));
                let (s, b): (Vec<Option<String>>, i64) =
                    self.bounded(pipe.query_async(&mut c)).await?;
                (s, b == 1)
            }
            None => {
                let (s,): (Vec<Option<String>>,) = self.bounded(pipe.query_async(&mut c)).await?;
                (s, false)
            }
        };
        let number = |v: &Option<String>| v.as_deref().and_then(|v| v.parse::<u64>().ok());
        let session_ok = match session.as_slice() {
            [Some(_), rev, created, last] => {
                rev.as_deref() != Some("1") && !idle(number(last).or(number(created)).unwrap_or(0))
            }
            _ => !check.session_required && check.iat > cutoff,
        };
        Ok(session_ok && !blacklisted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ClientInfo, RotationPolicy};

    /// The names a script's opening block binds, in order: `local <name> = KEYS[i]` (or ARGV).
    fn bound(source: &str, table: &str) -> Vec<String> {
        let mut names = Vec::new();
        for line in source.lines() {
            let Some(rest) = line.strip_prefix("local ") else {
                continue;
            };
            let Some((name, value)) = rest.split_once(" = ") else {
                continue;
            };
            let Some(index) = value
                .strip_prefix(table)
                .and_then(|v| v.strip_prefix('['))
                .and_then(|v| v.strip_suffix(']'))
            else {
                continue;
            };
            assert_eq!(
                index.parse::<usize>().ok(),
                Some(names.len() + 1),
                "{table} bound out of order at {line:?}"
            );
            names.push(name.trim().to_owned());
        }
        names
    }

    fn names<T>(list: &[(&'static str, T)]) -> Vec<String> {
        list.iter().map(|(n, _)| (*n).to_owned()).collect()
    }

    fn source(name: &str) -> &'static str {
        SCRIPT_SOURCES.iter().find(|(n, _)| *n == name).unwrap().1
    }

    #[track_caller]
    fn assert_binds(script: &str, call: &Call) {
        let src = source(script);
        assert_eq!(bound(src, "KEYS"), names(&call.keys), "{script}: KEYS");
        assert_eq!(bound(src, "ARGV"), names(&call.args), "{script}: ARGV");
        // Nothing below the opening block reads KEYS or ARGV by number.
        let uses = src.matches("KEYS[").count() + src.matches("ARGV[").count();
        assert_eq!(uses, call.keys.len() + call.args.len(), "{script}");
    }

    fn claims() -> RefreshClaims {
        RefreshClaims {
            jti: Jti::new_random(),
            iat: 1,
            exp: 2,
        }
    }

    fn policy() -> RotationPolicy {
        RotationPolicy {
            rotate: true,
            blacklist: true,
            reuse_interval_ms: 10_000,
            idle_timeout_ms: None,
            adopt_foreign: true,
            leeway: 0,
        }
    }

    #[test]
    fn every_script_gets_its_arguments_in_the_order_it_names_them() {
        let user = UserId::parse("7").unwrap();
        let sid = SessionId::new_random();
        assert_binds(
            "refresh.lua",
            &refresh_call(
                &RefreshRequest {
                    user_id: user.clone(),
                    sid: sid.clone(),
                    foreign: false,
                    adopt_end: None,
                    presented: claims(),
                    policy: policy(),
                    successor: claims(),
                    client: ClientInfo::default(),
                },
                0,
            ),
        );
        assert_binds(
            "revoke.lua",
            &revoke_call(&RevokeRequest {
                user_id: user.clone(),
                sid: sid.clone(),
                foreign: false,
                presented: claims(),
                all: false,
                policy: policy(),
            }),
        );
        assert_binds("revoke.lua", &end_session_call(&user, &sid));
        assert_binds("list_sessions.lua", &list_sessions_call(&user));
        assert_binds("settle_claim.lua", &settle_claim_call("k", "7", "keep"));
        let limit = LimitKey::Username("u".into());
        assert_binds(
            "login_attempt.lua",
            &login_attempt_call(&limit, Duration::from_secs(1)),
        );
        assert_binds("login_refund.lua", &login_refund_call(&limit));
        assert_binds(
            "add_user.lua",
            &add_user_call(&User {
                id: user.clone(),
                username: Username::parse("u").unwrap(),
                password_hash: "$argon2id$...".into(),
                is_active: true,
            }),
        );
        assert_binds("revoke_all.lua", &revoke_all_call(&user, "password", "h"));
        assert_binds(
            "import_user.lua",
            &import_call(&User {
                id: user.clone(),
                username: Username::parse("u").unwrap(),
                password_hash: "h".into(),
                is_active: true,
            }),
        );
        assert_binds("rehash.lua", &rehash_call(&user, "old", "new"));
        assert_binds(
            "create.lua",
            &create_call(&NewSession {
                user_id: user,
                sid,
                client: ClientInfo::default(),
                refresh: claims(),
                end: None,
                remember: true,
                leeway: 0,
            }),
        );
    }

    #[test]
    fn refresh_params_are_packed_as_the_script_unpacks_them() {
        let src = source("refresh.lua");
        let start = src.find("local switches,").expect("the params block");
        let statement = &src[start..start + src[start..].find(')').unwrap()];
        let (names, call) = statement["local ".len()..].split_once(" = ").unwrap();
        let names: Vec<&str> = names.split(',').map(str::trim).collect();
        let format = call
            .strip_prefix("struct.unpack('>")
            .and_then(|f| f.strip_suffix("', params"))
            .expect("struct.unpack('>...', params)");
        // B is one byte, In is n bytes.
        let mut widths = Vec::new();
        let mut chars = format.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                'B' => widths.push(1),
                'I' => widths.push(chars.next().unwrap().to_digit(10).unwrap() as usize),
                other => panic!("unexpected {other:?} in {format}"),
            }
        }
        let request = RefreshRequest {
            user_id: UserId::parse("7").unwrap(),
            sid: SessionId::new_random(),
            foreign: true,
            adopt_end: Some(3),
            presented: claims(),
            policy: policy(),
            successor: claims(),
            client: ClientInfo::default(),
        };
        let params = refresh_params(&request, 0);
        let ours: Vec<&str> = params.iter().map(|(n, _, _)| *n).collect();
        assert_eq!(ours, names);
        let ours: Vec<usize> = params.iter().map(|(_, _, w)| *w).collect();
        assert_eq!(ours, widths);
        assert_eq!(pack_params(&params).len(), widths.iter().sum::<usize>());
        assert_eq!(
            pack_params(&[("x", 300, 1), ("y", 1 << 41, 5)]),
            [255, 255, 255, 255, 255, 255]
        );
    }

    #[test]
    fn a_sentinel_data_node_url_keeps_the_templates_scheme_user_password_and_db() {
        let config = |data_url: Option<&str>| SentinelConfig {
            sentinels: vec![],
            master: "m".into(),
            password: None,
            data_url: data_url.map(str::to_owned),
        };
        assert_eq!(
            config(None).data_url("10.0.0.7:6379"),
            "redis://10.0.0.7:6379/"
        );
        let tls = config(Some("rediss://app:p@ss@master/2"));
        assert_eq!(
            tls.data_url("10.0.0.7:6379"),
            "rediss://app:p@ss@10.0.0.7:6379/2"
        );
        assert_eq!(tls.scheme(), "rediss");
        assert_eq!(
            config(Some("redis://:pw@x:1")).data_url("[::1]:6379"),
            "redis://:pw@[::1]:6379/"
        );
        assert_eq!(percent_encode("a b/@"), "a%20b%2F%40");
    }

    #[test]
    fn every_script_binds_its_keys_and_arguments_in_one_block() {
        for (name, src) in SCRIPT_SOURCES {
            let keys = bound(src, "KEYS");
            let args = bound(src, "ARGV");
            assert!(!keys.is_empty(), "{name} names its keys");
            let uses = src.matches("KEYS[").count() + src.matches("ARGV[").count();
            assert_eq!(
                uses,
                keys.len() + args.len(),
                "{name}: a number used below the block"
            );
        }
    }
}

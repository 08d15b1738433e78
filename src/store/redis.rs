//! The Redis store, shared by every instance. Each refresh is one EVALSHA of `lua/refresh.lua`:
//! one round trip, decided atomically. Every call is bounded by STORE_TIMEOUT; a store that does
//! not answer is `Unavailable` and the caller fails closed.
//!
//! Key layout (the only place it is written down):
//!
//! ```text
//! refreshd:{u:<user id>}:user          hash   id, username, password (argon2id PHC), active (1/0)
//! refreshd:{u:<user id>}:s:<sid>       hash   one session (token family): cur (newest refresh
//!                                             jti), rev (1 once revoked), end (absolute end, s),
//!                                             created (ms), prev + prev_at (the token it replaced,
//!                                             and when), n_* (claims of the newest tokens, for
//!                                             replays within the reuse interval)
//!                                             expires when the family's newest token does
//! refreshd:{u:<user id>}:bl:<jti>      string blacklist entry, expires when that token would
//! refreshd:{u:<user id>}:sessions      zset   the user's live sessions: sid scored by the time
//!                                             (ms) its record may go; expires with the last one
//! refreshd:username:<username>         string the user id (while `user add` runs, a claim with a
//!                                             lease; kept once the user's record is written)
//! refreshd:users                       set    every user id
//! refreshd:lf:user:<username>          string login attempts for a username (successes reset it),
//!                                             expires with the window
//! refreshd:lf:addr:<ip>                string failed login attempts from a client address
//! ```
//!
//! Everything a refresh touches carries the user's hash tag `{u:<id>}`, so one script can read the
//! user and change the session and its blacklist in one slot of a Redis Cluster.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{AsyncCommands, Cmd, Pipeline, RedisFuture, Script, Value};

use super::{
    CheckOutcome, LimitKey, NewSession, RefreshOutcome, RefreshRequest, RevokeRequest, SessionInfo,
    Store, StoreError, Successor, TokenCheck,
};
use crate::domain::{Jti, SessionId, User, UserId, Username};
use crate::metrics::Metrics;

const USERS_KEY: &str = "refreshd:users";

fn user_key(id: &UserId) -> String {
    format!("refreshd:{{u:{id}}}:user")
}
fn session_key(id: &UserId, sid: &SessionId) -> String {
    format!("refreshd:{{u:{id}}}:s:{sid}")
}
/// The common prefix of a user's session keys; the scripts that walk the index append a sid.
fn session_prefix(id: &UserId) -> String {
    format!("refreshd:{{u:{id}}}:s:")
}
fn index_key(id: &UserId) -> String {
    format!("refreshd:{{u:{id}}}:sessions")
}
fn blacklist_key(id: &UserId, jti: &Jti) -> String {
    format!("refreshd:{{u:{id}}}:bl:{jti}")
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
    static WORKER_CONNECTIONS: std::cell::RefCell<Vec<(u64, ConnectionManager)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

static NEXT_STORE_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub struct RedisStore {
    id: u64,
    /// How to open more connections to a single Redis (one per worker thread).
    single: Option<(redis::Client, ConnectionManagerConfig)>,
    conn: Conn,
    timeout: Duration,
    metrics: Option<Arc<Metrics>>,
    refresh: Script,
    revoke: Script,
    login_attempt: Script,
    login_refund: Script,
    create: Script,
    add_user: Script,
    settle_claim: Script,
    revoke_all: Script,
    list_sessions: Script,
}

impl RedisStore {
    /// Connects, failing within `timeout` when Redis cannot be reached. Afterwards the
    /// connection re-establishes itself in the background whenever it drops.
    pub async fn connect(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::Unavailable(format!("bad REDIS_URL: {e}")))?;
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
        .map_err(unavailable)?;
        let mut store = Self::with_conn(Conn::Single(conn), timeout);
        store.single = Some((client, config));
        Ok(store)
    }

    /// The connection for this call: on an HTTP worker (a single-threaded runtime), that
    /// thread's own; elsewhere, or while a worker's own cannot be opened, the shared one.
    async fn conn(&self) -> Conn {
        let Some((client, config)) = &self.single else {
            return self.conn.clone();
        };
        let on_worker = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread);
        if !on_worker {
            return self.conn.clone();
        }
        let local = WORKER_CONNECTIONS.with(|all| {
            all.borrow()
                .iter()
                .find(|(id, _)| *id == self.id)
                .map(|(_, c)| c.clone())
        });
        if let Some(c) = local {
            return Conn::Single(c);
        }
        let opened = tokio::time::timeout(
            self.timeout,
            ConnectionManager::new_with_config(client.clone(), config.clone()),
        )
        .await;
        match opened {
            Ok(Ok(c)) => {
                WORKER_CONNECTIONS.with(|all| all.borrow_mut().push((self.id, c.clone())));
                Conn::Single(c)
            }
            // Redis is down: the shared connection will say so, and retry later.
            _ => self.conn.clone(),
        }
    }

    /// Connects to a Redis Cluster through its seed nodes. Every session's keys share one hash
    /// slot, so each rotation is still one atomic script on one node.
    pub async fn connect_cluster(nodes: &[String], timeout: Duration) -> Result<Self, StoreError> {
        let client = redis::cluster::ClusterClient::builder(nodes.to_vec())
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(1)
            .min_retry_wait(50)
            .max_retry_wait(500)
            .build()
            .map_err(|e| StoreError::Unavailable(format!("bad REDIS_CLUSTER_NODES: {e}")))?;
        let conn = tokio::time::timeout(timeout * 2, client.get_async_connection())
            .await
            .map_err(|_| StoreError::Unavailable("timed out connecting to the cluster".into()))?
            .map_err(unavailable)?;
        Ok(Self::with_conn(Conn::Cluster(conn), timeout))
    }

    fn with_conn(conn: Conn, timeout: Duration) -> Self {
        Self {
            id: NEXT_STORE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            single: None,
            conn,
            timeout,
            metrics: None,
            refresh: Script::new(include_str!("lua/refresh.lua")),
            revoke: Script::new(include_str!("lua/revoke.lua")),
            login_attempt: Script::new(include_str!("lua/login_attempt.lua")),
            login_refund: Script::new(include_str!("lua/login_refund.lua")),
            create: Script::new(include_str!("lua/create.lua")),
            add_user: Script::new(include_str!("lua/add_user.lua")),
            settle_claim: Script::new(include_str!("lua/settle_claim.lua")),
            revoke_all: Script::new(include_str!("lua/revoke_all.lua")),
            list_sessions: Script::new(include_str!("lua/list_sessions.lua")),
        }
    }

    /// Runs one store call within the timeout.
    async fn bounded<T, F>(&self, call: F) -> Result<T, StoreError>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        let started = Instant::now();
        let result = tokio::time::timeout(self.timeout, call).await;
        if let Some(m) = &self.metrics {
            m.store_call(started.elapsed());
        }
        match result {
            Ok(result) => result.map_err(unavailable),
            Err(_) => Err(StoreError::Unavailable(
                "Redis did not answer in time".into(),
            )),
        }
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
    /// Keeps (`"keep"`) or drops (`"drop"`) a username claim while it is still `id`'s.
    async fn settle_claim(&self, key: &str, id: &str, how: &str) -> Result<bool, StoreError> {
        let mut c = self.conn().await;
        let mut inv = self.settle_claim.prepare_invoke();
        inv.key(key).arg(id).arg(how);
        let done: i64 = self.bounded(inv.invoke_async(&mut c)).await?;
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
    // A plain ERR, but a capacity limit of the server, not a bug of ours.
    if e.to_string().contains("max number of clients reached") {
        return StoreError::Unavailable(e.to_string());
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

fn parse_successor(reply: &[String]) -> Result<Successor, StoreError> {
    let bad = || StoreError::Unexpected(format!("refresh script returned {reply:?}"));
    let [_, r, a, iat, rexp, aexp] = reply else {
        return Err(bad());
    };
    let num = |s: &String| s.parse::<u64>().map_err(|_| bad());
    Ok(Successor {
        refresh_jti: Jti::parse(r).ok_or_else(bad)?,
        access_jti: Jti::parse(a).ok_or_else(bad)?,
        iat: num(iat)?,
        refresh_exp: num(rexp)?,
        access_exp: num(aexp)?,
    })
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

    /// The username and the user's record live in different slots (a username's slot is not
    /// known from an id, nor an id's from a username), so adding a user cannot be one script.
    /// The username is claimed first with a lease that lapses by itself, and kept only once the
    /// record is written: a crash or a timeout part-way never leaves a username taken by
    /// nobody, and two adds of one name cannot both win.
    async fn add_user(&self, user: &User) -> Result<(), StoreError> {
        let mut c = self.conn().await;
        let name_key = username_key(&user.username);
        let id = user.id.as_str();
        // Longer than the four bounded calls below can take.
        let lease = Duration::from_secs(30) + self.timeout * 4;
        let claimed: bool = self
            .bounded(
                redis::cmd("SET")
                    .arg(&name_key)
                    .arg(id)
                    .arg("NX")
                    .arg("PX")
                    .arg(lease.as_millis() as u64)
                    .query_async::<Option<String>>(&mut c),
            )
            .await?
            .is_some();
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
        let mut inv = self.add_user.prepare_invoke();
        inv.key(user_key(&user.id))
            .arg(id)
            .arg(user.username.as_str())
            .arg(user.password_hash.as_str())
            .arg(if user.is_active { "1" } else { "0" });
        let created: i64 = self.bounded(inv.invoke_async(&mut c)).await?;
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
        Ok(())
    }

    async fn user_by_username(&self, username: &Username) -> Result<Option<User>, StoreError> {
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
    }

    async fn set_user_active(&self, username: &Username, active: bool) -> Result<bool, StoreError> {
        let Some(user) = self.user_by_username(username).await? else {
            return Ok(false);
        };
        let mut c = self.conn().await;
        let _: i64 = self
            .bounded(c.hset(user_key(&user.id), "active", if active { "1" } else { "0" }))
            .await?;
        Ok(true)
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

    async fn create_session(&self, s: &NewSession) -> Result<(), StoreError> {
        let mut c = self.conn().await;
        let mut inv = self.create.prepare_invoke();
        inv.key(session_key(&s.user_id, &s.sid))
            .key(index_key(&s.user_id))
            .arg(s.sid.as_str())
            .arg(s.refresh_jti.as_str())
            .arg(s.end.map(|e| e.to_string()).unwrap_or_default())
            .arg(&s.client.user_agent)
            .arg(&s.client.address)
            .arg((s.refresh_exp + s.leeway) * 1000);
        let _: i64 = self.bounded(inv.invoke_async(&mut c)).await?;
        Ok(())
    }

    async fn refresh(&self, r: &RefreshRequest) -> Result<RefreshOutcome, StoreError> {
        let mut c = self.conn().await;
        let flag = |b: bool| if b { "1" } else { "0" };
        let mut inv = self.refresh.prepare_invoke();
        inv.key(user_key(&r.user_id))
            .key(session_key(&r.user_id, &r.sid))
            .key(blacklist_key(&r.user_id, &r.jti))
            .key(index_key(&r.user_id))
            .arg(r.jti.as_str())
            .arg(r.jti_exp)
            .arg(r.now_ms)
            .arg(flag(r.adopt))
            .arg(flag(r.rotate))
            .arg(flag(r.blacklist))
            .arg(r.reuse_interval_ms)
            .arg(r.leeway)
            .arg(r.next.refresh_jti.as_str())
            .arg(r.next.access_jti.as_str())
            .arg(r.next.iat)
            .arg(r.next.refresh_exp)
            .arg(r.next.access_exp)
            .arg(r.adopt_end.map(|e| e.to_string()).unwrap_or_default())
            .arg(r.sid.as_str())
            .arg(&r.client.user_agent)
            .arg(&r.client.address);
        let reply: Vec<String> = self.bounded(inv.invoke_async(&mut c)).await?;
        Ok(match reply.first().map(String::as_str) {
            Some("rotated") => RefreshOutcome::Rotated(parse_successor(&reply)?),
            Some("grace") => RefreshOutcome::GraceReplay(parse_successor(&reply)?),
            Some("kept") => RefreshOutcome::Kept(parse_successor(&reply)?),
            Some("invalid") => RefreshOutcome::Invalid,
            Some("revoked") => RefreshOutcome::Revoked,
            Some("reuse") => RefreshOutcome::ReuseRevoked,
            Some("no_user") => RefreshOutcome::UserMissing,
            Some("inactive") => RefreshOutcome::UserInactive,
            _ => {
                return Err(StoreError::Unexpected(format!(
                    "refresh script returned {reply:?}"
                )));
            }
        })
    }

    async fn revoke(&self, r: &RevokeRequest) -> Result<(), StoreError> {
        let mut c = self.conn().await;
        let mut inv = self.revoke.prepare_invoke();
        inv.key(session_key(&r.user_id, &r.sid))
            .key(index_key(&r.user_id))
            .key(blacklist_key(&r.user_id, &r.jti))
            .arg(r.sid.as_str())
            .arg(r.jti.as_str())
            .arg(r.jti_exp)
            .arg(r.leeway)
            .arg(if r.adopt { "1" } else { "0" });
        let _: i64 = self.bounded(inv.invoke_async(&mut c)).await?;
        Ok(())
    }

    async fn check_token(&self, check: &TokenCheck) -> Result<CheckOutcome, StoreError> {
        let mut c = self.conn().await;
        // Three reads in one slot, pipelined: one round trip.
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET")
            .arg(user_key(&check.user_id))
            .arg(&["username", "password", "active"])
            .cmd("HMGET")
            .arg(session_key(&check.user_id, &check.sid))
            .arg(&["cur", "rev"]);
        if let Some(jti) = &check.refresh_jti {
            pipe.cmd("EXISTS").arg(blacklist_key(&check.user_id, jti));
        }
        let (user, session, blacklisted): (Vec<Option<String>>, Vec<Option<String>>, Option<i64>) =
            if check.refresh_jti.is_some() {
                self.bounded(pipe.query_async(&mut c)).await?
            } else {
                let (u, s): (Vec<Option<String>>, Vec<Option<String>>) =
                    self.bounded(pipe.query_async(&mut c)).await?;
                (u, s, None)
            };
        let Some(user) = user_from_fields(&check.user_id, &user) else {
            return Ok(CheckOutcome::UserMissing);
        };
        if !user.is_active {
            return Ok(CheckOutcome::UserInactive);
        }
        let session_ok = match session.as_slice() {
            [Some(_), rev] => rev.as_deref() != Some("1"),
            _ => !check.session_required,
        };
        if !session_ok || blacklisted == Some(1) {
            return Ok(CheckOutcome::Revoked);
        }
        Ok(CheckOutcome::Ok(user))
    }

    async fn list_sessions(&self, user_id: &UserId) -> Result<Vec<SessionInfo>, StoreError> {
        let mut c = self.conn().await;
        let mut inv = self.list_sessions.prepare_invoke();
        inv.key(index_key(user_id)).arg(session_prefix(user_id));
        let flat: Vec<String> = self.bounded(inv.invoke_async(&mut c)).await?;
        let bad = || StoreError::Unexpected("list_sessions returned a malformed row".into());
        let mut list = flat
            .chunks(6)
            .map(|row| match row {
                [sid, created, last, ua, ip, end] => Ok(SessionInfo {
                    id: SessionId::parse(sid).ok_or_else(bad)?,
                    created_ms: created.parse().map_err(|_| bad())?,
                    last_refreshed_ms: last.parse().ok(),
                    user_agent: ua.clone(),
                    client_address: ip.clone(),
                    ends_at: end.parse().ok(),
                }),
                _ => Err(bad()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        list.sort_by_key(|s| s.created_ms);
        Ok(list)
    }

    async fn end_session(&self, user_id: &UserId, sid: &SessionId) -> Result<bool, StoreError> {
        let mut c = self.conn().await;
        let key = session_key(user_id, sid);
        let mut inv = self.revoke.prepare_invoke();
        inv.key(&key)
            .key(index_key(user_id))
            .key(&key)
            .arg(sid.as_str())
            .arg("")
            .arg(0)
            .arg(0)
            .arg("0");
        let live: i64 = self.bounded(inv.invoke_async(&mut c)).await?;
        Ok(live == 1)
    }

    async fn end_all_sessions(&self, user_id: &UserId) -> Result<usize, StoreError> {
        let mut c = self.conn().await;
        let mut inv = self.revoke_all.prepare_invoke();
        inv.key(index_key(user_id)).arg(session_prefix(user_id));
        let ended: i64 = self.bounded(inv.invoke_async(&mut c)).await?;
        Ok(ended.max(0) as usize)
    }

    async fn session_footprint(&self, user_id: &UserId) -> Result<usize, StoreError> {
        let mut c = self.conn().await;
        let pattern = format!("refreshd:{{u:{user_id}}}:*");
        let user = user_key(user_id);
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
        let mut count = 0;
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
            count += keys.iter().filter(|k| **k != user).count();
            if next == 0 {
                return Ok(count);
            }
            cursor = next;
        }
    }

    async fn count_login_attempt(
        &self,
        keys: &[LimitKey],
        max: u32,
        window: Duration,
        _now_ms: u64,
    ) -> Result<Option<Duration>, StoreError> {
        let mut c = self.conn().await;
        let mut wait = None;
        // One script per counter: the counters live in different slots of a cluster.
        for key in keys {
            let mut inv = self.login_attempt.prepare_invoke();
            inv.key(limit_key(key)).arg(window.as_millis() as u64);
            let (count, pttl): (i64, i64) = self.bounded(inv.invoke_async(&mut c)).await?;
            if count > i64::from(max) {
                wait = wait.max(Some(Duration::from_millis(pttl.max(1) as u64)));
            }
        }
        Ok(wait)
    }

    async fn forget_login_attempt(
        &self,
        reset: &LimitKey,
        refund: &[LimitKey],
    ) -> Result<(), StoreError> {
        let mut c = self.conn().await;
        let _: i64 = self.bounded(c.del(limit_key(reset))).await?;
        for key in refund {
            let mut inv = self.login_refund.prepare_invoke();
            inv.key(limit_key(key));
            let _: i64 = self.bounded(inv.invoke_async(&mut c)).await?;
        }
        Ok(())
    }
}

//! Storage behind three traits (users, sessions, login limits): users, sessions (token families),
//! the blacklist and login-failure counters. Two implementations with the same semantics: Redis
//! (`redis`), shared by every instance, and an in-process store (`memory`) for running with no
//! set-up. One contract test table (tests/api/store_contract.rs) drives both through these traits.
//! Depends on `domain`, `metrics` and `config` only; knows nothing of HTTP, JWT encoding or the
//! flows above it. The store owns its clock (Redis `TIME`; an injectable `Clock` for the
//! in-process store).
//!
//! # Rotation commits on use
//!
//! A session holds one *current* refresh token, at most one *pending* successor (issued, not yet
//! presented), and remembers every token it *retired* (a blacklist entry holding the moment of
//! retirement, kept until that token would expire). What one refresh does, decided atomically:
//!
//! ```text
//! checked first, in this order                 answer                 change
//! user missing / inactive                      UserMissing/Inactive   none
//! foreign token (no sid) issued before the
//!   store's epoch or the user's cut-off        Invalid                none
//! session revoked                              Revoked                none
//! session unknown (foreign token: adopt it)    as "current" below     session made, token is current
//! session idle past SESSION_IDLE_TIMEOUT       Invalid                session revoked
//! session past its absolute end                Invalid                none
//!
//! presented token           state                    answer                   change
//! current                   rotation off             Kept (same token)        last refreshed
//! current                   no pending               Issued(new pending)      pending := successor
//! current                   pending P                Repeated(P)              last refreshed
//! pending P                 -                        Promoted(new pending)    current := P; its parent
//!                                                                             retired now; pending := new
//! retired at t              now < t + interval       Forgiven(newest)         last refreshed
//!                           or blacklisting off
//! retired at t              now >= t + interval      ReuseRevoked             session revoked
//! unknown to its session    blacklisting on          ReuseRevoked             session revoked
//! ```
//!
//! "Newest" is the pending token (a pending one is issued if there is none). Exactly one successor
//! exists however many requests race: the pending token is replaced only when it is presented.
//! An ended session (logout, reuse, idle, operator, deactivation) stays ended: its record
//! outlives every token of its family.

mod clock;
mod memory;
mod redis;

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{Jti, SessionId, User, UserId, Username};

pub use self::clock::{Clock, ManualClock, SystemClock};
pub use self::memory::MemoryStore;
pub use self::redis::{RedisOptions, RedisStore, SentinelConfig};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// The store did not answer in time or the connection is down. Callers fail closed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("username is taken")]
    UsernameTaken,
    #[error("user id is taken")]
    IdTaken,
    /// The store answered something this code does not understand.
    #[error("unexpected store reply: {0}")]
    Unexpected(String),
}

/// The claims of a refresh token the store tracks (seconds since the epoch). Tokens themselves
/// are never stored: a repeated answer signs these claims again, which gives the very same token
/// string (every supported algorithm signs deterministically).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshClaims {
    pub jti: Jti,
    pub iat: u64,
    pub exp: u64,
}

/// Who a session was started by, as the user will see it in their session list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub user_agent: String,
    pub address: String,
}

/// One live session, as listed to its user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: SessionId,
    pub created_ms: u64,
    pub last_refreshed_ms: Option<u64>,
    pub user_agent: String,
    pub client_address: String,
    /// The absolute end (SESSION_MAX_LIFETIME), seconds since the epoch.
    pub ends_at: Option<u64>,
}

/// A new session, started by a login.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub user_id: UserId,
    pub sid: SessionId,
    pub client: ClientInfo,
    /// The session's first (current) refresh token.
    pub refresh: RefreshClaims,
    /// Absolute end of the session (SESSION_MAX_LIFETIME), seconds since the epoch.
    pub end: Option<u64>,
    /// False for "remember me" off: the session's cookies are browser-session cookies.
    pub remember: bool,
    pub leeway: u64,
}

/// The rules a refresh is decided by (the settings of SPEC 4).
#[derive(Clone, Copy, Debug)]
pub struct RotationPolicy {
    pub rotate: bool,
    pub blacklist: bool,
    pub reuse_interval_ms: u64,
    /// SESSION_IDLE_TIMEOUT: a session not refreshed for this long ends.
    pub idle_timeout_ms: Option<u64>,
    /// Whether a token minted elsewhere (no sid) may start a session here.
    pub adopt_foreign: bool,
    pub leeway: u64,
}

/// One refresh, decided atomically by the store.
#[derive(Clone, Debug)]
pub struct RefreshRequest {
    pub user_id: UserId,
    pub sid: SessionId,
    /// True for a token minted elsewhere (no `sid`): its first refresh starts its session.
    pub foreign: bool,
    /// The end an adopted session gets (SESSION_MAX_LIFETIME from the token's `iat`).
    pub adopt_end: Option<u64>,
    /// The presented token.
    pub presented: RefreshClaims,
    pub policy: RotationPolicy,
    /// The successor to make pending if this request issues one (its `exp` is capped by the
    /// session's end in the store).
    pub successor: RefreshClaims,
    /// Recorded when this refresh starts (adopts) a session.
    pub client: ClientInfo,
}

/// How a successful refresh came about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerKind {
    /// The current token was presented: its pending successor was issued now.
    Issued,
    /// The current token was presented again: the same pending successor.
    Repeated,
    /// The pending token was presented: it is current now, its parent retired.
    Promoted,
    /// A token retired within the reuse interval: the session's newest token.
    Forgiven,
    /// Rotation is off: the presented token stays as it is.
    Kept,
}

/// A successful refresh: the refresh token to hand out and the session's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshAnswer {
    pub kind: AnswerKind,
    pub refresh: RefreshClaims,
    /// The session's absolute end, seconds since the epoch: no token outlives it.
    pub end: Option<u64>,
    /// False when the session's cookies are browser-session cookies ("remember me" off).
    pub remember: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    Ok(RefreshAnswer),
    /// Unknown session, a foreign token that may not start one, an idle session (now ended), or
    /// one past its absolute end.
    Invalid,
    /// A revoked session.
    Revoked,
    /// A retired token came back after the reuse interval: the session is now revoked.
    ReuseRevoked,
    UserMissing,
    UserInactive,
}

/// Logout: revoke the session of a presented refresh token, or with `all`, every session of its
/// user when the token is live (current, pending, or retired within the reuse interval).
#[derive(Clone, Debug)]
pub struct RevokeRequest {
    pub user_id: UserId,
    pub sid: SessionId,
    pub foreign: bool,
    pub presented: RefreshClaims,
    pub all: bool,
    pub policy: RotationPolicy,
}

/// What a logout did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// The token's session (or, for `all`, every session of its user) is ended.
    Revoked,
    /// `all` with a token retired past its interval: only its own session was ended (reuse).
    ReuseRevoked,
    /// Nothing live to end.
    Nothing,
}

/// A stateful check of an already verified token: its user, its session, and (for a refresh
/// token) whether it has been blacklisted.
#[derive(Clone, Debug)]
pub struct TokenCheck {
    pub user_id: UserId,
    pub sid: SessionId,
    /// False for a token minted elsewhere: its session exists only once it has been refreshed.
    pub session_required: bool,
    /// The token's `iat` (s): a foreign token issued before the user's cut-off is refused.
    pub iat: u64,
    /// A refresh token's jti, checked against the blacklist.
    pub refresh_jti: Option<Jti>,
    pub idle_timeout_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckOutcome {
    Ok(User),
    UserMissing,
    UserInactive,
    /// The session is revoked, idle or gone, or the refresh token is blacklisted or issued before
    /// the user's cut-off.
    Revoked,
}

/// What `UserStore::import_user` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Imported {
    Created,
    Updated,
}

/// What a login-failure counter counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LimitKey {
    Username(String),
    Addr(IpAddr),
}

impl LimitKey {
    pub fn as_key(&self) -> String {
        match self {
            LimitKey::Username(u) => format!("user:{u}"),
            LimitKey::Addr(a) => format!("addr:{a}"),
        }
    }
}

/// Users: records, lookups, activation.
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    async fn add_user(&self, user: &User) -> Result<(), StoreError>;
    async fn user_by_username(&self, username: &Username) -> Result<Option<User>, StoreError>;
    /// Returns false when there is no such user. Deactivating ends every session of the user and
    /// sets the user's cut-off: tokens issued before it stay refused after a re-activation.
    async fn set_user_active(&self, username: &Username, active: bool) -> Result<bool, StoreError>;
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;
    /// Creates or updates a user from another system's user table (`user import --django`),
    /// keyed by id and written whole. The password hash is replaced only when it differs from
    /// the one this id last imported, so a re-run leaves a hash upgraded at login (or changed
    /// with `user passwd`) alone. An import that makes an active user inactive deactivates it
    /// (sessions ended, cut-off set). A username held by another id is `UsernameTaken`.
    async fn import_user(&self, user: &User) -> Result<Imported, StoreError>;
    /// Sets a new password hash (`user passwd`), ends every session of the user and sets the
    /// cut-off. Returns how many live sessions were ended, or None when there is no such user.
    async fn set_password(
        &self,
        username: &Username,
        password_hash: &str,
    ) -> Result<Option<usize>, StoreError>;
    /// Deletes a user (`user delete`): ends every session and frees the username; the cut-off
    /// stays behind, so that tokens issued before stay refused should the id come back. Returns
    /// how many live sessions were ended, or None when there is no such user.
    async fn delete_user(&self, username: &Username) -> Result<Option<usize>, StoreError>;
    /// Replaces the user's password hash with `new` if it is still `old` (a login upgrading an
    /// imported hash); sessions and the cut-off are left alone. False when the hash changed in
    /// between or the user is gone.
    async fn replace_password_hash(
        &self,
        id: &UserId,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError>;
}

/// Sessions, rotation and the blacklist (the state table above).
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// The store's epoch: the second it was first used. A foreign refresh token issued before it
    /// cannot start a session.
    async fn epoch(&self) -> Result<u64, StoreError>;
    async fn create_session(&self, session: &NewSession) -> Result<(), StoreError>;
    async fn refresh(&self, request: &RefreshRequest) -> Result<RefreshOutcome, StoreError>;
    async fn revoke(&self, request: &RevokeRequest) -> Result<RevokeOutcome, StoreError>;
    /// The user behind a verified token, if the user is active and the token still stands.
    async fn check_token(&self, check: &TokenCheck) -> Result<CheckOutcome, StoreError>;

    /// The user's live (not revoked, not expired) sessions, oldest first.
    async fn list_sessions(&self, user_id: &UserId) -> Result<Vec<SessionInfo>, StoreError>;
    /// Ends one session; false when the user has no such live session.
    async fn end_session(&self, user_id: &UserId, sid: &SessionId) -> Result<bool, StoreError>;
    /// Ends every session of the user; returns how many were live.
    async fn end_all_sessions(&self, user_id: &UserId) -> Result<usize, StoreError>;
    /// How many entries the store holds for the user's sessions (records, index, blacklist),
    /// live or revoked: for operators and for the tests that prove they all expire.
    async fn session_footprint(&self, user_id: &UserId) -> Result<usize, StoreError>;
}

/// Login-failure counters.
#[async_trait]
pub trait LoginLimits: Send + Sync + 'static {
    /// Counts one login attempt on every key, before the password is checked, so that parallel
    /// guesses cannot all slip past the limit. A counter's window starts at its first attempt.
    /// Returns how long the caller must wait when any counter is now over `max`.
    async fn count_login_attempt(
        &self,
        keys: &[LimitKey],
        max: u32,
        window: Duration,
    ) -> Result<Option<Duration>, StoreError>;
    /// A successful login: the username's count starts again, and the attempt is taken back
    /// from the others (so that they count failures only).
    async fn forget_login_attempt(
        &self,
        reset: &LimitKey,
        refund: &[LimitKey],
    ) -> Result<(), StoreError>;
}

/// Whether the store's server may lose what it was told (SPEC 5), as far as it lets us see.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fitness {
    pub eviction: Eviction,
    /// False: neither AOF nor RDB snapshots, so a restart empties it. `None`: not known.
    pub persistent: Option<bool>,
    /// With REDIS_MIN_REPLICAS: the replicas online (the fewest of any master) and those needed.
    pub replicas: Option<(u32, u32)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Eviction {
    /// No memory limit, or `noeviction` (a full Redis refuses writes: 503s, nothing lost).
    #[default]
    Never,
    /// A `maxmemory` limit with a policy that drops keys: sessions and blacklist entries can
    /// vanish, and no rule of SPEC 4 survives that.
    Evicts { policy: String, maxmemory: u64 },
    /// The server would not say (CONFIG GET refused: a managed service, an ACL user without
    /// +config); why.
    Unknown(String),
}

/// The whole store.
#[async_trait]
pub trait Store: UserStore + SessionStore + LoginLimits {
    /// "redis" or "memory", for logs.
    fn kind(&self) -> &'static str;
    async fn ping(&self) -> Result<(), StoreError>;
    /// The server's eviction and persistence settings. The in-process store evicts nothing.
    async fn fitness(&self) -> Result<Fitness, StoreError> {
        Ok(Fitness::default())
    }
}

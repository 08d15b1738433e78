//! Storage behind one trait: users, sessions (token families), the blacklist and login-failure
//! counters. Two implementations with the same semantics: Redis (`redis`), shared by every
//! instance, and an in-process store (`memory`) for running with no set-up. The same contract
//! tests pass on both. Depends on `domain` only; knows nothing of HTTP or JWT encoding.

mod memory;
mod redis;

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{Jti, SessionId, User, UserId, Username};

pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;

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

/// The tokens a rotation produces, described by their claims (seconds since the epoch). Tokens
/// themselves are never stored: a concurrent replay is answered by signing these claims again,
/// which for HMAC gives the very same token strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Successor {
    pub refresh_jti: Jti,
    pub access_jti: Jti,
    pub iat: u64,
    pub refresh_exp: u64,
    pub access_exp: u64,
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
    pub refresh_jti: Jti,
    pub refresh_exp: u64,
    pub now_ms: u64,
    /// Absolute end of the session (SESSION_MAX_LIFETIME), seconds since the epoch.
    pub end: Option<u64>,
    pub leeway: u64,
}

/// One refresh, decided atomically by the store.
#[derive(Clone, Debug)]
pub struct RefreshRequest {
    pub user_id: UserId,
    pub sid: SessionId,
    /// True for a token minted elsewhere (no `sid`): its first refresh starts its session.
    pub adopt: bool,
    /// The end an adopted session gets (SESSION_MAX_LIFETIME from the token's `iat`).
    pub adopt_end: Option<u64>,
    pub jti: Jti,
    pub jti_exp: u64,
    pub now_ms: u64,
    pub rotate: bool,
    pub blacklist: bool,
    pub reuse_interval_ms: u64,
    pub leeway: u64,
    /// The successor to commit if this request is the one that rotates.
    pub next: Successor,
    /// Recorded when this refresh starts (adopts) a session.
    pub client: ClientInfo,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// This request rotated the token; the successor is now the session's newest token.
    Rotated(Successor),
    /// The token was rotated moments ago (within the reuse interval): the same successor again.
    GraceReplay(Successor),
    /// Rotation is off: a new access token; the refresh token stays as it is.
    Kept(Successor),
    /// Unknown session, or one past its absolute end.
    Invalid,
    /// A revoked session, or a token that was blacklisted.
    Revoked,
    /// A retired token came back after the reuse interval: the session is now revoked.
    ReuseRevoked,
    UserMissing,
    UserInactive,
}

/// Logout: revoke the session of a presented refresh token.
#[derive(Clone, Debug)]
pub struct RevokeRequest {
    pub user_id: UserId,
    pub sid: SessionId,
    pub adopt: bool,
    pub jti: Jti,
    pub jti_exp: u64,
    pub now_ms: u64,
    pub leeway: u64,
}

/// A stateful check of an already verified token: its user, its session, and (for a refresh
/// token) whether it has been blacklisted.
#[derive(Clone, Debug)]
pub struct TokenCheck {
    pub user_id: UserId,
    pub sid: SessionId,
    /// False for a token minted elsewhere: its session exists only once it has been refreshed.
    pub session_required: bool,
    /// A refresh token's jti, checked against the blacklist.
    pub refresh_jti: Option<Jti>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckOutcome {
    Ok(User),
    UserMissing,
    UserInactive,
    /// The session is revoked or gone, or the refresh token is blacklisted.
    Revoked,
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

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// "redis" or "memory", for logs.
    fn kind(&self) -> &'static str;
    async fn ping(&self) -> Result<(), StoreError>;

    async fn add_user(&self, user: &User) -> Result<(), StoreError>;
    async fn user_by_username(&self, username: &Username) -> Result<Option<User>, StoreError>;
    /// Returns false when there is no such user.
    async fn set_user_active(&self, username: &Username, active: bool) -> Result<bool, StoreError>;
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;

    async fn create_session(&self, session: &NewSession) -> Result<(), StoreError>;
    async fn refresh(&self, request: &RefreshRequest) -> Result<RefreshOutcome, StoreError>;
    async fn revoke(&self, request: &RevokeRequest) -> Result<(), StoreError>;
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

    /// Counts one login attempt on every key, before the password is checked, so that parallel
    /// guesses cannot all slip past the limit. A counter's window starts at its first attempt.
    /// Returns how long the caller must wait when any counter is now over `max`.
    async fn count_login_attempt(
        &self,
        keys: &[LimitKey],
        max: u32,
        window: Duration,
        now_ms: u64,
    ) -> Result<Option<Duration>, StoreError>;
    /// A successful login: the username's count starts again, and the attempt is taken back
    /// from the others (so that they count failures only).
    async fn forget_login_attempt(
        &self,
        reset: &LimitKey,
        refund: &[LimitKey],
    ) -> Result<(), StoreError>;
}

/// Clamps a successor's expiries to the session's absolute end.
fn clamp_to_end(next: &Successor, end: Option<u64>) -> Successor {
    let mut n = next.clone();
    if let Some(end) = end {
        n.refresh_exp = n.refresh_exp.min(end);
        n.access_exp = n.access_exp.min(end);
    }
    n
}

//! The flows: login, refresh (rotation, reuse interval, reuse detection), logout and access-token
//! authentication. Both HTTP skins call these; nothing here knows about HTTP. Depends on
//! `tokens`, `store` and `domain`.

pub mod passwords;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::Settings;
use crate::domain::{Claims, Jti, SessionId, TokenType, User, UserId, Username};
use crate::store::{
    CheckOutcome, ClientInfo, LimitKey, NewSession, RefreshOutcome, RefreshRequest, RevokeRequest,
    SessionInfo, Store, StoreError, Successor, TokenCheck,
};
use crate::tokens::{TokenCodec, TokenError};

use self::passwords::Passwords;

/// Outcomes of the flows, named for what the client is told. The HTTP layer maps each to a
/// status and body in one place.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("no refresh token")]
    MissingRefreshToken,
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// The token's session was revoked, or the token itself blacklisted.
    #[error("refresh token blacklisted")]
    BlacklistedToken,
    /// A retired refresh token came back after the reuse interval; its session is now revoked.
    #[error("refresh token reused; session revoked")]
    RefreshTokenReused,
    #[error("token user missing or inactive")]
    InvalidTokenUser,
    #[error("bad credentials")]
    InvalidCredentials,
    #[error("too many login attempts")]
    TooManyLoginAttempts { retry_after: Duration },
    #[error("no access token")]
    MissingAccessToken,
    #[error("invalid access token")]
    InvalidAccessToken,
    #[error("store unavailable: {0}")]
    StoreUnavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(why) => AuthError::StoreUnavailable(why),
            other => AuthError::Internal(other.to_string()),
        }
    }
}

/// A freshly issued (or re-issued) pair, with each token's remaining life in seconds.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedTokens {
    pub access: String,
    pub access_max_age: u64,
    pub refresh: String,
    pub refresh_max_age: u64,
}

impl std::fmt::Debug for IssuedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedTokens")
            .field("access_max_age", &self.access_max_age)
            .field("refresh_max_age", &self.refresh_max_age)
            .finish_non_exhaustive()
    }
}

/// Who is asking: recorded with a new session, and counted by login limiting.
#[derive(Clone, Debug, Default)]
pub struct Requester {
    pub addr: Option<IpAddr>,
    pub user_agent: String,
}

impl Requester {
    fn info(&self) -> ClientInfo {
        ClientInfo {
            user_agent: self.user_agent.clone(),
            address: self.addr.map(|a| a.to_string()).unwrap_or_default(),
        }
    }
}

/// How a successful refresh came about (for metrics and logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshKind {
    Rotated,
    GraceReplay,
    /// Rotation is off: the same refresh token, a new access token.
    Kept,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refreshed {
    pub kind: RefreshKind,
    pub tokens: IssuedTokens,
}

/// The policy knobs the flows read, copied out of Settings once.
struct Policy {
    access_lifetime: u64,
    refresh_lifetime: u64,
    rotate: bool,
    blacklist: bool,
    reuse_interval_ms: u64,
    leeway: u64,
    session_max_lifetime: Option<u64>,
    login_max_failures: u32,
    login_failure_window: Duration,
}

pub struct AuthService {
    codec: TokenCodec,
    store: Arc<dyn Store>,
    passwords: Passwords,
    policy: Policy,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl AuthService {
    pub fn new(settings: &Settings, codec: TokenCodec, store: Arc<dyn Store>) -> Self {
        Self {
            codec,
            store,
            passwords: Passwords::new(),
            policy: Policy {
                access_lifetime: settings.access_token_lifetime.as_secs(),
                refresh_lifetime: settings.refresh_token_lifetime.as_secs(),
                rotate: settings.rotate_refresh_tokens,
                blacklist: settings.blacklist_after_rotation,
                reuse_interval_ms: settings.refresh_token_reuse_interval.as_millis() as u64,
                leeway: settings.leeway.as_secs(),
                session_max_lifetime: settings.session_max_lifetime.map(|d| d.as_secs()),
                login_max_failures: settings.login_max_failures,
                login_failure_window: settings.login_failure_window,
            },
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn codec(&self) -> &TokenCodec {
        &self.codec
    }

    /// How many password verifications logins have run.
    pub fn password_checks(&self) -> u64 {
        self.passwords.checks()
    }

    /// Checks the credentials and starts a session. An unknown user, a wrong password and an
    /// inactive user all cost one argon2 verification and give the same error.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        requester: &Requester,
    ) -> Result<IssuedTokens, AuthError> {
        let now = now_ms();
        let name = Username::parse(username);
        let mut keys = Vec::with_capacity(2);
        if let Some(name) = &name {
            keys.push(LimitKey::Username(name.as_str().to_owned()));
        }
        if let Some(addr) = requester.addr {
            keys.push(LimitKey::Addr(crate::domain::login_limit_addr(addr)));
        }
        let limiting = self.policy.login_max_failures > 0 && !keys.is_empty();
        if limiting
            && let Some(retry_after) = self
                .store
                .count_login_attempt(
                    &keys,
                    self.policy.login_max_failures,
                    self.policy.login_failure_window,
                    now,
                )
                .await?
        {
            return Err(AuthError::TooManyLoginAttempts { retry_after });
        }
        let user = match &name {
            Some(name) => self.store.user_by_username(name).await?,
            None => None,
        };
        let hash = user.as_ref().map(|u| u.password_hash.as_str());
        let password_ok = self.passwords.verify(password, hash).await;
        let user = match user {
            Some(user) if password_ok && user.is_active => user,
            // The attempt was counted before the check: a failure needs nothing more.
            _ => return Err(AuthError::InvalidCredentials),
        };
        if limiting && let Some((username_key, others)) = keys.split_first() {
            self.store
                .forget_login_attempt(username_key, others)
                .await?;
        }
        self.start_session(&user.id, requester).await
    }

    /// Starts a session for a user without checking a password: for tools that load sessions in
    /// bulk (the benchmark), never reachable over HTTP.
    pub async fn start_session(
        &self,
        user_id: &UserId,
        requester: &Requester,
    ) -> Result<IssuedTokens, AuthError> {
        let now = now_ms();
        let iat = now / 1000;
        let sid = SessionId::new_random();
        let end = self.policy.session_max_lifetime.map(|max| iat + max);
        let next = self.successor(iat, end);
        self.store
            .create_session(&NewSession {
                user_id: user_id.clone(),
                sid: sid.clone(),
                client: requester.info(),
                refresh_jti: next.refresh_jti.clone(),
                refresh_exp: next.refresh_exp,
                now_ms: now,
                end,
                leeway: self.policy.leeway,
            })
            .await?;
        self.mint(user_id, &sid, &next, iat)
    }

    /// Fresh claims for a new pair issued at `iat`, never outliving the session's end.
    fn successor(&self, iat: u64, end: Option<u64>) -> Successor {
        let cap = |exp: u64| end.map_or(exp, |end| exp.min(end));
        Successor {
            refresh_jti: Jti::new_random(),
            access_jti: Jti::new_random(),
            iat,
            refresh_exp: cap(iat + self.policy.refresh_lifetime),
            access_exp: cap(iat + self.policy.access_lifetime),
        }
    }

    fn mint(
        &self,
        user_id: &UserId,
        sid: &SessionId,
        next: &Successor,
        now_s: u64,
    ) -> Result<IssuedTokens, AuthError> {
        let claims = |token_type, jti: &Jti, exp| Claims {
            token_type,
            user_id: user_id.clone(),
            jti: jti.clone(),
            iat: next.iat,
            exp,
            sid: Some(sid.clone()),
        };
        let sign = |c: &Claims| {
            self.codec
                .encode(c)
                .map_err(|e| AuthError::Internal(e.to_string()))
        };
        Ok(IssuedTokens {
            access: sign(&claims(
                TokenType::Access,
                &next.access_jti,
                next.access_exp,
            ))?,
            access_max_age: next.access_exp.saturating_sub(now_s),
            refresh: sign(&claims(
                TokenType::Refresh,
                &next.refresh_jti,
                next.refresh_exp,
            ))?,
            refresh_max_age: next.refresh_exp.saturating_sub(now_s),
        })
    }

    fn decode_refresh(&self, token: &str) -> Result<Claims, AuthError> {
        self.codec
            .decode(token, TokenType::Refresh)
            .map_err(|e: TokenError| {
                log::debug!("refresh token refused: {e}");
                AuthError::InvalidRefreshToken
            })
    }

    /// Verifies a refresh token and lets the store decide, atomically, whether this request
    /// rotates it, replays a rotation that just happened, or has caught a reused token.
    pub async fn refresh(
        &self,
        token: &str,
        requester: &Requester,
    ) -> Result<Refreshed, AuthError> {
        let claims = self.decode_refresh(token)?;
        let now = now_ms();
        let iat = now / 1000;
        let sid = claims.session_id();
        let request = RefreshRequest {
            user_id: claims.user_id.clone(),
            sid: sid.clone(),
            adopt: claims.sid.is_none(),
            adopt_end: self.policy.session_max_lifetime.map(|max| claims.iat + max),
            jti: claims.jti.clone(),
            jti_exp: claims.exp,
            now_ms: now,
            rotate: self.policy.rotate,
            blacklist: self.policy.blacklist,
            reuse_interval_ms: self.policy.reuse_interval_ms,
            leeway: self.policy.leeway,
            next: self.successor(iat, None),
            client: requester.info(),
        };
        let (kind, next) = match self.store.refresh(&request).await? {
            RefreshOutcome::Rotated(next) => (RefreshKind::Rotated, next),
            RefreshOutcome::GraceReplay(next) => (RefreshKind::GraceReplay, next),
            RefreshOutcome::Kept(next) => (RefreshKind::Kept, next),
            RefreshOutcome::Invalid => return Err(AuthError::InvalidRefreshToken),
            RefreshOutcome::Revoked => return Err(AuthError::BlacklistedToken),
            RefreshOutcome::ReuseRevoked => {
                log::warn!(
                    "refresh token reuse detected: session {sid} of user {} revoked",
                    claims.user_id
                );
                return Err(AuthError::RefreshTokenReused);
            }
            RefreshOutcome::UserMissing | RefreshOutcome::UserInactive => {
                return Err(AuthError::InvalidTokenUser);
            }
        };
        let mut tokens = self.mint(&claims.user_id, &sid, &next, iat)?;
        if kind == RefreshKind::Kept {
            // The refresh token stays the very string the client holds.
            tokens.refresh = token.to_owned();
        }
        Ok(Refreshed { kind, tokens })
    }

    /// Revokes the session of a refresh token. A missing, invalid or expired token has nothing
    /// left to revoke, so that is not an error: logout is idempotent.
    pub async fn logout(&self, token: Option<&str>) -> Result<(), AuthError> {
        match token.map(|t| self.decode_refresh(t)) {
            Some(Ok(claims)) => self.revoke(&claims).await,
            _ => Ok(()),
        }
    }

    /// "Log out everywhere": ends every session of the refresh token's user. Like logout, a
    /// missing or invalid token has nothing to end. Neither has a token of a revoked session: a
    /// stolen copy that reuse detection already cut off must not keep logging its victim out of
    /// every device for the rest of its life. A token of a live session counts even when it has
    /// just been rotated out (a client that lost the answer to its last refresh).
    pub async fn logout_all(&self, token: Option<&str>) -> Result<(), AuthError> {
        let Some(Ok(claims)) = token.map(|t| self.decode_refresh(t)) else {
            return Ok(());
        };
        let session_check = TokenCheck {
            refresh_jti: None,
            ..token_check(&claims)
        };
        if let CheckOutcome::Revoked = self.store.check_token(&session_check).await? {
            return Ok(());
        }
        // The presented token's own session first: a token minted elsewhere may have none yet.
        self.revoke(&claims).await?;
        self.store.end_all_sessions(&claims.user_id).await?;
        Ok(())
    }

    /// SimpleJWT's blacklist: like logout, but a token that is invalid or already blacklisted
    /// is an error.
    pub async fn blacklist(&self, token: &str) -> Result<(), AuthError> {
        let claims = self.decode_refresh(token)?;
        match self.store.check_token(&token_check(&claims)).await? {
            CheckOutcome::Revoked => Err(AuthError::BlacklistedToken),
            _ => self.revoke(&claims).await,
        }
    }

    async fn revoke(&self, claims: &Claims) -> Result<(), AuthError> {
        self.store
            .revoke(&RevokeRequest {
                user_id: claims.user_id.clone(),
                sid: claims.session_id(),
                adopt: claims.sid.is_none(),
                jti: claims.jti.clone(),
                jti_exp: claims.exp,
                now_ms: now_ms(),
                leeway: self.policy.leeway,
            })
            .await?;
        Ok(())
    }

    /// The user behind an access token, refused at once if the session was revoked or the user
    /// deactivated.
    pub async fn authenticate(&self, token: Option<&str>) -> Result<User, AuthError> {
        self.authenticate_session(token).await.map(|(user, _)| user)
    }

    /// Like `authenticate`, with the session the token belongs to.
    pub async fn authenticate_session(
        &self,
        token: Option<&str>,
    ) -> Result<(User, SessionId), AuthError> {
        let token = token.ok_or(AuthError::MissingAccessToken)?;
        let claims = self.codec.decode(token, TokenType::Access).map_err(|e| {
            log::debug!("access token refused: {e}");
            AuthError::InvalidAccessToken
        })?;
        match self.store.check_token(&token_check(&claims)).await? {
            CheckOutcome::Ok(user) => Ok((user, claims.session_id())),
            _ => Err(AuthError::InvalidAccessToken),
        }
    }

    pub async fn sessions(&self, user: &User) -> Result<Vec<SessionInfo>, AuthError> {
        Ok(self.store.list_sessions(&user.id).await?)
    }

    /// Ends one of the user's own sessions; false when the user has no such live session.
    pub async fn end_session(&self, user: &User, sid: &SessionId) -> Result<bool, AuthError> {
        Ok(self.store.end_session(&user.id, sid).await?)
    }

    /// SimpleJWT's verify: a token of either type that is valid, not blacklisted, of a live
    /// session and an active user.
    pub async fn verify(&self, token: &str) -> Result<(), AuthError> {
        let claims = self.codec.decode_any(token).map_err(|e| {
            log::debug!("token refused: {e}");
            AuthError::InvalidRefreshToken
        })?;
        match self.store.check_token(&token_check(&claims)).await? {
            CheckOutcome::Ok(_) => Ok(()),
            CheckOutcome::Revoked => Err(AuthError::BlacklistedToken),
            CheckOutcome::UserMissing | CheckOutcome::UserInactive => {
                Err(AuthError::InvalidTokenUser)
            }
        }
    }
}

/// What the store must confirm about a verified token. A token minted elsewhere has no `sid`:
/// its session exists only once its first refresh here has started one.
fn token_check(claims: &Claims) -> TokenCheck {
    TokenCheck {
        user_id: claims.user_id.clone(),
        sid: claims.session_id(),
        session_required: claims.sid.is_some(),
        refresh_jti: (claims.token_type == TokenType::Refresh).then(|| claims.jti.clone()),
    }
}

/// Makes a user record with a fresh argon2id hash; `id` defaults to a random UUID.
pub fn new_user(username: Username, password: &str, id: Option<UserId>) -> User {
    User {
        id: id.unwrap_or_else(UserId::new_random),
        username,
        password_hash: passwords::hash_password(password),
        is_active: true,
    }
}

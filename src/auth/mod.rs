//! The flows: login, refresh (rotation, reuse interval, reuse detection), logout and access-token
//! authentication. Both HTTP skins call these; nothing here knows about HTTP. Depends on
//! `tokens`, `store`, `domain` and `config` only.

pub mod import;
pub mod passwords;
pub mod status;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::SessionSettings;
use crate::domain::{Claims, Jti, SessionId, TokenType, User, UserId, Username};
use crate::store::{
    AnswerKind, CheckOutcome, ClientInfo, LimitKey, NewSession, RefreshClaims, RefreshOutcome,
    RefreshRequest, RevokeOutcome, RevokeRequest, RotationPolicy, Store, StoreError, TokenCheck,
};
use crate::tokens::{TokenCodec, TokenError, Untyped};

use self::passwords::Passwords;

pub use self::status::Unready;
/// One of a user's live sessions, as listed to that user.
pub use crate::store::SessionInfo;

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
    /// False for a session started with "remember me" off: its cookies are browser-session
    /// cookies (no Max-Age), after every refresh too.
    pub persistent: bool,
}

impl std::fmt::Debug for IssuedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedTokens")
            .field("access_max_age", &self.access_max_age)
            .field("refresh_max_age", &self.refresh_max_age)
            .field("persistent", &self.persistent)
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

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refreshed {
    /// How the store answered (for metrics and logs).
    pub kind: AnswerKind,
    pub tokens: IssuedTokens,
}

impl Refreshed {
    /// False with rotation off: the refresh token is the one presented.
    pub fn rotated(&self) -> bool {
        self.kind != AnswerKind::Kept
    }

    /// Answered with a token issued before: a lost response, a race, a slow tab.
    pub fn replayed(&self) -> bool {
        matches!(self.kind, AnswerKind::Repeated | AnswerKind::Forgiven)
    }
}

pub struct AuthService {
    codec: TokenCodec,
    store: Arc<dyn Store>,
    passwords: Passwords,
    sessions: SessionSettings,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl AuthService {
    pub fn new(sessions: &SessionSettings, codec: TokenCodec, store: Arc<dyn Store>) -> Self {
        Self {
            codec,
            store,
            passwords: Passwords::new(),
            sessions: sessions.clone(),
        }
    }

    /// The rules the flows follow (lifetimes, rotation, limits).
    pub fn settings(&self) -> &SessionSettings {
        &self.sessions
    }

    /// The settings of SPEC 4 in the store's terms.
    fn rotation(&self) -> RotationPolicy {
        let s = &self.sessions;
        RotationPolicy {
            rotate: s.rotate_refresh_tokens,
            blacklist: s.blacklist_after_rotation,
            reuse_interval_ms: s.reuse_interval.as_millis() as u64,
            idle_timeout_ms: self.idle_timeout_ms(),
            adopt_foreign: s.adopt_foreign_tokens,
            leeway: self.codec.leeway(),
        }
    }

    fn idle_timeout_ms(&self) -> Option<u64> {
        self.sessions.idle_timeout.map(|d| d.as_millis() as u64)
    }

    /// SESSION_MAX_LIFETIME in seconds.
    fn max_lifetime(&self) -> Option<u64> {
        self.sessions.max_lifetime.map(|d| d.as_secs())
    }

    /// How many password verifications logins have run.
    pub fn password_checks(&self) -> u64 {
        self.passwords.checks()
    }

    /// Checks the credentials and starts a session. An unknown user, a wrong password and an
    /// inactive user all cost one password verification, take as long, and give the same error.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        remember: bool,
        requester: &Requester,
    ) -> Result<IssuedTokens, AuthError> {
        let name = Username::parse(username);
        let mut keys = Vec::with_capacity(2);
        if let Some(name) = &name {
            keys.push(LimitKey::Username(name.as_str().to_owned()));
        }
        if let Some(addr) = requester.addr {
            keys.push(LimitKey::Addr(crate::domain::login_limit_addr(addr)));
        }
        let limits = &self.sessions;
        let limiting = limits.login_max_failures > 0 && !keys.is_empty();
        if limiting
            && let Some(retry_after) = self
                .store
                .count_login_attempt(
                    &keys,
                    limits.login_max_failures,
                    limits.login_failure_window,
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
        let rehash = user.as_ref().is_some_and(|u| u.is_active);
        let verdict = self.passwords.check(password, hash, rehash).await;
        let user = match user {
            Some(user) if verdict.ok && user.is_active => user,
            // The attempt was counted before the check: a failure needs nothing more.
            _ => return Err(AuthError::InvalidCredentials),
        };
        if let Some(new_hash) = &verdict.rehashed {
            // An imported hash (Django's) is replaced by refreshd's own at the first login. Only
            // if it is still the one just checked: a `user passwd` in between wins.
            match self
                .store
                .replace_password_hash(&user.id, &user.password_hash, new_hash)
                .await
            {
                Ok(true) => log::info!("user {}: password hash upgraded to argon2id", user.id),
                Ok(false) => {}
                Err(e) => log::warn!("user {}: password hash not upgraded: {e}", user.id),
            }
        }
        if limiting && let Some((username_key, others)) = keys.split_first() {
            self.store
                .forget_login_attempt(username_key, others)
                .await?;
        }
        self.start_session(&user.id, remember, requester).await
    }

    /// Starts a session for a user without checking a password: for tools that load sessions in
    /// bulk (the benchmark), never reachable over HTTP.
    pub async fn start_session(
        &self,
        user_id: &UserId,
        remember: bool,
        requester: &Requester,
    ) -> Result<IssuedTokens, AuthError> {
        let now = now_ms() / 1000;
        let sid = SessionId::new_random();
        let end = self.max_lifetime().map(|max| now + max);
        let refresh = self.successor(now, end);
        self.store
            .create_session(&NewSession {
                user_id: user_id.clone(),
                sid: sid.clone(),
                client: requester.info(),
                refresh: refresh.clone(),
                end,
                remember,
                leeway: self.codec.leeway(),
            })
            .await?;
        let refresh_max_age = refresh.exp.saturating_sub(now);
        let mut claims = Claims {
            token_type: TokenType::Refresh,
            user_id: user_id.clone(),
            jti: refresh.jti,
            iat: refresh.iat,
            exp: refresh.exp,
            sid: Some(sid),
            extra: serde_json::Map::new(),
        };
        Ok(IssuedTokens {
            refresh: self.sign(&claims)?,
            refresh_max_age,
            ..self.mint_access(&mut claims, end, remember, now)?
        })
    }

    /// Claims for a new refresh token issued at `iat`, never outliving the session's end.
    fn successor(&self, iat: u64, end: Option<u64>) -> RefreshClaims {
        let exp = iat + self.sessions.refresh_lifetime.as_secs();
        RefreshClaims {
            jti: Jti::new_random(),
            iat,
            exp: end.map_or(exp, |end| exp.min(end)),
        }
    }

    fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        self.codec
            .encode(claims)
            .map_err(|e| AuthError::Internal(e.to_string()))
    }

    /// Signs a refresh token the store described, for the session `claims` carries (its user,
    /// `sid` and copied claims, reused rather than copied): the same claims always give the
    /// same string.
    fn sign_refresh(&self, claims: &mut Claims, r: RefreshClaims) -> Result<String, AuthError> {
        claims.token_type = TokenType::Refresh;
        claims.jti = r.jti;
        claims.iat = r.iat;
        claims.exp = r.exp;
        self.sign(claims)
    }

    /// A freshly issued access token for the session `claims` carries (new jti, `exp` now plus
    /// the access lifetime, never past the session's `end`), with the refresh fields left for
    /// the caller to fill.
    fn mint_access(
        &self,
        claims: &mut Claims,
        end: Option<u64>,
        remember: bool,
        now: u64,
    ) -> Result<IssuedTokens, AuthError> {
        let exp = now + self.sessions.access_lifetime.as_secs();
        claims.token_type = TokenType::Access;
        claims.jti = Jti::new_random();
        claims.iat = now;
        claims.exp = end.map_or(exp, |end| exp.min(end));
        Ok(IssuedTokens {
            access: self.sign(claims)?,
            access_max_age: claims.exp.saturating_sub(now),
            refresh: String::new(),
            refresh_max_age: 0,
            persistent: remember,
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

    /// Verifies a refresh token and lets the store decide, atomically, by the state table of
    /// SPEC 4 (and `store/mod.rs`): issue or repeat the pending successor, promote it, forgive a
    /// recently retired token, or catch a reused one.
    pub async fn refresh(
        &self,
        token: &str,
        requester: &Requester,
    ) -> Result<Refreshed, AuthError> {
        let mut claims = self.decode_refresh(token)?;
        let now = now_ms() / 1000;
        let sid = claims.session_id();
        let request = RefreshRequest {
            user_id: claims.user_id.clone(),
            sid: sid.clone(),
            foreign: claims.sid.is_none(),
            adopt_end: self.max_lifetime().map(|max| claims.iat + max),
            presented: presented(&claims),
            policy: self.rotation(),
            successor: self.successor(now, None),
            client: requester.info(),
        };
        let answer = match self.store.refresh(&request).await? {
            RefreshOutcome::Ok(answer) => answer,
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
        // The presented token's own claims go on, as SimpleJWT copies them. A repeated or
        // forgiven answer re-signs a token the store describes by jti, iat and exp only: its other
        // claims are the family's, which every rotation copied, so it is the very same string.
        claims.sid = Some(sid);
        let refresh_max_age = answer.refresh.exp.saturating_sub(now);
        let refresh = if answer.kind == AnswerKind::Kept {
            // The refresh token stays the very string the client holds.
            token.to_owned()
        } else {
            self.sign_refresh(&mut claims, answer.refresh)?
        };
        Ok(Refreshed {
            kind: answer.kind,
            tokens: IssuedTokens {
                refresh,
                refresh_max_age,
                ..self.mint_access(&mut claims, answer.end, answer.remember, now)?
            },
        })
    }

    /// Revokes the session of a refresh token. A missing, invalid or expired token has nothing
    /// left to revoke, so that is not an error: logout is idempotent.
    pub async fn logout(&self, token: Option<&str>) -> Result<(), AuthError> {
        match token.map(|t| self.decode_refresh(t)) {
            Some(Ok(claims)) => self.revoke(&claims, false).await.map(|_| ()),
            _ => Ok(()),
        }
    }

    /// "Log out everywhere": ends every session of the refresh token's user, but only for a live
    /// token (current, pending, or retired within its reuse interval). A token retired longer
    /// ago is reuse: its own session ends and no other, so a stolen old copy cannot log its
    /// victim out of every device. Like logout, a missing or invalid token has nothing to end.
    pub async fn logout_all(&self, token: Option<&str>) -> Result<(), AuthError> {
        let Some(Ok(claims)) = token.map(|t| self.decode_refresh(t)) else {
            return Ok(());
        };
        if self.revoke(&claims, true).await? == RevokeOutcome::ReuseRevoked {
            log::warn!(
                "log out everywhere with a retired refresh token: session {} of user {} revoked",
                claims.session_id(),
                claims.user_id
            );
        }
        Ok(())
    }

    /// SimpleJWT's blacklist: like logout, but a token that is invalid or already blacklisted
    /// is an error.
    pub async fn blacklist(&self, token: &str) -> Result<(), AuthError> {
        let claims = self.decode_refresh(token)?;
        match self.store.check_token(&self.token_check(&claims)).await? {
            CheckOutcome::Revoked => Err(AuthError::BlacklistedToken),
            _ => self.revoke(&claims, false).await.map(|_| ()),
        }
    }

    async fn revoke(&self, claims: &Claims, all: bool) -> Result<RevokeOutcome, AuthError> {
        Ok(self
            .store
            .revoke(&RevokeRequest {
                user_id: claims.user_id.clone(),
                sid: claims.session_id(),
                foreign: claims.sid.is_none(),
                presented: presented(claims),
                all,
                policy: self.rotation(),
            })
            .await?)
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
        match self.store.check_token(&self.token_check(&claims)).await? {
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

    /// SimpleJWT's verify (`UntypedToken`): a token of any type whose signature and times hold,
    /// not blacklisted, of a live session (for a token minted here) and of an active user.
    pub async fn verify(&self, token: &str) -> Result<(), AuthError> {
        let token = self.codec.decode_untyped(token).map_err(|e| {
            log::debug!("token refused: {e}");
            AuthError::InvalidRefreshToken
        })?;
        let check = match token {
            Untyped::Typed(claims) => self.token_check(&claims),
            // Nothing names a user: nothing more to check, as SimpleJWT checks nothing more.
            Untyped::Other { user_id: None, .. } => return Ok(()),
            // A token of another type was never minted here: it has no session, and stands
            // while its user is active and it was issued after the user's cut-off.
            Untyped::Other {
                user_id: Some(user_id),
                jti,
                iat,
            } => TokenCheck {
                user_id,
                sid: jti
                    .map(SessionId::from)
                    .unwrap_or_else(SessionId::new_random),
                session_required: false,
                iat,
                refresh_jti: None,
                idle_timeout_ms: self.idle_timeout_ms(),
            },
        };
        match self.store.check_token(&check).await? {
            CheckOutcome::Ok(_) => Ok(()),
            CheckOutcome::Revoked => Err(AuthError::BlacklistedToken),
            CheckOutcome::UserMissing | CheckOutcome::UserInactive => {
                Err(AuthError::InvalidTokenUser)
            }
        }
    }
}

/// The presented refresh token, as the store tracks it.
fn presented(claims: &Claims) -> RefreshClaims {
    RefreshClaims {
        jti: claims.jti.clone(),
        iat: claims.iat,
        exp: claims.exp,
    }
}

impl AuthService {
    /// What the store must confirm about a verified token. A token minted elsewhere has no
    /// `sid`: its session exists only once its first refresh here has started one.
    fn token_check(&self, claims: &Claims) -> TokenCheck {
        TokenCheck {
            user_id: claims.user_id.clone(),
            sid: claims.session_id(),
            session_required: claims.sid.is_some(),
            iat: claims.iat,
            // With blacklisting off, a retired refresh token stands until it expires (SimpleJWT's
            // BLACKLIST_AFTER_ROTATION=False).
            refresh_jti: (claims.token_type == TokenType::Refresh
                && self.sessions.blacklist_after_rotation)
                .then(|| claims.jti.clone()),
            idle_timeout_ms: self.idle_timeout_ms(),
        }
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

//! The in-process store: everything in one mutex-guarded map, for running with no set-up. It
//! follows the state table in `store/mod.rs` step for step, as `lua/refresh.lua` does; the
//! contract tests run the same scenarios against both. Entries carry their own expiry and a sweep
//! removes the dead ones, so nothing grows without bound. Time comes from the store's `Clock`.
//! State is lost when the process stops and is not shared between instances.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::Imported;
use super::{
    AnswerKind, CheckOutcome, ClientInfo, Clock, LimitKey, LoginLimits, NewSession, RefreshAnswer,
    RefreshClaims, RefreshOutcome, RefreshRequest, RevokeOutcome, RevokeRequest, SessionInfo,
    SessionStore, Store, StoreError, SystemClock, TokenCheck, UserStore,
};
use crate::domain::{Jti, SessionId, User, UserId, Username};

/// How often, at most, a write sweeps out expired entries.
const SWEEP_EVERY_MS: u64 = 1_000;

struct SessionRec {
    current: Jti,
    pending: Option<RefreshClaims>,
    /// Tokens retired while their reuse interval runs, and when (ms).
    retired: Vec<(Jti, u64)>,
    end: Option<u64>,
    remember: bool,
    revoked: bool,
    /// Milliseconds since the epoch after which the record is gone.
    keep_until_ms: u64,
    created_ms: u64,
    last_ms: Option<u64>,
    client: ClientInfo,
}

impl SessionRec {
    fn new(current: &RefreshClaims, end: Option<u64>, now_ms: u64, leeway: u64) -> Self {
        Self {
            current: current.jti.clone(),
            pending: None,
            retired: Vec::new(),
            end,
            remember: true,
            revoked: false,
            keep_until_ms: keep_ms(current.exp, leeway),
            created_ms: now_ms,
            last_ms: None,
            client: ClientInfo::default(),
        }
    }

    fn revoke(&mut self) {
        self.revoked = true;
        self.pending = None;
    }

    /// When `jti` was retired (ms), while its reuse interval runs.
    fn retired_at(&self, jti: &Jti) -> Option<u64> {
        self.retired
            .iter()
            .find(|(j, _)| j == jti)
            .map(|(_, at)| *at)
    }

    /// Whether `jti` is one of the session's live tokens (its current or pending one).
    fn holds(&self, jti: &Jti) -> bool {
        self.current == *jti || self.pending.as_ref().is_some_and(|p| p.jti == *jti)
    }

    /// Idle past the timeout: not refreshed (nor started) for that long.
    fn idle(&self, now_ms: u64, idle_timeout_ms: Option<u64>) -> bool {
        idle_timeout_ms.is_some_and(|idle| now_ms >= self.last_ms.unwrap_or(self.created_ms) + idle)
    }
}

/// When the entries of a token that expires at `exp` (s) may go, in ms.
fn keep_ms(exp: u64, leeway: u64) -> u64 {
    exp.saturating_add(leeway).saturating_mul(1000)
}

#[derive(Default)]
struct UserRec {
    user: Option<User>,
    /// Tokens issued at or before this second (minted elsewhere) are refused: set by
    /// deactivation, a new password and deletion (it outlives the user).
    cutoff_s: u64,
    /// The hash this id last imported (`user import`).
    imported_hash: Option<String>,
}

#[derive(Default)]
struct Inner {
    users: HashMap<UserId, UserRec>,
    by_name: HashMap<String, UserId>,
    sessions: HashMap<(UserId, SessionId), SessionRec>,
    /// Each user's live sessions.
    by_user: HashMap<UserId, BTreeSet<SessionId>>,
    /// Login-failure counters: count and end of window (ms).
    failures: HashMap<String, (u32, u64)>,
    last_sweep_ms: u64,
}

impl Inner {
    fn sweep(&mut self, now_ms: u64) {
        if now_ms < self.last_sweep_ms + SWEEP_EVERY_MS {
            return;
        }
        self.last_sweep_ms = now_ms;
        self.sessions.retain(|_, s| s.keep_until_ms > now_ms);
        let sessions = &self.sessions;
        self.by_user.retain(|user, sids| {
            sids.retain(|sid| {
                sessions
                    .get(&(user.clone(), sid.clone()))
                    .is_some_and(|s| !s.revoked)
            });
            !sids.is_empty()
        });
        self.failures.retain(|_, (_, until)| *until > now_ms);
    }

    fn user(&self, id: &UserId) -> Option<&User> {
        self.users.get(id).and_then(|r| r.user.as_ref())
    }

    fn cutoff_s(&self, id: &UserId) -> u64 {
        self.users.get(id).map_or(0, |r| r.cutoff_s)
    }

    fn session(&mut self, key: &(UserId, SessionId), now_ms: u64) -> Option<&mut SessionRec> {
        self.sessions
            .get_mut(key)
            .filter(|s| s.keep_until_ms > now_ms)
    }

    fn insert_session(&mut self, key: (UserId, SessionId), rec: SessionRec) {
        self.by_user
            .entry(key.0.clone())
            .or_default()
            .insert(key.1.clone());
        self.sessions.insert(key, rec);
    }

    fn unindex(&mut self, user: &UserId, sid: &SessionId) {
        if let Some(sids) = self.by_user.get_mut(user) {
            sids.remove(sid);
        }
    }

    fn end_all(&mut self, user_id: &UserId, now_ms: u64) -> usize {
        let sids = self.by_user.remove(user_id).unwrap_or_default();
        let mut ended = 0;
        for sid in sids {
            if let Some(s) = self.session(&(user_id.clone(), sid), now_ms)
                && !s.revoked
            {
                s.revoke();
                ended += 1;
            }
        }
        ended
    }
}

pub struct MemoryStore {
    inner: Mutex<Inner>,
    clock: Arc<dyn Clock>,
    epoch_s: u64,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// A store that reads `clock`: tests pass a `ManualClock` to step through time.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        let epoch_s = clock.now_ms() / 1000;
        Self {
            inner: Mutex::new(Inner::default()),
            clock,
            epoch_s,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-made change: every change below is
        // made after all its checks. So a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn add_user(&self, user: &User) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.by_name.contains_key(user.username.as_str()) {
            return Err(StoreError::UsernameTaken);
        }
        if inner.user(&user.id).is_some() {
            return Err(StoreError::IdTaken);
        }
        inner
            .by_name
            .insert(user.username.as_str().to_owned(), user.id.clone());
        inner.users.entry(user.id.clone()).or_default().user = Some(user.clone());
        Ok(())
    }

    async fn user_by_username(&self, username: &Username) -> Result<Option<User>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .by_name
            .get(username.as_str())
            .and_then(|id| inner.user(id))
            .cloned())
    }

    async fn set_user_active(&self, username: &Username, active: bool) -> Result<bool, StoreError> {
        let now = self.now_ms();
        let mut inner = self.lock();
        let Some(id) = inner.by_name.get(username.as_str()).cloned() else {
            return Ok(false);
        };
        let Some(rec) = inner.users.get_mut(&id) else {
            return Ok(false);
        };
        let Some(user) = rec.user.as_mut() else {
            return Ok(false);
        };
        user.is_active = active;
        if !active {
            rec.cutoff_s = now / 1000;
            inner.end_all(&id, now);
        }
        Ok(true)
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let mut users: Vec<User> = self
            .lock()
            .users
            .values()
            .filter_map(|r| r.user.clone())
            .collect();
        users.sort_by(|a, b| a.username.as_str().cmp(b.username.as_str()));
        Ok(users)
    }

    async fn import_user(&self, user: &User) -> Result<Imported, StoreError> {
        let now = self.now_ms();
        let mut inner = self.lock();
        if inner
            .by_name
            .get(user.username.as_str())
            .is_some_and(|id| *id != user.id)
        {
            return Err(StoreError::UsernameTaken);
        }
        let rec = inner.users.entry(user.id.clone()).or_default();
        let old = rec.user.clone();
        let mut new = user.clone();
        if let Some(old) = &old
            && rec.imported_hash.as_deref() == Some(user.password_hash.as_str())
        {
            new.password_hash = old.password_hash.clone();
        }
        rec.imported_hash = Some(user.password_hash.clone());
        rec.user = Some(new);
        let deactivated = old.as_ref().is_some_and(|o| o.is_active) && !user.is_active;
        if deactivated {
            rec.cutoff_s = now / 1000;
            inner.end_all(&user.id, now);
        }
        if let Some(old) = &old {
            inner.by_name.remove(old.username.as_str());
        }
        inner
            .by_name
            .insert(user.username.as_str().to_owned(), user.id.clone());
        Ok(if old.is_some() {
            Imported::Updated
        } else {
            Imported::Created
        })
    }

    async fn set_password(
        &self,
        username: &Username,
        password_hash: &str,
    ) -> Result<Option<usize>, StoreError> {
        let now = self.now_ms();
        let mut inner = self.lock();
        let Some(id) = inner.by_name.get(username.as_str()).cloned() else {
            return Ok(None);
        };
        let Some(rec) = inner.users.get_mut(&id) else {
            return Ok(None);
        };
        let Some(user) = rec.user.as_mut() else {
            return Ok(None);
        };
        user.password_hash = password_hash.to_owned();
        rec.cutoff_s = now / 1000;
        Ok(Some(inner.end_all(&id, now)))
    }

    async fn delete_user(&self, username: &Username) -> Result<Option<usize>, StoreError> {
        let now = self.now_ms();
        let mut inner = self.lock();
        let Some(id) = inner.by_name.remove(username.as_str()) else {
            return Ok(None);
        };
        let Some(rec) = inner.users.get_mut(&id) else {
            return Ok(None);
        };
        rec.user = None;
        rec.imported_hash = None;
        rec.cutoff_s = now / 1000;
        Ok(Some(inner.end_all(&id, now)))
    }

    async fn replace_password_hash(
        &self,
        id: &UserId,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        match inner.users.get_mut(id).and_then(|r| r.user.as_mut()) {
            Some(user) if user.password_hash == old => {
                user.password_hash = new.to_owned();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn epoch(&self) -> Result<u64, StoreError> {
        Ok(self.epoch_s)
    }

    async fn create_session(&self, s: &NewSession) -> Result<(), StoreError> {
        let now = self.now_ms();
        let mut inner = self.lock();
        inner.sweep(now);
        let mut rec = SessionRec::new(&s.refresh, s.end, now, s.leeway);
        rec.remember = s.remember;
        rec.client = s.client.clone();
        if !inner.user(&s.user_id).is_some_and(|u| u.is_active) {
            // The user was deactivated or deleted since the login checked it: the session is
            // born ended, so that a re-activation does not bring it back.
            rec.revoke();
        }
        inner.insert_session((s.user_id.clone(), s.sid.clone()), rec);
        Ok(())
    }

    async fn refresh(&self, r: &RefreshRequest) -> Result<RefreshOutcome, StoreError> {
        let now = self.now_ms();
        let p = &r.policy;
        let mut inner = self.lock();
        inner.sweep(now);
        match inner.user(&r.user_id).map(|u| u.is_active) {
            None => return Ok(RefreshOutcome::UserMissing),
            Some(false) => return Ok(RefreshOutcome::UserInactive),
            Some(true) => {}
        }
        if r.foreign
            && (r.presented.iat < self.epoch_s || r.presented.iat <= inner.cutoff_s(&r.user_id))
        {
            return Ok(RefreshOutcome::Invalid);
        }
        let key = (r.user_id.clone(), r.sid.clone());
        if inner.session(&key, now).is_none() {
            if !r.foreign || !p.adopt_foreign {
                return Ok(RefreshOutcome::Invalid);
            }
            let mut rec = SessionRec::new(&r.presented, r.adopt_end, now, p.leeway);
            rec.client = r.client.clone();
            inner.insert_session(key.clone(), rec);
        }
        let session = inner.sessions.get_mut(&key).expect("present or just made");
        if session.revoked {
            return Ok(RefreshOutcome::Revoked);
        }
        if session.idle(now, p.idle_timeout_ms) {
            session.revoke();
            inner.unindex(&r.user_id, &r.sid);
            return Ok(RefreshOutcome::Invalid);
        }
        if session.end.is_some_and(|end| now / 1000 >= end) {
            return Ok(RefreshOutcome::Invalid);
        }
        let is_current = r.presented.jti == session.current;
        let is_pending = session
            .pending
            .as_ref()
            .is_some_and(|n| n.jti == r.presented.jti);
        let forgiven = !is_current
            && !is_pending
            && (!p.blacklist
                || session
                    .retired_at(&r.presented.jti)
                    .is_some_and(|at| now < at.saturating_add(p.reuse_interval_ms)));
        if !is_current && !is_pending && !forgiven {
            // A retired token came back too late, or a token its session never issued: someone
            // holds a copy. End the family.
            session.revoke();
            inner.unindex(&r.user_id, &r.sid);
            return Ok(RefreshOutcome::ReuseRevoked);
        }
        session.last_ms = Some(now);
        // Past its interval, a retired token is as unknown to its session as one never issued.
        session
            .retired
            .retain(|(_, at)| now < at.saturating_add(p.reuse_interval_ms));
        let answer = |kind, refresh: RefreshClaims, s: &SessionRec| {
            Ok(RefreshOutcome::Ok(RefreshAnswer {
                kind,
                refresh,
                end: s.end,
                remember: s.remember,
            }))
        };
        if !p.rotate {
            return answer(AnswerKind::Kept, r.presented.clone(), session);
        }
        let capped = RefreshClaims {
            exp: session
                .end
                .map_or(r.successor.exp, |end| r.successor.exp.min(end)),
            ..r.successor.clone()
        };
        let kind = if is_pending {
            let promoted = session.pending.take().expect("pending");
            let parent = std::mem::replace(&mut session.current, promoted.jti);
            if p.blacklist {
                session.retired.push((parent, now));
            }
            session.pending = Some(capped);
            AnswerKind::Promoted
        } else if session.pending.is_some() {
            if is_current {
                AnswerKind::Repeated
            } else {
                AnswerKind::Forgiven
            }
        } else {
            session.pending = Some(capped);
            if is_current {
                AnswerKind::Issued
            } else {
                AnswerKind::Forgiven
            }
        };
        let newest = session.pending.clone().expect("a pending token");
        session.keep_until_ms = session.keep_until_ms.max(keep_ms(newest.exp, p.leeway));
        answer(kind, newest, session)
    }

    async fn revoke(&self, r: &RevokeRequest) -> Result<RevokeOutcome, StoreError> {
        let now = self.now_ms();
        let p = &r.policy;
        let mut inner = self.lock();
        inner.sweep(now);
        let key = (r.user_id.clone(), r.sid.clone());
        let keep = keep_ms(r.presented.exp, p.leeway);
        let live = match inner.session(&key, now) {
            Some(s) if s.revoked => false,
            Some(s) => {
                s.holds(&r.presented.jti)
                    || !p.blacklist
                    || s.retired_at(&r.presented.jti)
                        .is_some_and(|at| now < at.saturating_add(p.reuse_interval_ms))
            }
            // A token minted elsewhere and never refreshed here (a logout of it would have left
            // a revoked record).
            None => r.foreign && keep > now,
        };
        let outcome = match (r.all, live) {
            (true, true) => {
                inner.end_all(&r.user_id, now);
                RevokeOutcome::Revoked
            }
            (true, false) if inner.session(&key, now).is_some_and(|s| !s.revoked) => {
                RevokeOutcome::ReuseRevoked
            }
            (false, true) => RevokeOutcome::Revoked,
            _ => RevokeOutcome::Nothing,
        };
        match inner.session(&key, now) {
            Some(session) => session.revoke(),
            None if r.foreign && keep > now => {
                // So that the token cannot start a session later.
                let mut rec = SessionRec::new(&r.presented, None, now, p.leeway);
                rec.revoke();
                inner.sessions.insert(key, rec);
            }
            None => return Ok(outcome),
        }
        inner.unindex(&r.user_id, &r.sid);
        Ok(outcome)
    }

    async fn check_token(&self, c: &TokenCheck) -> Result<CheckOutcome, StoreError> {
        let now = self.now_ms();
        let mut inner = self.lock();
        let Some(user) = inner.user(&c.user_id).cloned() else {
            return Ok(CheckOutcome::UserMissing);
        };
        if !user.is_active {
            return Ok(CheckOutcome::UserInactive);
        }
        let cutoff = inner.cutoff_s(&c.user_id);
        let standing = match inner.session(&(c.user_id.clone(), c.sid.clone()), now) {
            Some(s) => {
                !s.revoked
                    && !s.idle(now, c.idle_timeout_ms)
                    && c.refresh_jti.as_ref().is_none_or(|jti| s.holds(jti))
            }
            None => !c.session_required && c.iat > cutoff,
        };
        if !standing {
            return Ok(CheckOutcome::Revoked);
        }
        Ok(CheckOutcome::Ok(user))
    }

    async fn list_sessions(&self, user_id: &UserId) -> Result<Vec<SessionInfo>, StoreError> {
        let now = self.now_ms();
        let inner = self.lock();
        let mut list: Vec<SessionInfo> = inner
            .by_user
            .get(user_id)
            .into_iter()
            .flatten()
            .filter_map(|sid| {
                let s = inner.sessions.get(&(user_id.clone(), sid.clone()))?;
                (!s.revoked && s.keep_until_ms > now).then(|| SessionInfo {
                    id: sid.clone(),
                    created_ms: s.created_ms,
                    last_refreshed_ms: s.last_ms,
                    user_agent: s.client.user_agent.clone(),
                    client_address: s.client.address.clone(),
                    ends_at: s.end,
                })
            })
            .collect();
        list.sort_by_key(|s| s.created_ms);
        Ok(list)
    }

    async fn end_session(&self, user_id: &UserId, sid: &SessionId) -> Result<bool, StoreError> {
        let now = self.now_ms();
        let mut inner = self.lock();
        let live = match inner.session(&(user_id.clone(), sid.clone()), now) {
            Some(s) if !s.revoked => {
                s.revoke();
                true
            }
            _ => false,
        };
        inner.unindex(user_id, sid);
        Ok(live)
    }

    async fn end_all_sessions(&self, user_id: &UserId) -> Result<usize, StoreError> {
        let now = self.now_ms();
        Ok(self.lock().end_all(user_id, now))
    }

    async fn session_footprint(&self, user_id: &UserId) -> Result<usize, StoreError> {
        let now = self.now_ms();
        let mut inner = self.lock();
        inner.last_sweep_ms = 0;
        inner.sweep(now);
        Ok(inner.sessions.keys().filter(|(u, _)| u == user_id).count()
            + usize::from(inner.by_user.contains_key(user_id)))
    }
}

#[async_trait]
impl LoginLimits for MemoryStore {
    async fn count_login_attempt(
        &self,
        keys: &[LimitKey],
        max: u32,
        window: Duration,
    ) -> Result<Option<Duration>, StoreError> {
        let now_ms = self.now_ms();
        let mut inner = self.lock();
        inner.sweep(now_ms);
        let mut wait = None;
        for key in keys {
            let entry = inner.failures.entry(key.as_key()).or_insert((0, 0));
            if entry.1 <= now_ms {
                *entry = (0, now_ms + window.as_millis() as u64);
            }
            entry.0 = entry.0.saturating_add(1);
            if entry.0 > max {
                wait = wait.max(Some(Duration::from_millis(entry.1 - now_ms)));
            }
        }
        Ok(wait)
    }

    async fn forget_login_attempt(
        &self,
        reset: &LimitKey,
        refund: &[LimitKey],
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.failures.remove(&reset.as_key());
        for key in refund {
            if let Some(entry) = inner.failures.get_mut(&key.as_key()) {
                entry.0 = entry.0.saturating_sub(1);
            }
        }
        Ok(())
    }
}

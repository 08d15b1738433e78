//! The in-process store: everything in one mutex-guarded map, for running with no set-up. It
//! follows the Redis store's rules step for step (see `lua/refresh.lua`); the contract tests run
//! against both. Entries carry their own expiry and a sweep removes the dead ones, so nothing
//! grows without bound. State is lost when the process stops and is not shared between instances.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use super::{
    CheckOutcome, ClientInfo, LimitKey, NewSession, RefreshOutcome, RefreshRequest, RevokeRequest,
    SessionInfo, Store, StoreError, Successor, TokenCheck, clamp_to_end,
};
use crate::domain::{Jti, SessionId, User, UserId, Username};

/// How often, at most, a write sweeps out expired entries.
const SWEEP_EVERY_MS: u64 = 1_000;

struct SessionRec {
    current: Jti,
    end: Option<u64>,
    revoked: bool,
    prev: Option<Jti>,
    prev_at_ms: u64,
    next: Option<Successor>,
    /// Milliseconds since the epoch after which the record is gone.
    keep_until_ms: u64,
    created_ms: u64,
    last_ms: Option<u64>,
    client: ClientInfo,
}

impl SessionRec {
    fn new(
        current: &Jti,
        end: Option<u64>,
        now_ms: u64,
        keep_until_ms: u64,
        client: &ClientInfo,
    ) -> Self {
        Self {
            current: current.clone(),
            end,
            revoked: false,
            prev: None,
            prev_at_ms: 0,
            next: None,
            keep_until_ms,
            created_ms: now_ms,
            last_ms: None,
            client: client.clone(),
        }
    }

    fn revoke(&mut self) {
        self.revoked = true;
        self.next = None;
    }
}

#[derive(Default)]
struct Inner {
    users: HashMap<UserId, User>,
    by_name: HashMap<String, UserId>,
    sessions: HashMap<(UserId, SessionId), SessionRec>,
    /// Each user's live sessions (the Redis store's per-user index).
    by_user: HashMap<UserId, BTreeSet<SessionId>>,
    /// Blacklisted jtis, with the time their entry may go.
    blacklist: HashMap<(UserId, Jti), u64>,
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
        self.blacklist.retain(|_, until| *until > now_ms);
        self.failures.retain(|_, (_, until)| *until > now_ms);
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

    fn is_blacklisted(&self, key: &(UserId, Jti), now_ms: u64) -> bool {
        self.blacklist.get(key).is_some_and(|until| *until > now_ms)
    }
}

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-made change: every change below is
        // made after all its checks. So a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[async_trait]
impl Store for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn add_user(&self, user: &User) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.by_name.contains_key(user.username.as_str()) {
            return Err(StoreError::UsernameTaken);
        }
        if inner.users.contains_key(&user.id) {
            return Err(StoreError::IdTaken);
        }
        inner
            .by_name
            .insert(user.username.as_str().to_owned(), user.id.clone());
        inner.users.insert(user.id.clone(), user.clone());
        Ok(())
    }

    async fn user_by_username(&self, username: &Username) -> Result<Option<User>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .by_name
            .get(username.as_str())
            .and_then(|id| inner.users.get(id))
            .cloned())
    }

    async fn set_user_active(&self, username: &Username, active: bool) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let Some(id) = inner.by_name.get(username.as_str()).cloned() else {
            return Ok(false);
        };
        Ok(match inner.users.get_mut(&id) {
            Some(user) => {
                user.is_active = active;
                true
            }
            None => false,
        })
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let mut users: Vec<User> = self.lock().users.values().cloned().collect();
        users.sort_by(|a, b| a.username.as_str().cmp(b.username.as_str()));
        Ok(users)
    }

    async fn create_session(&self, s: &NewSession) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.sweep(s.now_ms);
        let keep = (s.refresh_exp + s.leeway) * 1000;
        let rec = SessionRec::new(&s.refresh_jti, s.end, s.now_ms, keep, &s.client);
        inner.insert_session((s.user_id.clone(), s.sid.clone()), rec);
        Ok(())
    }

    async fn refresh(&self, r: &RefreshRequest) -> Result<RefreshOutcome, StoreError> {
        let mut inner = self.lock();
        inner.sweep(r.now_ms);
        let key = (r.user_id.clone(), r.sid.clone());
        let bl_key = (r.user_id.clone(), r.jti.clone());
        let blacklisted = inner.is_blacklisted(&bl_key, r.now_ms);
        let keep_presented_ms = (r.jti_exp + r.leeway) * 1000;
        let user_state = inner.users.get(&r.user_id).map(|u| u.is_active);

        if inner.session(&key, r.now_ms).is_none() {
            if !r.adopt {
                return Ok(RefreshOutcome::Invalid);
            }
            if blacklisted {
                return Ok(RefreshOutcome::Revoked);
            }
            // A token minted elsewhere for a user who is not here, or not active, starts nothing.
            if let Some(refusal) = user_refusal(user_state) {
                return Ok(refusal);
            }
            let rec = SessionRec::new(&r.jti, r.adopt_end, r.now_ms, keep_presented_ms, &r.client);
            inner.insert_session(key.clone(), rec);
        }
        let session = inner.sessions.get_mut(&key).expect("present or just made");
        if session.revoked {
            return Ok(RefreshOutcome::Revoked);
        }
        let grace = session.prev.as_ref() == Some(&r.jti)
            && r.now_ms < session.prev_at_ms + r.reuse_interval_ms;
        if r.jti != session.current && !grace {
            if r.blacklist {
                session.revoke();
                inner.unindex(&r.user_id, &r.sid);
                return Ok(RefreshOutcome::ReuseRevoked);
            }
            if blacklisted {
                return Ok(RefreshOutcome::Revoked);
            }
        }
        if let Some(refusal) = user_refusal(user_state) {
            return Ok(refusal);
        }
        if session.end.is_some_and(|end| r.now_ms / 1000 >= end) {
            return Ok(RefreshOutcome::Invalid);
        }
        if grace && let Some(next) = &session.next {
            return Ok(RefreshOutcome::GraceReplay(next.clone()));
        }
        let next = clamp_to_end(&r.next, session.end);
        session.last_ms = Some(r.now_ms);
        if !r.rotate {
            return Ok(RefreshOutcome::Kept(Successor {
                refresh_jti: r.jti.clone(),
                refresh_exp: r.jti_exp,
                ..next
            }));
        }
        session.current = next.refresh_jti.clone();
        session.prev = Some(r.jti.clone());
        session.prev_at_ms = r.now_ms;
        session.next = Some(next.clone());
        session.keep_until_ms = session
            .keep_until_ms
            .max((next.refresh_exp + r.leeway) * 1000);
        if r.blacklist && keep_presented_ms > r.now_ms {
            inner.blacklist.insert(bl_key, keep_presented_ms);
        }
        Ok(RefreshOutcome::Rotated(next))
    }

    async fn revoke(&self, r: &RevokeRequest) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.sweep(r.now_ms);
        let key = (r.user_id.clone(), r.sid.clone());
        let keep_ms = (r.jti_exp + r.leeway) * 1000;
        match inner.session(&key, r.now_ms) {
            Some(session) => session.revoke(),
            None if r.adopt && keep_ms > r.now_ms => {
                let mut rec =
                    SessionRec::new(&r.jti, None, r.now_ms, keep_ms, &ClientInfo::default());
                rec.revoke();
                inner.sessions.insert(key, rec);
            }
            None => return Ok(()),
        }
        inner.unindex(&r.user_id, &r.sid);
        if keep_ms > r.now_ms {
            inner
                .blacklist
                .insert((r.user_id.clone(), r.jti.clone()), keep_ms);
        }
        Ok(())
    }

    async fn check_token(&self, c: &TokenCheck) -> Result<CheckOutcome, StoreError> {
        let now = now_ms();
        let mut inner = self.lock();
        let Some(user) = inner.users.get(&c.user_id).cloned() else {
            return Ok(CheckOutcome::UserMissing);
        };
        if !user.is_active {
            return Ok(CheckOutcome::UserInactive);
        }
        let session_ok = match inner.session(&(c.user_id.clone(), c.sid.clone()), now) {
            Some(s) => !s.revoked,
            None => !c.session_required,
        };
        let blacklisted = c
            .refresh_jti
            .as_ref()
            .is_some_and(|jti| inner.is_blacklisted(&(c.user_id.clone(), jti.clone()), now));
        if !session_ok || blacklisted {
            return Ok(CheckOutcome::Revoked);
        }
        Ok(CheckOutcome::Ok(user))
    }

    async fn list_sessions(&self, user_id: &UserId) -> Result<Vec<SessionInfo>, StoreError> {
        let now = now_ms();
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
        let now = now_ms();
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
        let now = now_ms();
        let mut inner = self.lock();
        let sids = inner.by_user.remove(user_id).unwrap_or_default();
        let mut ended = 0;
        for sid in sids {
            if let Some(s) = inner.session(&(user_id.clone(), sid), now)
                && !s.revoked
            {
                s.revoke();
                ended += 1;
            }
        }
        Ok(ended)
    }

    async fn session_footprint(&self, user_id: &UserId) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        inner.last_sweep_ms = 0;
        inner.sweep(now_ms());
        Ok(inner.sessions.keys().filter(|(u, _)| u == user_id).count()
            + inner.blacklist.keys().filter(|(u, _)| u == user_id).count()
            + usize::from(inner.by_user.contains_key(user_id)))
    }

    async fn count_login_attempt(
        &self,
        keys: &[LimitKey],
        max: u32,
        window: Duration,
        now_ms: u64,
    ) -> Result<Option<Duration>, StoreError> {
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

/// The refusal for a user who is not here (`None`) or not active, as the refresh script gives it.
fn user_refusal(active: Option<bool>) -> Option<RefreshOutcome> {
    match active {
        None => Some(RefreshOutcome::UserMissing),
        Some(false) => Some(RefreshOutcome::UserInactive),
        Some(true) => None,
    }
}

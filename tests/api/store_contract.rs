//! The store contract: every row of the state table in `src/store/mod.rs`, the races and the
//! interval edges, driven through the store traits on the in-process store (with a manual clock:
//! no sleeping), one Redis and a Redis Cluster (real time, short intervals). Both must give the
//! same answer to every row.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use refreshd::auth;
use refreshd::domain::{Jti, SessionId, UserId, Username};
use refreshd::store::{
    AnswerKind, ClientInfo, ManualClock, MemoryStore, NewSession, RedisStore, RefreshClaims,
    RefreshOutcome, RefreshRequest, RevokeOutcome, RevokeRequest, RotationPolicy, Store,
};

use crate::helpers::*;
use crate::on_every_store;

on_every_store!(
    every_row_of_the_state_table,
    racing_presentations_make_one_successor,
    a_session_started_as_its_user_is_deactivated_stays_ended,
);

/// A store and its clock: the in-process store's is moved by hand, Redis's by waiting.
struct Harness {
    store: Arc<dyn Store>,
    clock: Option<Arc<ManualClock>>,
}

impl Harness {
    async fn new(backend: Backend) -> Self {
        let timeout = Duration::from_secs(2);
        match backend {
            Backend::Memory => {
                let clock = Arc::new(ManualClock::new());
                Self {
                    store: Arc::new(MemoryStore::with_clock(clock.clone())),
                    clock: Some(clock),
                }
            }
            Backend::Redis => Self {
                store: Arc::new(
                    RedisStore::connect(&shared_redis_url(), timeout)
                        .await
                        .unwrap(),
                ),
                clock: None,
            },
            Backend::Cluster => {
                let nodes: Vec<String> = shared_cluster_urls()
                    .split(',')
                    .map(str::to_owned)
                    .collect();
                Self {
                    store: Arc::new(RedisStore::connect_cluster(&nodes, timeout).await.unwrap()),
                    clock: None,
                }
            }
        }
    }

    async fn wait(&self, d: Duration) {
        match &self.clock {
            Some(clock) => clock.advance(d),
            // A margin for Redis's clock against this one.
            None => tokio::time::sleep(d + Duration::from_millis(50)).await,
        }
    }

    async fn user(&self) -> (UserId, Username) {
        let user = auth::new_user(Username::parse(&unique("c")).unwrap(), "pw", None);
        self.store.add_user(&user).await.unwrap();
        (user.id, user.username)
    }
}

fn claims(iat: u64, lifetime: u64) -> RefreshClaims {
    RefreshClaims {
        jti: Jti::new_random(),
        iat,
        exp: iat + lifetime,
    }
}

/// The interval every row uses: long enough for a row's Redis round trips (a cluster's, with
/// every row running at once on a loaded machine: 400 ms once proved too short), short enough to
/// wait out.
const INTERVAL_MS: u64 = 1000;

fn policy() -> RotationPolicy {
    RotationPolicy {
        rotate: true,
        blacklist: true,
        reuse_interval_ms: INTERVAL_MS,
        idle_timeout_ms: None,
        adopt_foreign: true,
        leeway: 0,
    }
}

/// One token family as a client of the store sees it.
struct Family {
    user: UserId,
    sid: SessionId,
    foreign: bool,
    current: RefreshClaims,
    pending: Option<RefreshClaims>,
    retired: Vec<RefreshClaims>,
}

impl Family {
    async fn login(h: &Harness, user: &UserId, end: Option<u64>) -> Self {
        let current = claims(now_s(), 3600);
        let sid = SessionId::new_random();
        h.store
            .create_session(&NewSession {
                user_id: user.clone(),
                sid: sid.clone(),
                client: ClientInfo::default(),
                refresh: current.clone(),
                end,
                remember: true,
                leeway: 0,
            })
            .await
            .unwrap();
        Self {
            user: user.clone(),
            sid,
            foreign: false,
            current,
            pending: None,
            retired: Vec::new(),
        }
    }

    /// A token minted elsewhere (no sid): its jti names its session.
    fn foreign(user: &UserId, iat: u64) -> Self {
        let current = claims(iat, 3600);
        Self {
            user: user.clone(),
            sid: SessionId::from(current.jti.clone()),
            foreign: true,
            current,
            pending: None,
            retired: Vec::new(),
        }
    }

    async fn present(
        &mut self,
        h: &Harness,
        token: &RefreshClaims,
        policy: RotationPolicy,
    ) -> RefreshOutcome {
        let outcome = h
            .store
            .refresh(&RefreshRequest {
                user_id: self.user.clone(),
                sid: self.sid.clone(),
                foreign: self.foreign,
                adopt_end: None,
                presented: token.clone(),
                policy,
                successor: claims(now_s(), 3600),
                client: ClientInfo::default(),
            })
            .await
            .unwrap();
        if let RefreshOutcome::Ok(answer) = &outcome {
            match answer.kind {
                AnswerKind::Promoted => {
                    let parent = std::mem::replace(
                        &mut self.current,
                        self.pending.take().expect("a pending token"),
                    );
                    self.retired.push(parent);
                    self.pending = Some(answer.refresh.clone());
                }
                AnswerKind::Kept => {}
                _ => self.pending = Some(answer.refresh.clone()),
            }
        }
        outcome
    }

    async fn issue(&mut self, h: &Harness) {
        let current = self.current.clone();
        self.present(h, &current, policy()).await;
    }

    async fn promote(&mut self, h: &Harness) {
        let pending = self.pending.clone().expect("a pending token");
        self.present(h, &pending, policy()).await;
    }
}

/// Which token a row presents.
#[derive(Clone, Copy, Debug)]
enum Presented {
    Current,
    Pending,
    /// The oldest retired token.
    Retired,
    /// Validly signed, of this session, never issued by it.
    Unknown,
}

/// What a row expects.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    Answer(AnswerKind),
    Invalid,
    Revoked,
    Reuse,
    UserMissing,
    UserInactive,
}

#[derive(Clone, Copy, Debug)]
enum Setup {
    Issue,
    Promote,
    Wait(u64),
    EndSession,
    Deactivate,
    DeleteUserRecord,
}

struct Row {
    name: &'static str,
    policy: fn(RotationPolicy) -> RotationPolicy,
    foreign_iat_offset: Option<i64>,
    end_in_s: Option<u64>,
    setup: &'static [Setup],
    presented: Presented,
    expect: Expect,
    /// After the row: does the family's newest token still refresh?
    alive_after: bool,
}

fn same(p: RotationPolicy) -> RotationPolicy {
    p
}

use AnswerKind::*;
use Presented as P;
use Setup as S;

const ROWS: &[Row] = &[
    Row {
        name: "current, no pending: issues the successor",
        policy: same,
        foreign_iat_offset: None,
        end_in_s: None,
        setup: &[],
        presented: P::Current,
        expect: Expect::Answer(Issued),
        alive_after: true,
    },
    Row {
        name: "current again, however much later: the same successor",
        policy: same,
        foreign_iat_offset: None,
        end_in_s: None,
        setup: &[S::Issue, S::Wait(2 * INTERVAL_MS)],
        presented: P::Current,
        expect: Expect::Answer(Repeated),
        alive_after: true,
    },
    Row {
        name: "pending: promoted, its parent retired",
        policy: same,
        foreign_iat_offset: None,
        end_in_s: None,
        setup: &[S::Issue],
        presented: P::Pending,
        expect: Expect::Answer(Promoted),
        alive_after: true,
    },
    Row {
        name: "retired within the interval: forgiven",
        policy: same,
        foreign_iat_offset: None,
        end_in_s: None,
        setup: &[S::Issue, S::Promote],
        presented: P::Retired,
        expect: Expect::Answer(Forgiven),
        alive_after: true,
    },
    Row {
        name: "an ancestor two retirements old, within the interval: forgiven",
        policy: same,
        foreign_iat_offset: None,
        end_in_s: None,
        setup: &[S::Issue, S::Promote, S::Promote],
        presented: P::Retired,
        expect: Expect::Answer(Forgiven),
        alive_after: true,
    },
    Row {
        name: "retired past the interval: reuse, the session ends",
        policy: same,
        foreign_iat_offset: None,
        end_in_s: None,
        setup: &[S::Issue, S::Promote, S::Wait(INTERVAL_MS)],
        presented: P::Retired,
        expect: Expect::Reuse,
        alive_after: false,
    },
    Row {
        name: "issued long ago, retired just now: forgiven (the interval counts from retirement)",
        policy: same,
        foreign_iat_offset: None,
        end_in_s: None,
        setup: &[S::Issue, S::Wait(2 * INTERVAL_MS), S::Promote],
        presented: P::Retired,
        expect: Expect::Answer(Forgiven),
        alive_after: true,
    },
    Row {
        name: "never issued by its session: reuse",
        policy: same,
        foreign_iat_offset: None,
        end_in_s: None,
        setup: &[S::Issue],
        presented: P::Unknown,
        expect: Expect::Reuse,
        alive_after: false,
    },
    Row {
        name: "blacklisting off: a retired token stays valid",
        policy: |p| RotationPolicy {
            blacklist: false,
            ..p
        },
        foreign_iat_offset: None,
        end_in_s: None,
        setup: &[S::Issue, S::Promote, S::Wait(INTERVAL_MS)],
        presented: P::Retired,
        expect: Expect::Answer(Forgiven),
        alive_after: true,
    },
    Row {
        name: "rotation off: the token is kept",
        policy: |p| RotationPolicy { rotate: false, ..p },
        foreign_iat_offset: None,
        end_in_s: None,
        setup: &[],
        presented: P::Current,
        expect: Expect::Answer(Kept),
        alive_after: true,
    },
    Row {
        name: "an ended session: revoked, with no further effect",
        policy: same,
        foreign_iat_offset: None,
        end_in_s: None,
        setup: &[S::Issue, S::EndSession],
        presented: P::Pending,
        expect: Expect::Revoked,
        alive_after: false,
    },
    Row {
        name: "idle past the timeout: invalid, the session ends",
        policy: |p| RotationPolicy {
            idle_timeout_ms: Some(2 * INTERVAL_MS),
            ..p
        },
        foreign_iat_offset: None,
        end_in_s: None,
        setup: &[S::Issue, S::Wait(2 * INTERVAL_MS)],
        presented: P::Current,
        expect: Expect::Invalid,
        alive_after: false,
    },
    Row {
        name: "refreshed within the idle timeout: fine",
        policy: |p| RotationPolicy {
            idle_timeout_ms: Some(4 * INTERVAL_MS),
            ..p
        },
        foreign_iat_offset: None,
        end_in_s: None,
        setup: &[S::Wait(2 * INTERVAL_MS), S::Issue, S::Wait(2 * INTERVAL_MS)],
        presented: P::Pending,
        expect: Expect::Answer(Promoted),
        alive_after: true,
    },
    Row {
        name: "past the session's absolute end: invalid",
        policy: same,
        foreign_iat_offset: None,
        end_in_s: Some(0),
        setup: &[],
        presented: P::Current,
        expect: Expect::Invalid,
        alive_after: false,
    },
    Row {
        name: "an inactive user: refused as such",
        policy: same,
        foreign_iat_offset: None,
        end_in_s: None,
        setup: &[S::Issue, S::Deactivate],
        presented: P::Pending,
        expect: Expect::UserInactive,
        alive_after: false,
    },
    Row {
        name: "a user who is gone: refused as such",
        policy: same,
        foreign_iat_offset: None,
        end_in_s: None,
        setup: &[S::DeleteUserRecord],
        presented: P::Current,
        expect: Expect::UserMissing,
        alive_after: false,
    },
    Row {
        name: "a foreign token at its first refresh: adopted",
        policy: same,
        foreign_iat_offset: Some(0),
        end_in_s: None,
        setup: &[],
        presented: P::Current,
        expect: Expect::Answer(Issued),
        alive_after: true,
    },
    Row {
        name: "a foreign token, retired past its interval: reuse",
        policy: same,
        foreign_iat_offset: Some(0),
        end_in_s: None,
        setup: &[S::Issue, S::Promote, S::Wait(INTERVAL_MS)],
        presented: P::Retired,
        expect: Expect::Reuse,
        alive_after: false,
    },
    Row {
        name: "a foreign token issued before the store's epoch: invalid",
        policy: same,
        foreign_iat_offset: Some(-86_400),
        end_in_s: None,
        setup: &[],
        presented: P::Current,
        expect: Expect::Invalid,
        alive_after: false,
    },
    Row {
        name: "a foreign token with adoption off: invalid",
        policy: |p| RotationPolicy {
            adopt_foreign: false,
            ..p
        },
        foreign_iat_offset: Some(0),
        end_in_s: None,
        setup: &[],
        presented: P::Current,
        expect: Expect::Invalid,
        alive_after: false,
    },
];

async fn run_row(h: &Harness, row: &Row) {
    let (user, username) = h.user().await;
    let mut f = match row.foreign_iat_offset {
        Some(offset) => Family::foreign(&user, (now_s() as i64 + offset) as u64),
        None => Family::login(h, &user, row.end_in_s.map(|e| now_s() + e)).await,
    };
    for step in row.setup {
        match step {
            S::Issue => f.issue(h).await,
            S::Promote => f.promote(h).await,
            S::Wait(ms) => h.wait(Duration::from_millis(*ms)).await,
            S::EndSession => {
                h.store.end_session(&user, &f.sid).await.unwrap();
            }
            S::Deactivate => {
                h.store.set_user_active(&username, false).await.unwrap();
            }
            S::DeleteUserRecord => {
                // A token naming a user this store never had.
                f.user = UserId::parse(&unique("gone")).unwrap();
            }
        }
    }
    let token = match row.presented {
        P::Current => f.current.clone(),
        P::Pending => f.pending.clone().expect("a pending token"),
        P::Retired => f.retired.first().cloned().expect("a retired token"),
        P::Unknown => claims(f.current.iat, 3600),
    };
    let outcome = f.present(h, &token, (row.policy)(policy())).await;
    let got = match &outcome {
        RefreshOutcome::Ok(a) => Expect::Answer(a.kind),
        RefreshOutcome::Invalid => Expect::Invalid,
        RefreshOutcome::Revoked => Expect::Revoked,
        RefreshOutcome::ReuseRevoked => Expect::Reuse,
        RefreshOutcome::UserMissing => Expect::UserMissing,
        RefreshOutcome::UserInactive => Expect::UserInactive,
    };
    assert_eq!(got, row.expect, "{}", row.name);
    if let RefreshOutcome::Ok(answer) = &outcome
        && answer.kind != Kept
    {
        // Every answer but Kept hands out the family's newest (pending) token.
        assert_eq!(Some(&answer.refresh), f.pending.as_ref(), "{}", row.name);
    }
    // Whether the family lives on: its newest token refreshes (or, dead, is refused).
    let newest = f.pending.clone().unwrap_or_else(|| f.current.clone());
    let after = f.present(h, &newest, (row.policy)(policy())).await;
    assert_eq!(
        matches!(after, RefreshOutcome::Ok(_)),
        row.alive_after,
        "{}: afterwards {after:?}",
        row.name
    );
}

async fn every_row_of_the_state_table(backend: Backend) {
    let h = Harness::new(backend).await;
    // Rows that wait run side by side, so that Redis's real waits overlap.
    join_all(ROWS.iter().map(|row| run_row(&h, row))).await;
}

/// A login checks the user, then starts the session; a deactivation can come in between. The
/// session then starts ended, and a re-activation does not bring it back (SPEC 4).
async fn a_session_started_as_its_user_is_deactivated_stays_ended(backend: Backend) {
    let h = Harness::new(backend).await;
    let (user, name) = h.user().await;
    assert!(h.store.set_user_active(&name, false).await.unwrap());
    let mut late = Family::login(&h, &user, None).await;
    let current = late.current.clone();
    assert_eq!(
        late.present(&h, &current, policy()).await,
        RefreshOutcome::UserInactive
    );
    assert!(h.store.set_user_active(&name, true).await.unwrap());
    assert_eq!(
        late.present(&h, &current, policy()).await,
        RefreshOutcome::Revoked
    );
    assert!(h.store.list_sessions(&user).await.unwrap().is_empty());
    // A login after the re-activation works as ever.
    let mut fresh = Family::login(&h, &user, None).await;
    let current = fresh.current.clone();
    assert!(matches!(
        fresh.present(&h, &current, policy()).await,
        RefreshOutcome::Ok(_)
    ));
}

async fn racing_presentations_make_one_successor(backend: Backend) {
    let h = Harness::new(backend).await;
    let (user, _) = h.user().await;
    let f = Family::login(&h, &user, None).await;
    let present = |token: RefreshClaims| {
        let h = &h;
        let f = &f;
        async move {
            h.store
                .refresh(&RefreshRequest {
                    user_id: f.user.clone(),
                    sid: f.sid.clone(),
                    foreign: false,
                    adopt_end: None,
                    presented: token,
                    policy: policy(),
                    successor: claims(now_s(), 3600),
                    client: ClientInfo::default(),
                })
                .await
                .unwrap()
        }
    };
    let successor = |o: &RefreshOutcome| match o {
        RefreshOutcome::Ok(a) => a.refresh.clone(),
        other => panic!("refused: {other:?}"),
    };
    // Twenty presentations of the current token at once: one successor between them.
    let first = join_all((0..20).map(|_| present(f.current.clone()))).await;
    let issued: Vec<_> = first.iter().map(successor).collect();
    assert!(issued.iter().all(|s| *s == issued[0]), "one successor");
    assert_eq!(
        first
            .iter()
            .filter(|o| matches!(o, RefreshOutcome::Ok(a) if a.kind == Issued))
            .count(),
        1
    );
    // Twenty presentations of that successor at once: promoted once, the same next successor.
    let second = join_all((0..20).map(|_| present(issued[0].clone()))).await;
    let next: Vec<_> = second.iter().map(successor).collect();
    assert!(next.iter().all(|s| *s == next[0]), "one next successor");
    assert_eq!(
        second
            .iter()
            .filter(|o| matches!(o, RefreshOutcome::Ok(a) if a.kind == Promoted))
            .count(),
        1
    );
    // Log out everywhere with the retired first token (within its interval) ends the session.
    let revoked = h
        .store
        .revoke(&RevokeRequest {
            user_id: f.user.clone(),
            sid: f.sid.clone(),
            foreign: false,
            presented: f.current.clone(),
            all: true,
            policy: policy(),
        })
        .await
        .unwrap();
    assert_eq!(revoked, RevokeOutcome::Revoked);
    assert_eq!(present(next[0].clone()).await, RefreshOutcome::Revoked);
}

/// The interval's edge, to the millisecond, on the in-process store's clock.
#[tokio::test]
async fn interval_edges_to_the_millisecond_on_the_in_process_clock() {
    let clock = Arc::new(ManualClock::new());
    let h = Harness {
        store: Arc::new(MemoryStore::with_clock(clock.clone())),
        clock: Some(clock.clone()),
    };
    let (user, _) = h.user().await;
    let mut f = Family::login(&h, &user, None).await;
    f.issue(&h).await;
    f.promote(&h).await;
    let retired = f.retired[0].clone();
    clock.advance(Duration::from_millis(INTERVAL_MS - 1));
    assert!(matches!(
        f.present(&h, &retired, policy()).await,
        RefreshOutcome::Ok(a) if a.kind == Forgiven
    ));
    // Forgiving did not extend anything: one millisecond later it is reuse.
    clock.advance(Duration::from_millis(1));
    assert_eq!(
        f.present(&h, &retired, policy()).await,
        RefreshOutcome::ReuseRevoked
    );
    // And an hour later, a current token never presented is still answered the same way:
    // nothing but its own expiry ends a current token.
    let mut g = Family::login(&h, &user, None).await;
    g.issue(&h).await;
    clock.advance(Duration::from_secs(3000));
    let current = g.current.clone();
    assert!(matches!(
        g.present(&h, &current, policy()).await,
        RefreshOutcome::Ok(a) if a.kind == Repeated
    ));
}

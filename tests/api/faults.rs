//! Store faults in the middle of a load: Redis stopped, paused and resumed, restarted, and
//! restarted with its data lost. A request never hangs (STORE_TIMEOUT, then 503); no rotation is
//! lost or doubled; service is back within 2 s of Redis; lost data gives clean 401s, never a 500.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::helpers::*;

/// What one client saw: each token it presented, and the successor it was given.
#[derive(Default)]
struct History {
    successors: HashMap<String, String>,
    current: String,
    statuses: HashMap<u16, u32>,
    slowest: Duration,
}

/// Clients that keep refreshing their own session, retrying the same token `backoff` after a 503.
async fn load(
    app: Arc<TestApp>,
    sessions: Vec<String>,
    stop: Arc<AtomicBool>,
    backoff: Duration,
) -> Vec<History> {
    let mut tasks = Vec::new();
    for refresh in sessions {
        let app = app.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut h = History {
                current: refresh,
                ..History::default()
            };
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let reply = app.refresh_with_body(&h.current).await;
                h.slowest = h.slowest.max(started.elapsed());
                *h.statuses.entry(reply.status).or_default() += 1;
                match reply.status {
                    200 => {
                        let next = reply.tokens().refresh;
                        // The same token never gets two different successors.
                        if let Some(earlier) = h.successors.insert(h.current.clone(), next.clone())
                        {
                            assert_eq!(earlier, next, "one token, two rotations");
                        }
                        h.current = next;
                    }
                    503 => tokio::time::sleep(backoff).await,
                    401 => return h,
                    other => panic!("a refresh answered {other}: {}", reply.text),
                }
            }
            h
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// `n` logged-in clients' refresh tokens.
async fn sessions_of(app: &TestApp, n: usize) -> Vec<String> {
    let mut sessions = Vec::with_capacity(n);
    for _ in 0..n {
        sessions.push(app.logged_in().await.1.refresh);
    }
    sessions
}

/// How many answers of each status the clients saw, in all.
fn status_totals(histories: &[History]) -> HashMap<u16, u32> {
    let mut totals: HashMap<u16, u32> = HashMap::new();
    for h in histories {
        for (s, n) in &h.statuses {
            *totals.entry(*s).or_default() += n;
        }
    }
    totals
}

/// Waits until a fresh refresh chain answers 200 again; how long it took.
async fn back_within(app: &TestApp, token: &mut String, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let reply = app.refresh_with_body(token).await;
        if reply.status == 200 {
            *token = reply.tokens().refresh;
            return started.elapsed();
        }
        assert_eq!(reply.status, 503, "{}", reply.text);
        assert!(started.elapsed() < limit, "not back within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_mid_load_lose_no_rotation_and_recover_within_two_seconds() {
    let mut redis = RedisProcess::start(true);
    let app = Arc::new(
        spawn_app_with(
            Backend::Redis,
            &[
                ("REDIS_URL", &redis.url()),
                ("STORE_TIMEOUT", "300ms"),
                ("WORKERS", "2"),
                ("REFRESH_TOKEN_REUSE_INTERVAL", "1s"),
            ],
        )
        .await,
    );
    let (_, probe) = app.logged_in().await;
    let mut probe = probe.refresh;
    let sessions = sessions_of(&app, 16).await;
    let stop = Arc::new(AtomicBool::new(false));
    let running = tokio::spawn(load(
        app.clone(),
        sessions,
        stop.clone(),
        Duration::from_millis(20),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Stopped, then started again with its data.
    redis.stop();
    tokio::time::sleep(Duration::from_millis(700)).await;
    redis.restart();
    let took = back_within(&app, &mut probe, Duration::from_secs(2)).await;
    eprintln!("back {took:?} after a restart");

    // Paused (a hung store): requests time out to 503 instead of hanging.
    tokio::time::sleep(Duration::from_millis(300)).await;
    redis.pause();
    tokio::time::sleep(Duration::from_millis(700)).await;
    redis.resume();
    let took = back_within(&app, &mut probe, Duration::from_secs(2)).await;
    eprintln!("back {took:?} after a pause");

    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let histories = running.await.unwrap();
    let slowest = histories.iter().map(|h| h.slowest).max().unwrap();
    assert!(
        slowest < Duration::from_millis(1500),
        "a request took {slowest:?}"
    );
    let totals = status_totals(&histories);
    eprintln!("statuses under faults: {totals:?}");
    assert!(
        totals.get(&503).copied().unwrap_or(0) > 0,
        "the faults were seen"
    );
    assert_eq!(totals.get(&401), None, "nobody was logged out by a fault");

    // No rotation was lost: every chain's newest token still works.
    let mut newest = Vec::new();
    for h in &histories {
        let reply = app.refresh_with_body(&h.current).await;
        assert_detail(&reply, 200, REFRESHED);
        newest.push(reply.tokens().refresh);
    }
    // No token is both accepted and blacklisted: a retired ancestor, past its interval, is
    // refused, and its session with it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for (h, newest) in histories.iter().zip(&newest).take(4) {
        let first = h
            .successors
            .keys()
            .find(|t| h.successors.get(*t) != Some(&h.current));
        if let Some(ancestor) = first {
            assert_detail(&app.refresh_with_body(ancestor).await, 401, INVALID_REFRESH);
            assert_detail(&app.refresh_with_body(newest).await, 401, INVALID_REFRESH);
        }
    }

    // Restarted with its data lost: clean 401s, never a 500. A call that outruns the 300 ms
    // STORE_TIMEOUT on a loaded machine answers 503, and is asked again.
    redis.stop();
    redis.wipe();
    redis.restart();
    let restarted = std::time::Instant::now();
    let answer = |token: String, limit: Duration| {
        let app = app.clone();
        async move {
            loop {
                let r = app.refresh_with_body(&token).await;
                if r.status != 503 {
                    return r;
                }
                assert!(
                    restarted.elapsed() < limit,
                    "still 503 {limit:?} after Redis came back"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    // The users went with the data: the user check, which comes first, refuses them.
    let back = Duration::from_secs(2);
    assert_detail(&answer(probe, back).await, 401, INVALID_TOKEN_USER);
    for token in newest.iter().skip(4).take(4) {
        assert_detail(
            &answer(token.clone(), 2 * back).await,
            401,
            INVALID_TOKEN_USER,
        );
    }
}

/// The session record's current refresh jti, read behind the application's back.
async fn current_jti(redis: &RedisProcess, refresh: &str) -> Option<String> {
    let mut conn = redis_conn(&redis.url()).await;
    let (record, _) = crate::redis_layout::record_of(&mut conn, refresh).await;
    record?.current.map(|jti| jti.as_str().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_answered_503_during_a_freeze_retries_successfully_after_the_interval() {
    let redis = RedisProcess::start(false);
    let app = spawn_app_with(
        Backend::Redis,
        &[
            ("REDIS_URL", &redis.url()),
            ("STORE_TIMEOUT", "300ms"),
            ("REFRESH_TOKEN_REUSE_INTERVAL", "1s"),
        ],
    )
    .await;
    let (_, t0) = app.logged_in().await;
    let t1 = app.refresh_with_cookie(&t0.refresh).await.tokens();
    let held = app.refresh_with_cookie(&t1.refresh).await.tokens();
    // Redis stalls: the refresh times out to 503, but its command is already on the wire.
    redis.pause();
    let reply = app.refresh_with_cookie(&held.refresh).await;
    assert_detail(&reply, 503, UNAVAILABLE);
    assert_no_cookies(&reply);
    redis.resume();
    // Redis runs the late command: the presented token is committed as current.
    let jti = claims_of(&held.refresh)["jti"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(3);
    while current_jti(&redis, &held.refresh).await.as_deref() != Some(jti.as_str()) {
        assert!(Instant::now() < deadline, "the late command never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The client backs off past the reuse interval, then retries with the token it holds.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let retry = app.refresh_with_cookie(&held.refresh).await;
    assert_detail(&retry, 200, REFRESHED);
    let next = retry.tokens();
    assert_eq!(app.me_with_cookie(&next.access).await.status, 200);
    assert_detail(
        &app.refresh_with_cookie(&next.refresh).await,
        200,
        REFRESHED,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freeze_under_load_past_the_interval_logs_nobody_out() {
    let redis = RedisProcess::start(false);
    let app = Arc::new(
        spawn_app_with(
            Backend::Redis,
            &[
                ("REDIS_URL", &redis.url()),
                ("STORE_TIMEOUT", "300ms"),
                ("WORKERS", "2"),
                ("REFRESH_TOKEN_REUSE_INTERVAL", "1s"),
            ],
        )
        .await,
    );
    let sessions = sessions_of(&app, 12).await;
    let stop = Arc::new(AtomicBool::new(false));
    // Clients back off past the reuse interval after a 503, as a page reload or an app's
    // exponential backoff does.
    let running = tokio::spawn(load(
        app.clone(),
        sessions,
        stop.clone(),
        Duration::from_millis(1500),
    ));
    tokio::time::sleep(Duration::from_millis(400)).await;
    redis.pause();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    redis.resume();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, Ordering::Relaxed);
    let histories = running.await.unwrap();
    let totals = status_totals(&histories);
    eprintln!("statuses through a freeze: {totals:?}");
    assert!(
        totals.get(&503).copied().unwrap_or(0) > 0,
        "the freeze was seen"
    );
    assert_eq!(totals.get(&401), None, "nobody was logged out");
    for h in &histories {
        assert_detail(&app.refresh_with_body(&h.current).await, 200, REFRESHED);
    }
    assert_eq!(
        app.metric("refreshd_refreshes_total{outcome=\"reuse_revoked\"}")
            .await,
        0
    );
}

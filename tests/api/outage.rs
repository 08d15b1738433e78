//! The store going away: fail closed with 503 in bounded time, lose no token, recover by itself.
//! Each test runs its own redis-server so that it can stop, pause and restart it.

use std::time::{Duration, Instant};

use crate::helpers::*;

async fn app_on(redis: &RedisProcess) -> TestApp {
    spawn_with_settings(settings_with(
        Backend::Redis,
        &[("REDIS_URL", &redis.url()), ("STORE_TIMEOUT", "500ms")],
    ))
    .await
}

/// Retries `refresh` until it stops answering 503, for at most `limit`.
async fn refresh_once_back(app: &TestApp, token: &str, limit: Duration) -> (Reply, Duration) {
    let start = Instant::now();
    loop {
        let reply = app.refresh_with_cookie(token).await;
        if reply.status != 503 || start.elapsed() > limit {
            return (reply, start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_stopped_every_store_route_answers_503_and_recovers_after_restart() {
    let mut redis = RedisProcess::start(true);
    let app = app_on(&redis).await;
    let (_, tokens) = app.logged_in().await;
    redis.stop();

    let started = Instant::now();
    let reply = app.refresh_with_cookie(&tokens.refresh).await;
    assert_detail(&reply, 503, UNAVAILABLE);
    assert_no_cookies(&reply);
    assert_detail(&app.login("anyone", "pw").await, 503, UNAVAILABLE);
    let logout = app.logout_with_cookie(&tokens.refresh).await;
    assert_detail(&logout, 503, UNAVAILABLE);
    assert_no_cookies(&logout);
    assert_detail(&app.me_with_cookie(&tokens.access).await, 503, UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "four 503s took {:?}",
        started.elapsed()
    );
    // The process itself is alive, and counts the outage as an outage, not as a bug.
    assert_eq!(
        Reply::read(app.client.get(app.url("/healthz")).send().await.unwrap())
            .await
            .status,
        200
    );
    for (series, want) in [
        ("refreshd_refreshes_total{outcome=\"store_unavailable\"}", 1),
        ("refreshd_refreshes_total{outcome=\"error\"}", 0),
        ("refreshd_logins_total{outcome=\"store_unavailable\"}", 1),
    ] {
        assert_eq!(app.metric(series).await, want, "{series}");
    }

    redis.restart();
    let (reply, took) = refresh_once_back(&app, &tokens.refresh, Duration::from_secs(10)).await;
    // The token was not consumed by the failed attempts: it still rotates.
    assert_detail(&reply, 200, REFRESHED);
    assert!(took < Duration::from_secs(5), "recovery took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_redis_times_out_to_503_and_the_session_survives() {
    let redis = RedisProcess::start(false);
    let app = app_on(&redis).await;
    let (_, tokens) = app.logged_in().await;
    redis.pause();
    let started = Instant::now();
    let reply = app.refresh_with_cookie(&tokens.refresh).await;
    let took = started.elapsed();
    redis.resume();
    assert_detail(&reply, 503, UNAVAILABLE);
    assert_no_cookies(&reply);
    assert!(
        took < Duration::from_secs(3),
        "a hung store held the request for {took:?}"
    );
    // Retrying the same token succeeds, whether or not the late command ran meanwhile.
    let (reply, _) = refresh_once_back(&app, &tokens.refresh, Duration::from_secs(5)).await;
    assert_detail(&reply, 200, REFRESHED);
    assert_detail(
        &app.refresh_with_cookie(&reply.tokens().refresh).await,
        200,
        REFRESHED,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_lost_its_data_gives_clean_401s() {
    let mut redis = RedisProcess::start(false);
    let app = app_on(&redis).await;
    let (_, tokens) = app.logged_in().await;
    redis.stop();
    redis.restart();
    // The user went with the data: the user check, which comes first, refuses the token.
    let (reply, _) = refresh_once_back(&app, &tokens.refresh, Duration::from_secs(5)).await;
    assert_detail(&reply, 401, INVALID_TOKEN_USER);
    assert_cookies_expired(&reply);
    let (reply, _) = refresh_once_back(&app, &tokens.refresh, Duration::from_secs(5)).await;
    assert_detail(&reply, 401, INVALID_TOKEN_USER);
}

#[tokio::test]
async fn start_up_without_a_reachable_redis_fails_with_a_clear_error() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let settings = settings_with(
        Backend::Redis,
        &[("REDIS_URL", &format!("redis://127.0.0.1:{closed}/"))],
    );
    let started = Instant::now();
    let err = match refreshd::startup::Application::build(settings).await {
        Ok(_) => panic!("started without Redis"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("REDIS_URL"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_cluster_master_down_only_its_sessions_answer_503_and_they_recover() {
    let mut cluster = RedisCluster::start();
    let app = spawn_app_with(
        Backend::Cluster,
        &[
            ("REDIS_CLUSTER_NODES", &cluster.urls()),
            ("STORE_TIMEOUT", "500ms"),
        ],
    )
    .await;
    // Two users whose keys (hash tag {u:<id>}) live on different masters.
    const DOWN: usize = 0;
    let (mut on_down, mut elsewhere) = (None, None);
    while on_down.is_none() || elsewhere.is_none() {
        let id = unique("u");
        let node = cluster.node_of(&format!("refreshd:{{u:{id}}}:user"));
        if node == DOWN {
            on_down.get_or_insert(id);
        } else {
            elsewhere.get_or_insert(id);
        }
    }
    let mut sessions = Vec::new();
    for id in [on_down.unwrap(), elsewhere.unwrap()] {
        let name = unique("clustered");
        app.add_user_with_id(&name, "pw", Some(&id)).await;
        sessions.push(app.login(&name, "pw").await.tokens());
    }
    let (affected, unaffected) = (sessions[0].clone(), sessions[1].clone());

    cluster.nodes[DOWN].stop();
    let reply = app.refresh_with_cookie(&affected.refresh).await;
    assert_detail(&reply, 503, UNAVAILABLE);
    assert_no_cookies(&reply);
    let (reply, _) = refresh_once_back(&app, &unaffected.refresh, Duration::from_secs(5)).await;
    assert_detail(&reply, 200, REFRESHED);

    cluster.nodes[DOWN].restart();
    cluster.wait_until_ok();
    let (reply, took) = refresh_once_back(&app, &affected.refresh, Duration::from_secs(15)).await;
    assert_detail(&reply, 200, REFRESHED);
    assert!(took < Duration::from_secs(15), "recovery took {took:?}");
}

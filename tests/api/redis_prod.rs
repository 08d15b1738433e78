//! Production Redis as operators run it (SPEC 5): TLS verified against a private CA, mutual TLS,
//! an ACL user whose password never reaches a log. Each test runs its own redis-server(s) on
//! loopback, so that they run in parallel with the rest.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use refreshd::config::Settings;
use refreshd::startup::Application;

use crate::helpers::*;

/// A redis-server speaking TLS on its second port, with a certificate for `localhost` signed by
/// `ca`; `clients` is `--tls-auth-clients` (`no`, or `yes` for mutual TLS).
fn tls_redis(ca: &TestCa, clients: &str) -> (RedisProcess, u16) {
    ca.issue(
        "server",
        "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n",
    );
    let tls_port = free_port();
    let redis = RedisProcess::start_with(
        false,
        &format!(
            "--tls-port {tls_port} --tls-cert-file '{}' --tls-key-file '{}' --tls-ca-cert-file '{}' --tls-auth-clients {clients}",
            ca.path("server.pem"),
            ca.path("server.key"),
            ca.path("ca.pem"),
        ),
    );
    (redis, tls_port)
}

fn settings(vars: &[(&str, &str)]) -> Settings {
    settings_with(Backend::Memory, vars)
}

/// Builds the application and expects it to refuse to start: the reason, as the log says it.
async fn refusal(vars: &[(&str, &str)]) -> String {
    let started = Instant::now();
    let outcome = Application::build(settings(vars)).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refusing took {:?}",
        started.elapsed()
    );
    match outcome {
        Ok(_) => panic!("the application started with {vars:?}"),
        Err(e) => e.to_string(),
    }
}

/// Runs the real binary with only `env`, `stdin` on its standard input.
fn refreshd(env: &[(&str, &str)], args: &[&str], stdin: &str) -> Output {
    run_with_stdin(
        Command::new(env!("CARGO_BIN_EXE_refreshd"))
            .args(args)
            .env_clear()
            .envs(env.iter().copied())
            .current_dir(std::env::temp_dir()),
        stdin.as_bytes(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_works_over_tls_verified_against_the_private_ca() {
    let ca = TestCa::new();
    let (_redis, tls_port) = tls_redis(&ca, "no");
    let url = format!("rediss://localhost:{tls_port}/");
    let app = spawn_with_settings(settings(&[
        ("REDIS_URL", &url),
        ("REDIS_CA_FILE", &ca.path("ca.pem")),
    ]))
    .await;
    assert_eq!(app.store.kind(), "redis");
    let (_, tokens) = app.logged_in().await;
    let reply = app.refresh_with_cookie(&tokens.refresh).await;
    assert_detail(&reply, 200, REFRESHED);
    let next = reply.tokens().refresh;
    assert_detail(&app.refresh_with_cookie(&next).await, 200, REFRESHED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_does_not_verify_stops_the_start_saying_why() {
    let ca = TestCa::new();
    let (_redis, tls_port) = tls_redis(&ca, "no");
    let url = format!("rediss://localhost:{tls_port}/");

    // Another CA: the server's certificate chains to nothing trusted.
    let other = TestCa::new();
    let why = refusal(&[
        ("REDIS_URL", &url),
        ("REDIS_CA_FILE", &other.path("ca.pem")),
    ])
    .await;
    assert!(
        why.contains("TLS to Redis failed") && why.contains("REDIS_CA_FILE"),
        "{why}"
    );
    assert!(why.contains("UnknownIssuer"), "{why}");

    // The system's roots do not know a private CA either.
    let why = refusal(&[("REDIS_URL", &url)]).await;
    assert!(why.contains("the system's roots"), "{why}");

    // The right CA, but the certificate names localhost, not 127.0.0.1: the host name counts.
    let by_address = format!("rediss://127.0.0.1:{tls_port}/");
    let why = refusal(&[
        ("REDIS_URL", &by_address),
        ("REDIS_CA_FILE", &ca.path("ca.pem")),
    ])
    .await;
    assert!(why.contains("not valid for name"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_needs_the_client_certificate_and_works_with_it() {
    let ca = TestCa::new();
    let (_redis, tls_port) = tls_redis(&ca, "yes");
    ca.issue("client", "extendedKeyUsage=clientAuth\n");
    let url = format!("rediss://localhost:{tls_port}/");
    let ca_file = ca.path("ca.pem");

    let why = refusal(&[("REDIS_URL", &url), ("REDIS_CA_FILE", &ca_file)]).await;
    assert!(why.contains("cannot use Redis"), "{why}");

    let app = spawn_with_settings(settings(&[
        ("REDIS_URL", &url),
        ("REDIS_CA_FILE", &ca_file),
        ("REDIS_CLIENT_CERT_FILE", &ca.path("client.pem")),
        ("REDIS_CLIENT_KEY_FILE", &ca.path("client.key")),
    ]))
    .await;
    let (_, tokens) = app.logged_in().await;
    assert_detail(
        &app.refresh_with_cookie(&tokens.refresh).await,
        200,
        REFRESHED,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_user_in_the_url_works_and_its_password_never_reaches_a_log() {
    let ca = TestCa::new();
    let (redis, tls_port) = tls_redis(&ca, "no");
    let password = format!("pw-{}", unique("acl"));
    let mut admin = redis_conn(&redis.url()).await;
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("refreshd")
        .arg("on")
        .arg(format!(">{password}"))
        // What the README says the user needs, and no more.
        .arg("~refreshd:*")
        .arg("+@read")
        .arg("+@write")
        .arg("+@scripting")
        .arg("+time")
        .arg("+ping")
        .arg("+info")
        .arg("+config|get")
        .arg("+wait")
        .query_async(&mut admin)
        .await
        .unwrap();
    // Nobody else gets in: the default user is off.
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("default")
        .arg("off")
        .query_async(&mut admin)
        .await
        .unwrap();
    let url = format!("rediss://refreshd:{password}@localhost:{tls_port}/");
    let ca_file = ca.path("ca.pem");
    let env = [
        ("REDIS_URL", url.as_str()),
        ("REDIS_CA_FILE", ca_file.as_str()),
        ("SIGNING_KEY", test_key()),
        ("RUST_LOG", "debug"),
    ];

    // The user commands go through the same TLS connection and ACL user.
    let name = unique("acl-user");
    let added = refreshd(&env, &["user", "add", &name], "pw-1234\n");
    assert!(added.status.success(), "{added:?}");
    let listed = refreshd(&env, &["user", "list"], "");
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&name));

    let server = ServerProcess::start(&env);
    let client = reqwest::Client::new();
    let login = Reply::read(
        client
            .post(server.url("/api/auth/login/"))
            .json(&serde_json::json!({"username": name, "password": "pw-1234"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    if login.status != 200 {
        server.signal("-TERM");
        panic!("{}", server.wait().1);
    }
    assert_detail(&login, 200, LOGGED_IN);
    let refreshed = Reply::read(
        client
            .post(server.url("/api/auth/token/refresh/"))
            .header(
                "cookie",
                format!("refresh_token={}", login.tokens().refresh),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_detail(&refreshed, 200, REFRESHED);
    let logout = client
        .post(server.url("/api/auth/logout/"))
        .header(
            "cookie",
            format!("refresh_token={}", refreshed.tokens().refresh),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 200);
    server.signal("-TERM");
    let (_, log) = server.wait();
    assert!(log.contains("using Redis"), "{log}");
    assert!(!log.contains("could not check"), "{log}");

    // A wrong password stops the start; the log says so without either password.
    let wrong = format!("rediss://refreshd:{password}-wrong@localhost:{tls_port}/");
    let failed = refreshd(
        &[
            ("REDIS_URL", wrong.as_str()),
            ("REDIS_CA_FILE", ca_file.as_str()),
            ("SIGNING_KEY", test_key()),
            ("BIND_ADDR", "127.0.0.1:0"),
            ("RUST_LOG", "debug"),
        ],
        &["serve"],
        "",
    );
    assert!(!failed.status.success());
    let failed_log = String::from_utf8_lossy(&failed.stderr).into_owned()
        + &String::from_utf8_lossy(&failed.stdout);
    assert!(failed_log.contains("cannot use Redis"), "{failed_log}");
    for text in [
        &log,
        &failed_log,
        &String::from_utf8_lossy(&added.stderr).into_owned(),
    ] {
        assert!(
            !text.contains(&password),
            "the password is in a log:\n{text}"
        );
    }
}

async fn status_of(url: &str) -> u16 {
    reqwest::get(url).await.unwrap().status().as_u16()
}

async fn config_set(redis: &RedisProcess, name: &str, value: &str) {
    let mut admin = redis_conn(&redis.url()).await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query_async(&mut admin)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicting_redis_stops_a_production_start_whatever_its_policy() {
    for policy in ["allkeys-lru", "volatile-lru"] {
        let redis = RedisProcess::start_with(
            true,
            &format!("--maxmemory 100mb --maxmemory-policy {policy}"),
        );
        let why = refusal(&[("APP_ENV", "production"), ("REDIS_URL", &redis.url())]).await;
        assert!(
            why.contains(&format!("maxmemory-policy {policy}")) && why.contains("noeviction"),
            "{why}"
        );
    }
    // noeviction with a limit is what production wants: it starts, and is ready.
    let redis = RedisProcess::start_with(true, "--maxmemory 100mb --maxmemory-policy noeviction");
    let app = spawn_with_settings(settings(&[
        ("APP_ENV", "production"),
        ("REDIS_URL", &redis.url()),
    ]))
    .await;
    assert_eq!(status_of(&app.url("/readyz")).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_production_an_evicting_redis_is_warned_about_and_not_ready_while_it_evicts() {
    // Not persistent either: appendonly no, no save points.
    let redis = RedisProcess::start_with(false, "--maxmemory 100mb --maxmemory-policy allkeys-lru");
    let url = redis.url();
    let server = ServerProcess::start(&[("REDIS_URL", &url), ("SIGNING_KEY", test_key())]);
    assert_eq!(status_of(&server.url("/readyz")).await, 503);
    config_set(&redis, "maxmemory-policy", "noeviction").await;
    assert_eq!(status_of(&server.url("/readyz")).await, 200);
    config_set(&redis, "maxmemory-policy", "volatile-lru").await;
    assert_eq!(status_of(&server.url("/readyz")).await, 503);
    config_set(&redis, "maxmemory", "0").await;
    assert_eq!(
        status_of(&server.url("/readyz")).await,
        200,
        "no limit, nothing evicted"
    );
    server.signal("-TERM");
    let (_, log) = server.wait();
    assert!(log.contains("maxmemory-policy allkeys-lru"), "{log}");
    assert!(log.contains("not ready: Redis evicts keys"), "{log}");
    assert!(log.contains("Redis keeps nothing on disk"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_config_get_is_not_allowed_the_start_warns_and_goes_on() {
    let redis = RedisProcess::start(true);
    let mut admin = redis_conn(&redis.url()).await;
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("app")
        .arg("on")
        .arg(">app-pw-123")
        .arg("~*")
        .arg("&*")
        .arg("+@all")
        .arg("-config")
        .query_async(&mut admin)
        .await
        .unwrap();
    let url = format!("redis://app:app-pw-123@127.0.0.1:{}/", redis.port);
    let server = ServerProcess::start(&[
        ("APP_ENV", "production"),
        ("REDIS_URL", &url),
        ("SIGNING_KEY", test_key()),
    ]);
    assert_eq!(status_of(&server.url("/readyz")).await, 200);
    server.signal("-TERM");
    let (_, log) = server.wait();
    assert!(
        log.contains("could not check Redis' maxmemory-policy"),
        "{log}"
    );
    assert!(!log.contains("app-pw-123"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_out_of_memory_under_noeviction_is_a_503_and_the_same_token_works_after() {
    let redis = RedisProcess::start_with(false, "--maxmemory-policy noeviction");
    let app = spawn_with_settings(settings(&[("REDIS_URL", &redis.url())])).await;
    let (user, tokens) = app.logged_in().await;
    config_set(&redis, "maxmemory", "1").await;

    let reply = app.refresh_with_cookie(&tokens.refresh).await;
    assert_detail(&reply, 503, UNAVAILABLE);
    assert_no_cookies(&reply);
    assert_detail(
        &app.login(user.username.as_str(), "pw-1234").await,
        503,
        UNAVAILABLE,
    );
    assert_eq!(
        app.metric("refreshd_refreshes_total{outcome=\"error\"}")
            .await,
        0,
        "an outage, not a bug"
    );

    // A script is refused before its first write or runs whole: nothing was half-done.
    config_set(&redis, "maxmemory", "0").await;
    assert_detail(
        &app.refresh_with_cookie(&tokens.refresh).await,
        200,
        REFRESHED,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_opening_its_connection_answers_within_one_store_timeout() {
    let redis = RedisProcess::start(false);
    let app = spawn_with_settings(settings(&[
        ("REDIS_URL", &redis.url()),
        ("STORE_TIMEOUT", "1s"),
    ]))
    .await;
    // The worker has served nothing yet: its connection is opened by this first request, and
    // Redis accepts the connection but never answers.
    redis.pause();
    let started = Instant::now();
    let reply = app.login("nobody", "pw").await;
    let took = started.elapsed();
    assert_detail(&reply, 503, UNAVAILABLE);
    assert!(
        took < Duration::from_millis(1500),
        "answered after {took:?}, more than STORE_TIMEOUT (1s) and its tolerance"
    );
    redis.resume();
    let (_, tokens) = app.logged_in().await;
    assert_detail(
        &app.refresh_with_cookie(&tokens.refresh).await,
        200,
        REFRESHED,
    );
}

/// `CLUSTER` subcommand on one node.
async fn cluster_cmd(conn: &mut redis::aio::MultiplexedConnection, args: &[&str]) -> redis::Value {
    redis::cmd("CLUSTER")
        .arg(args)
        .query_async(conn)
        .await
        .unwrap_or_else(|e| panic!("CLUSTER {args:?}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resharding_is_followed_within_the_deadline_not_answered_503() {
    let cluster = RedisCluster::start();
    let app = spawn_with_settings(settings(&[
        ("REDIS_CLUSTER_NODES", &cluster.urls()),
        ("STORE_TIMEOUT", "2s"),
    ]))
    .await;
    let (user, tokens) = app.logged_in().await;
    let user_key = format!("refreshd:{{u:{}}}:user", user.id.as_str());
    let from = cluster.node_of(&user_key);
    let to = (from + 1) % 3;
    let mut a = redis_conn(&cluster.nodes[from].url()).await;
    let mut b = redis_conn(&cluster.nodes[to].url()).await;
    let slot: i64 =
        redis::from_redis_value(cluster_cmd(&mut a, &["KEYSLOT", &user_key]).await).unwrap();
    let slot = slot.to_string();
    let id = |v: redis::Value| redis::from_redis_value::<String>(v).unwrap();
    let a_id = id(cluster_cmd(&mut a, &["MYID"]).await);
    let b_id = id(cluster_cmd(&mut b, &["MYID"]).await);

    // Half-way through a migration: the user's record has moved, its sessions not yet. A
    // refresh touches both, and Redis answers ASK and TRYAGAIN until the move is done.
    cluster_cmd(&mut b, &["SETSLOT", &slot, "IMPORTING", &a_id]).await;
    cluster_cmd(&mut a, &["SETSLOT", &slot, "MIGRATING", &b_id]).await;
    let migrate = |keys: Vec<String>| {
        let mut cmd = redis::cmd("MIGRATE");
        cmd.arg("127.0.0.1")
            .arg(cluster.nodes[to].port)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("KEYS")
            .arg(keys);
        cmd
    };
    let _: () = migrate(vec![user_key.clone()])
        .query_async(&mut a)
        .await
        .unwrap();
    let refresh = {
        let app_url = app.url("/api/auth/token/refresh/");
        let client = app.client.clone();
        let token = tokens.refresh.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let reply = client
                .post(app_url)
                .header("cookie", format!("refresh_token={token}"))
                .send()
                .await
                .unwrap();
            (Reply::read(reply).await, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rest: Vec<String> =
        redis::from_redis_value(cluster_cmd(&mut a, &["GETKEYSINSLOT", &slot, "1000"]).await)
            .unwrap();
    if !rest.is_empty() {
        let _: () = migrate(rest).query_async(&mut a).await.unwrap();
    }
    for node in &cluster.nodes {
        let mut c = redis_conn(&node.url()).await;
        cluster_cmd(&mut c, &["SETSLOT", &slot, "NODE", &b_id]).await;
    }
    let (reply, took) = refresh.await.unwrap();
    assert_detail(&reply, 200, REFRESHED);
    // It waited for the move (it could not succeed before) and answered within STORE_TIMEOUT.
    assert!(
        took > Duration::from_millis(250) && took < Duration::from_secs(2),
        "took {took:?}"
    );

    // And a slot that has simply moved (MOVED): followed.
    let next = reply.tokens().refresh;
    assert_detail(&app.refresh_with_cookie(&next).await, 200, REFRESHED);
}

/// Waits until the master reports `want` replicas online.
async fn until_replicas(master: &RedisProcess, want: u32) {
    let mut c = redis_conn(&master.url()).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut c)
            .await
            .unwrap();
        let online = info
            .lines()
            .filter(|l| l.starts_with("slave") && l.contains("state=online"))
            .count() as u32;
        if online == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{want} replica(s) never online:\n{info}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_min_replicas_a_write_no_replica_confirmed_is_a_503_and_the_retry_succeeds() {
    let master = RedisProcess::start(true);
    let mut replica =
        RedisProcess::start_with(false, &format!("--replicaof 127.0.0.1 {}", master.port));
    until_replicas(&master, 1).await;
    let app = spawn_with_settings(settings(&[
        ("REDIS_URL", &master.url()),
        ("REDIS_MIN_REPLICAS", "1"),
        ("STORE_TIMEOUT", "1s"),
    ]))
    .await;
    assert_eq!(status_of(&app.url("/readyz")).await, 200);
    let (user, tokens) = app.logged_in().await;
    let reply = app.refresh_with_cookie(&tokens.refresh).await;
    assert_detail(&reply, 200, REFRESHED);
    let successor = reply.tokens().refresh;

    // The replica goes: presenting the successor rotates on the master, but no replica holds
    // it, so the client is not told.
    replica.stop();
    until_replicas(&master, 0).await;
    let started = Instant::now();
    let reply = app.refresh_with_cookie(&successor).await;
    assert_detail(&reply, 503, UNAVAILABLE);
    assert_no_cookies(&reply);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_detail(
        &app.login(user.username.as_str(), "pw-1234").await,
        503,
        UNAVAILABLE,
    );
    assert_eq!(status_of(&app.url("/readyz")).await, 503);

    // Back: the retry with the very same token succeeds (SPEC 4), and the chain goes on.
    replica.restart();
    until_replicas(&master, 1).await;
    assert_eq!(status_of(&app.url("/readyz")).await, 200);
    let reply = app.refresh_with_cookie(&successor).await;
    assert_detail(&reply, 200, REFRESHED);
    let next = reply.tokens().refresh;
    assert_detail(&app.refresh_with_cookie(&next).await, 200, REFRESHED);
    // The replica holds the session as the client knows it.
    let mut on_replica = redis_conn(&replica.url()).await;
    let (record, _) = crate::redis_layout::record_of(&mut on_replica, &next).await;
    let current = record.and_then(|r| r.current);
    assert_eq!(
        current.as_ref().map(|jti| jti.as_str()),
        claims_of(&next)["jti"].as_str(),
        "the replica has the rotation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshd_starts_with_too_few_replicas_and_is_not_ready() {
    let master = RedisProcess::start(true);
    let app = spawn_with_settings(settings(&[
        ("REDIS_URL", &master.url()),
        ("REDIS_MIN_REPLICAS", "1"),
        ("STORE_TIMEOUT", "500ms"),
    ]))
    .await;
    assert_eq!(status_of(&app.url("/readyz")).await, 503);
    let _replica =
        RedisProcess::start_with(false, &format!("--replicaof 127.0.0.1 {}", master.port));
    until_replicas(&master, 1).await;
    assert_eq!(status_of(&app.url("/readyz")).await, 200);
    let (_, tokens) = app.logged_in().await;
    assert_detail(
        &app.refresh_with_cookie(&tokens.refresh).await,
        200,
        REFRESHED,
    );
}

/// `SENTINEL master <name>` as a map.
async fn sentinel_view(
    sentinel: &RedisProcess,
    name: &str,
) -> std::collections::HashMap<String, String> {
    let mut c = redis_conn(&format!(
        "redis://:{SENTINEL_PW}@127.0.0.1:{}/",
        sentinel.port
    ))
    .await;
    redis::cmd("SENTINEL")
        .arg("MASTER")
        .arg(name)
        .query_async(&mut c)
        .await
        .unwrap_or_default()
}

/// The sentinels' own password, and the data nodes' ACL user.
const SENTINEL_PW: &str = "sentinel-pw-1";
const DATA_USER: &str = "--user app on '>data-pw-1' '~*' '&*' '+@all'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_under_load_gives_only_200s_and_503s_and_keeps_every_chain() {
    let name = "refreshd-test";
    let master = RedisProcess::start_with(false, DATA_USER);
    let replicas: Vec<RedisProcess> = (0..2)
        .map(|_| {
            RedisProcess::start_with(
                false,
                &format!("--replicaof 127.0.0.1 {} {DATA_USER}", master.port),
            )
        })
        .collect();
    until_replicas(&master, 2).await;
    let config = format!(
        "sentinel monitor {name} 127.0.0.1 {} 2\nsentinel down-after-milliseconds {name} 1000\nsentinel failover-timeout {name} 3000\nsentinel parallel-syncs {name} 2\nrequirepass {SENTINEL_PW}\nsentinel sentinel-pass {SENTINEL_PW}\n",
        master.port
    );
    let sentinels: Vec<RedisProcess> = (0..3)
        .map(|_| RedisProcess::start_sentinel(&config))
        .collect();
    // Each sentinel knows the others and both replicas before the master goes.
    let deadline = Instant::now() + Duration::from_secs(15);
    for s in &sentinels {
        loop {
            let view = sentinel_view(s, name).await;
            if view.get("num-other-sentinels").map(String::as_str) == Some("2")
                && view.get("num-slaves").map(String::as_str) == Some("2")
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the sentinels never met: {view:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let addrs = sentinels
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port))
        .collect::<Vec<_>>()
        .join(",");
    let app = std::sync::Arc::new(
        spawn_with_settings(settings(&[
            ("REDIS_SENTINELS", &addrs),
            ("REDIS_SENTINEL_MASTER", name),
            ("REDIS_SENTINEL_PASSWORD", SENTINEL_PW),
            // The data nodes' user and password; host and port come from the sentinels.
            ("REDIS_URL", "redis://app:data-pw-1@unused:1/0"),
            ("REDIS_MIN_REPLICAS", "1"),
            ("STORE_TIMEOUT", "1s"),
            ("WORKERS", "2"),
        ]))
        .await,
    );
    // refreshd is on the master as the ACL user the template names.
    let mut on_master = redis_conn(&master.url()).await;
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut on_master)
        .await
        .unwrap();
    assert!(clients.contains("user=app"), "{clients}");
    let mut chains = Vec::new();
    for _ in 0..6 {
        chains.push(app.logged_in().await.1.refresh);
    }

    // Each chain refreshes as a client would: a 200 moves it on, a 503 retries the same token.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killed_at = std::sync::Arc::new(std::sync::Mutex::new(None::<Instant>));
    let load = chains.into_iter().map(|mut token| {
        let (app, stop, killed_at) = (app.clone(), stop.clone(), killed_at.clone());
        tokio::spawn(async move {
            let (mut ok_after_kill, mut statuses) = (None, std::collections::BTreeMap::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let sent = Instant::now();
                let reply = app.refresh_with_cookie(&token).await;
                *statuses.entry(reply.status).or_insert(0u32) += 1;
                match reply.status {
                    200 => {
                        token = reply.tokens().refresh;
                        let killed = *killed_at.lock().unwrap();
                        if let Some(k) = killed
                            && sent > k
                            && ok_after_kill.is_none()
                        {
                            ok_after_kill = Some(sent - k);
                        }
                    }
                    503 => tokio::time::sleep(Duration::from_millis(50)).await,
                    other => panic!("a refresh answered {other}: {}", reply.text),
                }
            }
            (token, ok_after_kill, statuses)
        })
    });
    let load: Vec<_> = load.collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    master.stop();
    *killed_at.lock().unwrap() = Some(Instant::now());
    // The sentinels promote a replica; the load runs on for a while after that.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let view = sentinel_view(&sentinels[0], name).await;
        if view.get("port") != Some(&master.port.to_string()) {
            break;
        }
        assert!(Instant::now() < deadline, "no failover: {view:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = std::collections::BTreeMap::new();
    for task in load {
        let (token, ok_after_kill, statuses) = task.await.unwrap();
        for (status, n) in statuses {
            *total.entry(status).or_insert(0) += n;
        }
        let back = ok_after_kill.expect("a chain never worked again after the kill");
        eprintln!("a chain worked again {back:?} after the kill");
        assert!(
            back < Duration::from_secs(15),
            "working again only after {back:?}"
        );
        // Intact: the chain's newest token refreshes (a 503 is retried, as a client would).
        let mut reply = app.refresh_with_cookie(&token).await;
        for _ in 0..50 {
            if reply.status != 503 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            reply = app.refresh_with_cookie(&token).await;
        }
        assert_detail(&reply, 200, REFRESHED);
    }
    assert!(total.keys().all(|s| *s == 200 || *s == 503), "{total:?}");
    eprintln!("statuses during the failover: {total:?}");

    // The user commands find the new master through the sentinels too.
    let listed = refreshd(
        &[
            ("REDIS_SENTINELS", addrs.as_str()),
            ("REDIS_SENTINEL_MASTER", name),
            ("REDIS_SENTINEL_PASSWORD", SENTINEL_PW),
            ("REDIS_URL", "redis://app:data-pw-1@unused:1/0"),
        ],
        &["user", "list"],
        "",
    );
    assert!(listed.status.success(), "{listed:?}");
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("user"),
        "{listed:?}"
    );
    drop(replicas);
}

/// A loopback proxy to `port` that holds each of the server's answers for `delay`: a Redis that
/// answers every call, slowly.
async fn slow_proxy(port: u16, delay: Duration) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
            });
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = server_read.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    tokio::time::sleep(delay).await;
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    proxy_port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_operation_of_several_calls_answers_within_one_store_timeout() {
    use refreshd::domain::Username;
    use refreshd::store::{RedisStore, StoreError, UserStore};
    let redis = RedisProcess::start(false);
    let port = slow_proxy(redis.port, Duration::from_millis(400)).await;
    let store = RedisStore::connect(
        &format!("redis://127.0.0.1:{port}/"),
        Duration::from_secs(1),
    )
    .await
    .unwrap();
    // Each call answers in 400 ms, well within STORE_TIMEOUT; a username lookup takes two, and
    // adding a user four: together, too long.
    let started = Instant::now();
    let found = store
        .user_by_username(&Username::parse("nobody").unwrap())
        .await;
    let took = started.elapsed();
    assert_eq!(found, Ok(None), "two calls fit in one deadline");
    let started = Instant::now();
    let user = refreshd::auth::new_user(Username::parse(&unique("slow")).unwrap(), "pw", None);
    let added = store.add_user(&user).await;
    let took_add = started.elapsed();
    assert!(
        matches!(added, Err(StoreError::Unavailable(_))),
        "{added:?}"
    );
    assert!(
        took < Duration::from_millis(1100) && took_add < Duration::from_millis(1300),
        "a lookup took {took:?}, an add {took_add:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_over_tls_is_verified_and_serves_refreshes() {
    let ca = TestCa::new();
    ca.issue(
        "server",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
    );
    let tls_ports = std::sync::Mutex::new(Vec::new());
    let cluster = RedisCluster::start_with(|| {
        let port = free_port();
        tls_ports.lock().unwrap().push(port);
        format!(
            "--tls-port {port} --tls-cluster yes --tls-cert-file '{}' --tls-key-file '{}' --tls-ca-cert-file '{}' --tls-auth-clients no",
            ca.path("server.pem"),
            ca.path("server.key"),
            ca.path("ca.pem"),
        )
    });
    let nodes = tls_ports
        .lock()
        .unwrap()
        .iter()
        .map(|p| format!("rediss://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let other = TestCa::new();
    let why = refusal(&[
        ("REDIS_CLUSTER_NODES", &nodes),
        ("REDIS_CA_FILE", &other.path("ca.pem")),
    ])
    .await;
    assert!(why.contains("TLS to Redis failed"), "{why}");

    let app = spawn_with_settings(settings(&[
        ("REDIS_CLUSTER_NODES", &nodes),
        ("REDIS_CA_FILE", &ca.path("ca.pem")),
    ]))
    .await;
    for _ in 0..3 {
        let (_, tokens) = app.logged_in().await;
        assert_detail(
            &app.refresh_with_cookie(&tokens.refresh).await,
            200,
            REFRESHED,
        );
    }
    drop(cluster);
}

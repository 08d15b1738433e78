//! Running it: readiness, metrics, graceful shutdown, logs that never carry a token, check-config.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn readyz_follows_the_store() {
    let app = spawn_app(Backend::Memory).await;
    let reply = Reply::read(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(
        (reply.status, reply.json.clone()),
        (200, json!({"status": "ready"}))
    );

    let mut redis = RedisProcess::start(false);
    let app = spawn_app_with(
        Backend::Redis,
        &[("REDIS_URL", &redis.url()), ("STORE_TIMEOUT", "500ms")],
    )
    .await;
    let ready =
        || async { Reply::read(app.client.get(app.url("/readyz/")).send().await.unwrap()).await };
    assert_eq!(ready().await.status, 200);
    redis.stop();
    let started = Instant::now();
    assert_detail(&ready().await, 503, UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(3));
    // Liveness is not readiness: the process is still alive.
    assert_eq!(
        Reply::read(app.client.get(app.url("/healthz")).send().await.unwrap())
            .await
            .status,
        200
    );
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(5);
    while ready().await.status != 200 {
        assert!(
            Instant::now() < deadline,
            "not ready again after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn metrics_text(app: &TestApp) -> String {
    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    resp.text().await.unwrap()
}

fn metric(text: &str, series: &str) -> u64 {
    metric_in(text, series)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_refreshes_and_logins_by_outcome_and_time_routes_and_store_calls() {
    let app = spawn_app_with(Backend::Redis, &[("REFRESH_TOKEN_REUSE_INTERVAL", "1s")]).await;
    let (user, t0) = app.logged_in().await;
    assert_eq!(app.login(user.username.as_str(), "wrong").await.status, 401);
    let t1 = app.refresh_with_cookie(&t0.refresh).await.tokens(); // ok
    app.refresh_with_cookie(&t0.refresh).await; // grace_replay
    app.post_json("/api/token/refresh/", &json!({"refresh": t1.refresh}))
        .await; // ok (JSON API)
    app.refresh_with_cookie("garbage").await; // invalid
    app.post_with_cookie("/api/auth/token/refresh/", "").await; // missing
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.refresh_with_cookie(&t0.refresh).await; // reuse_revoked
    let (other, t) = app.logged_in().await;
    app.store
        .set_user_active(&other.username, false)
        .await
        .unwrap();
    app.refresh_with_cookie(&t.refresh).await; // invalid_user

    let text = metrics_text(&app).await;
    for (outcome, n) in [
        ("ok", 2),
        ("grace_replay", 1),
        ("reuse_revoked", 1),
        ("invalid", 1),
        ("invalid_user", 1),
        ("missing", 1),
        ("store_unavailable", 0),
        ("error", 0),
    ] {
        assert_eq!(
            metric(
                &text,
                &format!("refreshd_refreshes_total{{outcome=\"{outcome}\"}}")
            ),
            n,
            "{outcome}"
        );
    }
    assert_eq!(metric(&text, "refreshd_logins_total{outcome=\"ok\"}"), 2);
    assert_eq!(
        metric(
            &text,
            "refreshd_logins_total{outcome=\"invalid_credentials\"}"
        ),
        1
    );
    assert_eq!(
        metric(
            &text,
            "refreshd_request_duration_seconds_count{route=\"cookie.refresh\"}"
        ),
        6
    );
    assert_eq!(
        metric(
            &text,
            "refreshd_request_duration_seconds_count{route=\"token.refresh\"}"
        ),
        1
    );
    assert!(metric(&text, "refreshd_store_call_duration_seconds_count") >= 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_request_finish_and_exits_zero() {
    for signal in ["-TERM", "-INT"] {
        let server = ServerProcess::start(&[]);
        // A login whose body is still arriving when the signal comes.
        let body = br#"{"username":"demo","password":"demo"}"#;
        let mut conn = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        write!(
            conn,
            "POST /api/auth/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        conn.write_all(&body[..10]).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        server.signal(signal);
        std::thread::sleep(Duration::from_millis(300));
        // New connections are no longer accepted...
        assert!(
            TcpStream::connect(("127.0.0.1", server.port)).is_err()
                || reqwest::get(server.url("/healthz")).await.is_err(),
            "still accepting after {signal}"
        );
        // ...but the request in flight completes.
        conn.write_all(&body[10..]).unwrap();
        let mut status = String::new();
        BufReader::new(&conn).read_line(&mut status).unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{signal}: {status:?}");
        drop(conn);
        let (exit, log) = server.wait();
        assert!(exit.success(), "{signal}: exit {exit:?}\n{log}");
    }
}

#[test]
fn a_request_that_outlasts_the_shutdown_timeout_is_cut_off_and_the_exit_is_still_zero() {
    let server = ServerProcess::start(&[("SHUTDOWN_TIMEOUT", "1s")]);
    // A body that never finishes arriving.
    let mut conn = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    write!(
        conn,
        "POST /api/auth/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"user"
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    server.signal("-TERM");
    let (exit, log) = server.wait();
    let took = signalled.elapsed();
    assert!(exit.success(), "exit {exit:?}\n{log}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "stopped {took:?} after SIGTERM with a 1 s bound"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_of_a_whole_session_holds_no_token_cookie_or_authorization_value() {
    // On the in-process store, and on Redis, whose client library logs at trace level too.
    the_log_of_a_whole_session_is_clean(&[]).await;
    let redis = RedisProcess::start(false);
    add_user_by_cli(&redis.url(), "demo", "demo");
    the_log_of_a_whole_session_is_clean(&[("REDIS_URL", &redis.url())]).await;
}

async fn the_log_of_a_whole_session_is_clean(store: &[(&str, &str)]) {
    let mut env = vec![("RUST_LOG", "trace"), ("LOG_FORMAT", "json")];
    env.extend_from_slice(store);
    let server = ServerProcess::start(&env);
    let client = reqwest::Client::new();
    let login = Reply::read(
        client
            .post(server.url("/api/auth/login/"))
            .json(&json!({"username": "demo", "password": "demo"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let t0 = login.tokens();
    let t1 = Reply::read(
        client
            .post(server.url("/api/auth/token/refresh/"))
            .header("cookie", format!("refresh_token={}", t0.refresh))
            .send()
            .await
            .unwrap(),
    )
    .await
    .tokens();
    let me = client
        .get(server.url("/api/auth/me/?token=not-logged-either"))
        .header("authorization", format!("Bearer {}", t1.access))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let logout = client
        .post(server.url("/api/auth/logout/"))
        .json(&json!({"refresh": t1.refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 200);
    server.signal("-TERM");
    let (exit, log) = server.wait();
    assert!(exit.success());

    let on_redis = store.iter().any(|(k, _)| *k == "REDIS_URL");
    assert_eq!(log.contains("using Redis at REDIS_URL"), on_redis, "{log}");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not a JSON line: {l}")))
        .collect();
    let requests: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["msg"].as_str())
        .filter(|m| m.contains("\"POST ") || m.contains("\"GET "))
        .collect();
    assert_eq!(requests.len(), 4, "one line per request:\n{log}");
    assert!(
        requests
            .iter()
            .any(|m| m.contains("\"POST /api/auth/token/refresh/\" 200")),
        "{requests:?}"
    );
    for secret in [&t0.access, &t0.refresh, &t1.access, &t1.refresh] {
        assert!(!log.contains(secret.as_str()), "a token is in the log");
        let signature = secret.rsplit('.').next().unwrap();
        assert!(!log.contains(signature), "a token signature is in the log");
    }
    for needle in [
        "eyJ",
        "Bearer",
        "refresh_token=",
        "access_token=",
        "not-logged-either",
    ] {
        assert!(!log.contains(needle), "{needle:?} is in the log:\n{log}");
    }
}

#[test]
fn check_config_prints_the_effective_settings_without_secrets() {
    let run = |env: &[(&str, &str)]| {
        Command::new(env!("CARGO_BIN_EXE_refreshd"))
            .arg("check-config")
            .env_clear()
            .envs(env.iter().copied())
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap()
    };
    let ok = run(&[
        ("SIGNING_KEY", "a-very-secret-signing-key-0123456789"),
        ("REDIS_URL", "redis://u:hunter2@cache:6379/0"),
    ]);
    assert!(ok.status.success());
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(out.contains("SIGNING_KEY=(set, 36 bytes)"), "{out}");
    assert!(
        out.contains("REDIS_URL=redis://u:***@cache:6379/0"),
        "{out}"
    );
    assert!(out.contains("ACCESS_TOKEN_LIFETIME=15m"), "{out}");
    assert!(!out.contains("a-very-secret") && !out.contains("hunter2"));

    let bad = run(&[
        ("COOKIE_SAMESITE", "None"),
        ("LEEWAY", "a while"),
        ("BIND_ADDR", "localhost"),
        ("SIGNING_KEY", "a-very-secret-signing-key-0123456789"),
    ]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("COOKIE_SAMESITE=None") && err.contains("LEEWAY"),
        "{err}"
    );
    assert!(
        err.contains("BIND_ADDR=localhost: expected host:port such as 127.0.0.1:8000"),
        "{err}"
    );
    // A refused configuration still shows what was read, secrets redacted, as the README says.
    let out = String::from_utf8_lossy(&bad.stdout);
    assert!(out.contains("BIND_ADDR=localhost\n"), "{out}");
    assert!(out.contains("COOKIE_SAMESITE=None\n"), "{out}");
    assert!(out.contains("SIGNING_KEY=(set, 36 bytes)"), "{out}");
    assert!(!out.contains("a-very-secret") && !err.contains("a-very-secret"));
}

#[test]
fn a_bad_bind_addr_is_the_first_thing_the_server_says() {
    let out = Command::new(env!("CARGO_BIN_EXE_refreshd"))
        .env_clear()
        .env("BIND_ADDR", "localhost")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("refreshd: invalid configuration:\n  - BIND_ADDR=localhost: expected host:port such as 127.0.0.1:8000"),
        "{err}"
    );
    assert!(!err.contains("demo user"), "nothing is set up first: {err}");
}

#[tokio::test]
async fn localhost_and_a_port_is_a_bind_addr() {
    let app = spawn_app_with(Backend::Memory, &[("BIND_ADDR", "localhost:0")]).await;
    let reply = Reply::read(app.client.get(app.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn with_metrics_addr_metrics_leave_the_public_listener_for_the_private_one() {
    let settings = settings_with(Backend::Memory, &[("METRICS_ADDR", "127.0.0.1:0")]);
    let app = refreshd::startup::Application::build(settings)
        .await
        .expect("the application builds");
    let public = format!("http://127.0.0.1:{}", app.port());
    let private = format!(
        "http://127.0.0.1:{}",
        app.metrics_port().expect("a private listener")
    );
    let handle = app.handle();
    let running = tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let get = |url: String| {
        let client = client.clone();
        async move { Reply::read(client.get(url).send().await.unwrap()).await }
    };

    // Public: the API and health as ever, /metrics is not there.
    assert_detail(&get(format!("{public}/metrics")).await, 404, NOT_FOUND);
    assert_detail(&get(format!("{public}/metrics/")).await, 404, NOT_FOUND);
    assert_eq!(get(format!("{public}/healthz")).await.status, 200);
    let openapi = get(format!("{public}/openapi.json")).await;
    assert!(
        openapi.json["paths"].get("/metrics").is_none(),
        "not documented where it is not served"
    );
    assert!(openapi.json["paths"].get("/healthz").is_some());
    assert_eq!(get(format!("{public}/readyz")).await.status, 200);
    let login = Reply::read(
        client
            .post(format!("{public}/api/auth/login/"))
            .json(&json!({"username": "demo", "password": "demo"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_detail(&login, 200, LOGGED_IN);

    // Private: metrics (counting the public traffic) and readiness, and nothing of the API.
    let metrics = get(format!("{private}/metrics")).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metric_in(&metrics.text, "refreshd_logins_total{outcome=\"ok\"}") >= 1,
        "{}",
        metrics.text
    );
    assert_eq!(
        get(format!("{private}/readyz")).await.json,
        json!({"status": "ready"})
    );
    assert_detail(
        &get(format!("{private}/api/auth/me/")).await,
        404,
        NOT_FOUND,
    );
    assert_detail(&get(format!("{private}/")).await, 404, NOT_FOUND);

    // Stopping the server stops both listeners.
    handle.stop(true).await;
    running.await.unwrap().unwrap();
    assert!(
        std::net::TcpStream::connect(private.trim_start_matches("http://")).is_err(),
        "the private listener outlived the server"
    );
}

#[test]
fn dotenv_and_secret_files_are_read_and_the_real_environment_wins() {
    let dir = std::env::temp_dir().join(unique("refreshd-dotenv"));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("signing-key");
    std::fs::write(&key_file, "a-key-from-a-docker-secret-0123456789\n").unwrap();
    std::fs::write(
        dir.join(".env"),
        format!(
            "# as in .env.example\nACCESS_TOKEN_LIFETIME=5m\nCOOKIE_DOMAIN=from-dotenv.example\nSIGNING_KEY_FILE={}\n",
            key_file.display()
        ),
    )
    .unwrap();
    let run = |env: &[(&str, &str)]| {
        Command::new(env!("CARGO_BIN_EXE_refreshd"))
            .arg("check-config")
            .env_clear()
            .envs(env.iter().copied())
            .current_dir(&dir)
            .output()
            .unwrap()
    };
    // The effective settings, from a run that found no problem.
    let passing = |env: &[(&str, &str)]| {
        let out = run(env);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let text = passing(&[("ACCESS_TOKEN_LIFETIME", "7m")]);
    assert!(
        text.contains("ACCESS_TOKEN_LIFETIME=7m"),
        "the real variable wins: {text}"
    );
    assert!(text.contains("COOKIE_DOMAIN=from-dotenv.example"), "{text}");
    assert!(text.contains("SIGNING_KEY=(set, 37 bytes)"), "{text}");
    assert!(!text.contains("docker-secret"), "{text}");

    // The other secrets in files: a Redis URL with a password, and an ES256 key pair.
    let (private, public) =
        refreshd::tokens::keys::generate(refreshd::config::Algorithm::ES256).unwrap();
    let redis_file = dir.join("redis-url");
    std::fs::write(&redis_file, "redis://app:s3cret-pw@cache:6379/2\n").unwrap();
    let private_file = dir.join("es256.pem");
    std::fs::write(&private_file, private).unwrap();
    let public_file = dir.join("es256.pub.pem");
    std::fs::write(&public_file, public.unwrap()).unwrap();
    let text = passing(&[
        ("REDIS_URL_FILE", redis_file.to_str().unwrap()),
        ("ALGORITHM", "ES256"),
        ("SIGNING_KEY_FILE", private_file.to_str().unwrap()),
        ("VERIFYING_KEY_FILE", public_file.to_str().unwrap()),
    ]);
    assert!(
        text.contains("REDIS_URL=redis://app:***@cache:6379/2"),
        "{text}"
    );
    assert!(text.contains("ALGORITHM=ES256"), "{text}");
    assert!(text.contains("# no problems found"), "{text}");
    assert!(
        !text.contains("s3cret-pw") && !text.contains("PRIVATE KEY"),
        "{text}"
    );
    // The verifying key really is read from its file: another key's public half is refused.
    let (_, other) = refreshd::tokens::keys::generate(refreshd::config::Algorithm::ES256).unwrap();
    std::fs::write(&public_file, other.unwrap()).unwrap();
    let out = run(&[
        ("ALGORITHM", "ES256"),
        ("SIGNING_KEY_FILE", private_file.to_str().unwrap()),
        ("VERIFYING_KEY_FILE", public_file.to_str().unwrap()),
    ]);
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // A .env that cannot be read whole stops start-up instead of half-configuring it.
    std::fs::write(
        dir.join(".env"),
        "ACCESS_TOKEN_LIFETIME=5m\nthis line is not a setting\n",
    )
    .unwrap();
    let out = run(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refreshd: .env:"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_up_log_says_what_mode_the_server_is_in() {
    let says = |log: &str| {
        [
            "using a random development key",
            "using the in-process store",
            "demo user created: username \"demo\", password \"demo\"",
            "using Redis at REDIS_URL",
            "refreshd listening: open http://127.0.0.1:",
        ]
        .map(|line| log.contains(line))
    };
    // Zero configuration: a development key, the in-process store and the demo user. The
    // SIGTERM comes as soon as the first request is answered, which may be before the server has
    // set up its own signal handling: it still drains and exits 0, because the signals were
    // caught before the port was bound.
    let server = ServerProcess::start(&[]);
    assert_eq!(
        reqwest::get(server.url("/healthz")).await.unwrap().status(),
        200
    );
    server.signal("-TERM");
    let (exit, log) = server.wait();
    assert!(exit.success(), "{exit:?}\n{log}");
    assert_eq!(says(&log), [true, true, true, false, true], "{log}");

    // A key and a Redis: none of that.
    let redis = RedisProcess::start(false);
    let server = ServerProcess::start(&[
        ("REDIS_URL", &redis.url()),
        ("SIGNING_KEY", "a-real-signing-key-0123456789-0123456789"),
    ]);
    server.signal("-TERM");
    let (_, log) = server.wait();
    assert_eq!(says(&log), [false, false, false, true, true], "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_host_only_cookies_without_the_host_prefix_are_pointed_at_it_in_the_start_up_log() {
    let log_of = |env: &[(&str, &str)]| {
        let server = ServerProcess::start(env);
        server.signal("-TERM");
        server.wait().1
    };
    const ADVICE: &str = "COOKIE_SECURE=true and no COOKIE_DOMAIN: consider __Host- cookie names";
    let log = log_of(&[("COOKIE_SECURE", "true")]);
    assert!(log.contains(ADVICE), "{log}");
    assert!(
        log.contains("ACCESS_COOKIE_NAME=__Host-access_token")
            && log.contains("REFRESH_COOKIE_NAME=__Host-refresh_token"),
        "{log}"
    );
    // Nothing to recommend: prefixed already, a Domain (which __Host- forbids), or no Secure.
    for env in [
        &[
            ("COOKIE_SECURE", "true"),
            ("ACCESS_COOKIE_NAME", "__Host-access"),
            ("REFRESH_COOKIE_NAME", "__host-refresh"),
        ][..],
        &[("COOKIE_SECURE", "true"), ("COOKIE_DOMAIN", "example.com")],
        &[],
    ] {
        let log = log_of(env);
        assert!(!log.contains("__Host-"), "{env:?}: {log}");
    }
}

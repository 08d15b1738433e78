//! refreshd-bench: the load tool behind BENCHMARKS.md. Two ways to drive a server:
//! - `--api cookie` (the default): it starts a Redis (or uses --redis-url), the release `refreshd`
//!   binary beside it and a bare actix-web baseline that answers a fixed JSON body, loads sessions
//!   straight into the store before the timed window, then fires each refresh token exactly once
//!   at C keep-alive connections and reports throughput, latency percentiles, status counts, Redis
//!   commands per refresh and the server's RSS, with every ratio taken against the baseline in the
//!   same run.
//! - `--api simplejwt`: it starts nothing; it drives servers already running (refreshd, or
//!   djangorestframework-simplejwt itself, see scripts/peer-bench) through the SimpleJWT JSON API,
//!   logging sessions in over HTTP first, then each connection follows its own rotation chain for
//!   a fixed time, and prints one table of every target at every connection count.
//!
//! It depends on the `refreshd` library only to load sessions in the cookie mode; nothing in the
//! server depends on it.
//!
//! `cargo build --release --workspace && ./target/release/refreshd-bench --help`

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use refreshd::auth::{self, AuthService, Requester};
use refreshd::config::Settings;
use refreshd::domain::Username;
use refreshd::store::{RedisStore, Store};
use refreshd::tokens::TokenCodec;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use client::{RunResult, read_response};

mod client;
mod simplejwt;

const SIGNING_KEY: &str = "refreshd-bench-signing-key-0123456789-0123456789";

#[derive(Parser)]
#[command(
    about = "Load-test refreshd's refresh route against a bare actix-web baseline, or running servers through the SimpleJWT API"
)]
struct Args {
    /// Which API is driven: `cookie` (refreshd's cookie API, on a refreshd and a bare baseline
    /// this tool starts) or `simplejwt` (the SimpleJWT JSON API of the running servers named by
    /// --target).
    #[arg(long, value_enum, default_value_t = Api::Cookie)]
    api: Api,
    /// With --api simplejwt: a running server, as NAME=URL where URL is its SimpleJWT prefix
    /// (`http://127.0.0.1:8000/api` for `<URL>/token/` and `<URL>/token/refresh/`). Repeat it;
    /// ratios are taken against the first.
    #[arg(long = "target", value_name = "NAME=URL")]
    targets: Vec<simplejwt::Target>,
    /// With --api simplejwt: the processes whose CPU time counts against a target, as
    /// NAME=PID[,PID...], each with its descendants (the server, its database). Repeatable.
    #[arg(long, value_name = "NAME=PIDS")]
    cpu: Vec<simplejwt::CpuOf>,
    /// With --api simplejwt: seconds each target is driven at each connection count.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// With --api simplejwt: the users, which must exist on every target, are
    /// `<user-prefix>0` to `<user-prefix><users - 1>`, all with this password.
    #[arg(long, default_value = "bench-")]
    user_prefix: String,
    /// With --api simplejwt: the users' password.
    #[arg(long, default_value = "bench-password")]
    password: String,
    /// The refreshd binary the cookie API mode starts (by default the one beside this tool).
    #[arg(long)]
    refreshd: Option<PathBuf>,
    /// Connection counts to run, comma-separated.
    #[arg(long, default_value = "32,64", value_delimiter = ',')]
    connections: Vec<usize>,
    /// Refresh tokens fired per run (each exactly once).
    #[arg(long, default_value_t = 100_000)]
    requests: usize,
    /// What is fired: `cookie` (a refresh, token in its cookie), `body` (a refresh, token in the
    /// JSON body) or `me` (GET /api/auth/me/ with the access cookie: the access-token check with
    /// its store look-up, each session's access token once).
    #[arg(long, default_value = "cookie")]
    mode: String,
    /// Which refresh token of each session is fired: `successor` (the session was refreshed once
    /// before the timed window, and its pending successor is presented: the steady-state path
    /// that promotes it and retires its parent) or `login` (the login's own token: the first
    /// refresh of a session, which issues its pending successor).
    #[arg(long, default_value = "successor")]
    fire: String,
    /// HTTP workers of both servers.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Use this Redis instead of starting one.
    #[arg(long)]
    redis_url: Option<String>,
    /// Logins per second sent alongside the refreshes (argon2 must not starve them).
    #[arg(long, default_value_t = 0)]
    logins_per_sec: u32,
    /// Refresh this many sessions in all (in batches of --requests) and report the RSS after.
    #[arg(long)]
    soak: Option<usize>,
    /// Or soak for this many seconds.
    #[arg(long)]
    soak_seconds: Option<u64>,
    /// Pace the soak at this many refreshes per second in all (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Turn the server's metrics off (METRICS=false).
    #[arg(long)]
    no_metrics: bool,
    /// Spread the sessions over this many users (each user's keys share one hash slot and one
    /// session index, so one user with every session is not a realistic load). With --api
    /// simplejwt, this many users exist on the targets.
    #[arg(long, default_value_t = 1000)]
    users: usize,
    /// Internal: serve the bare baseline on this port.
    #[arg(long, hide = true)]
    baseline_server: Option<u16>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Api {
    Cookie,
    Simplejwt,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// The token a mode sends: the access token for `me`, else the refresh token.
fn pick<'a>(mode: &str, (refresh, access): &'a (String, String)) -> &'a str {
    if mode == "me" { access } else { refresh }
}

/// One request's bytes.
fn request(mode: &str, path: &str, token: Option<&str>) -> Vec<u8> {
    match (mode, token) {
        ("me", Some(t)) => format!(
            "GET /api/auth/me/ HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: access_token={t}\r\n\r\n"
        ),
        ("body", Some(t)) => {
            let body = format!("{{\"refresh\":\"{t}\"}}");
            format!(
                "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        }
        (_, Some(t)) => format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: refresh_token={t}\r\nContent-Length: 0\r\n\r\n"
        ),
        (_, None) => format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"),
    }
    .into_bytes()
}

/// Sends `requests` over `connections` keep-alive connections, each request once.
async fn run(port: u16, connections: usize, requests: Vec<Vec<u8>>) -> RunResult {
    run_paced(port, connections, requests, 0).await
}

/// Like `run`, at about `rate` requests per second in all when `rate` is not 0.
async fn run_paced(port: u16, connections: usize, requests: Vec<Vec<u8>>, rate: u64) -> RunResult {
    let per = requests.len().div_ceil(connections);
    let mut chunks: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut it = requests.into_iter();
    for _ in 0..connections {
        chunks.push(it.by_ref().take(per).collect());
    }
    let started = Instant::now();
    let tasks: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            tokio::spawn(async move {
                let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                let mut body = Vec::new();
                let mut out = Vec::with_capacity(chunk.len());
                let mut pace = (rate > 0).then(|| {
                    let mut t = tokio::time::interval(Duration::from_secs_f64(
                        connections as f64 / rate as f64,
                    ));
                    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    t
                });
                for req in chunk {
                    if let Some(pace) = pace.as_mut() {
                        pace.tick().await;
                    }
                    let t = Instant::now();
                    reader.get_mut().write_all(&req).await.unwrap();
                    let status = read_response(&mut reader, &mut line, &mut body)
                        .await
                        .map_or(0, |r| r.status);
                    out.push((t.elapsed().as_micros() as u32, status));
                }
                out
            })
        })
        .collect();
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.unwrap());
    }
    RunResult::new(started.elapsed(), samples)
}

/// The bare baseline: one POST route answering a fixed small JSON body.
async fn serve_baseline(port: u16, workers: usize) -> std::io::Result<()> {
    use actix_web::{App, HttpResponse, HttpServer, web};
    HttpServer::new(|| {
        App::new().route(
            "/api/auth/token/refresh/",
            web::post().to(|| async {
                HttpResponse::Ok()
                    .content_type("application/json")
                    .body(r#"{"detail":"Token refreshed."}"#)
            }),
        )
    })
    .workers(workers)
    .bind(("127.0.0.1", port))?
    .run()
    .await
}

async fn redis_stats(url: &str) -> (u64, u64) {
    let client = redis::Client::open(url).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut c)
        .await
        .unwrap();
    let mut total = 0;
    let mut evalsha = 0;
    for line in info.lines() {
        if let Some(rest) = line.strip_prefix("cmdstat_") {
            let calls: u64 = rest
                .split("calls=")
                .nth(1)
                .and_then(|s| s.split(',').next())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            total += calls;
            if rest.starts_with("evalsha:") {
                evalsha += calls;
            }
        }
    }
    (total, evalsha)
}

/// Loads `n` sessions straight into the store and returns their refresh and access tokens; with
/// `successor`, each session is refreshed once first and its pending successor returned.
async fn load_sessions(
    auth: Arc<AuthService>,
    users: &[refreshd::domain::User],
    n: usize,
    successor: bool,
) -> Vec<(String, String)> {
    let requester = Requester::default();
    let mut tokens = Vec::with_capacity(n);
    let mut batch = tokio::task::JoinSet::new();
    for i in 0..n {
        let auth = auth.clone();
        let id = users[i % users.len()].id.clone();
        let r = requester.clone();
        batch.spawn(async move {
            let mut issued = auth.start_session(&id, true, &r).await.unwrap();
            if successor {
                issued = auth.refresh(&issued.refresh, &r).await.unwrap().tokens;
            }
            (issued.refresh, issued.access)
        });
        if batch.len() >= 256 || i + 1 == n {
            while let Some(t) = batch.join_next().await {
                tokens.push(t.unwrap());
            }
        }
    }
    tokens
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Some(port) = args.baseline_server {
        serve_baseline(port, args.workers).await.unwrap();
        return;
    }
    if args.api == Api::Simplejwt {
        simplejwt::run(simplejwt::Options {
            targets: args.targets,
            cpu: args.cpu,
            connections: args.connections,
            seconds: args.seconds,
            users: args.users,
            user_prefix: args.user_prefix,
            password: args.password,
        })
        .await;
        return;
    }
    // The server is another package of the workspace: building this tool alone does not build
    // it, so a stale binary would be measured without a word. Build both with
    // `cargo build --release --workspace`.
    let refreshd_bin: PathBuf = args.refreshd.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .join("refreshd")
    });
    assert!(
        refreshd_bin.exists(),
        "no refreshd at {}: build it first with cargo build --release --workspace",
        refreshd_bin.display()
    );

    // Redis.
    let mut redis_proc = None;
    let redis_url = match &args.redis_url {
        Some(url) => url.clone(),
        None => {
            let port = free_port();
            let dir = std::env::temp_dir().join(format!("refreshd-bench-{port}"));
            std::fs::create_dir_all(&dir).unwrap();
            redis_proc = Some(Proc(
                Command::new("redis-server")
                    .args([
                        "--port",
                        &port.to_string(),
                        "--bind",
                        "127.0.0.1",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                    ])
                    .arg("--dir")
                    .arg(&dir)
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("redis-server"),
            ));
            wait_for_port(port);
            format!("redis://127.0.0.1:{port}/")
        }
    };

    // The two servers.
    let base_port = free_port();
    let _baseline = Proc(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--baseline-server",
                &base_port.to_string(),
                "--workers",
                &args.workers.to_string(),
            ])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let port = free_port();
    let server = Proc(
        Command::new(&refreshd_bin)
            .env_clear()
            .env("REDIS_URL", &redis_url)
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("WORKERS", args.workers.to_string())
            .env("SIGNING_KEY", SIGNING_KEY)
            .env("RUST_LOG", "warn")
            .env("LOGIN_MAX_FAILURES", "0")
            .env("METRICS", if args.no_metrics { "false" } else { "true" })
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(base_port);
    wait_for_port(port);
    let pid = server.0.id();

    // The same keys and store, for loading sessions outside the timed window.
    let settings = Settings::from_lookup(|k| match k {
        "SIGNING_KEY" => Some(SIGNING_KEY.into()),
        "REDIS_URL" => Some(redis_url.clone()),
        _ => None,
    })
    .unwrap();
    let store: Arc<dyn Store> = Arc::new(
        RedisStore::connect(&redis_url, Duration::from_secs(5))
            .await
            .unwrap(),
    );
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let username = format!("bench-{run_id}-0");
    let first = auth::new_user(Username::parse(&username).unwrap(), "bench-password", None);
    let mut users = vec![first.clone()];
    for i in 1..args.users.max(1) {
        // One argon2 hash serves every bench user: hashing is not what is measured.
        users.push(refreshd::domain::User {
            id: refreshd::domain::UserId::new_random(),
            username: Username::parse(&format!("bench-{run_id}-{i}")).unwrap(),
            ..first.clone()
        });
    }
    for user in &users {
        store.add_user(user).await.unwrap();
    }
    let auth = Arc::new(AuthService::new(
        &settings.sessions,
        TokenCodec::new(&settings.tokens).unwrap(),
        store,
    ));

    println!(
        "refreshd-bench: {} cores, {} server workers, mode {}, {} requests per run, sessions spread over {} users",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        args.workers,
        args.mode,
        args.requests,
        users.len()
    );
    println!("idle server RSS: {} KiB", rss_kib(pid));

    let login_task = (args.logins_per_sec > 0).then(|| {
        let per = Duration::from_secs_f64(1.0 / f64::from(args.logins_per_sec));
        let body = format!(r#"{{"username":"{username}","password":"bench-password"}}"#);
        let login = format!(
            "POST /api/auth/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(per);
            loop {
                tick.tick().await;
                let login = login.clone();
                // Each login on its own connection, not waiting for the previous one.
                tokio::spawn(async move {
                    let Ok(stream) = TcpStream::connect(("127.0.0.1", port)).await else {
                        return;
                    };
                    let mut reader = BufReader::new(stream);
                    let (mut line, mut body) = (String::new(), Vec::new());
                    if reader.get_mut().write_all(login.as_bytes()).await.is_ok() {
                        let status = read_response(&mut reader, &mut line, &mut body)
                            .await
                            .map_or(0, |r| r.status);
                        if status != 200 {
                            eprintln!("login answered {status}");
                        }
                    }
                });
            }
        })
    });

    let path = "/api/auth/token/refresh/";
    for &c in &args.connections {
        let baseline = run(
            base_port,
            c,
            (0..args.requests)
                .map(|_| request("cookie", path, None))
                .collect(),
        )
        .await;
        let tokens = load_sessions(
            auth.clone(),
            &users,
            args.requests,
            args.fire == "successor",
        )
        .await;
        let before = redis_stats(&redis_url).await;
        let refresh = run(
            port,
            c,
            tokens
                .iter()
                .map(|t| request(&args.mode, path, Some(pick(&args.mode, t))))
                .collect(),
        )
        .await;
        let after = redis_stats(&redis_url).await;
        let n = refresh.latencies_us.len() as f64;
        println!("--- {c} connections");
        println!("{}", baseline.line("bare actix-web handler"));
        let label = match args.mode.as_str() {
            "me" => "GET /api/auth/me/".to_owned(),
            mode => format!("refresh ({mode} mode)"),
        };
        println!("{}", refresh.line(&label));
        println!(
            "ratio to the baseline: {:.1} %   redis commands per request: {:.3} (EVALSHA {:.3})   server RSS: {} KiB",
            100.0 * refresh.rate() / baseline.rate(),
            (after.0 - before.0) as f64 / n,
            (after.1 - before.1) as f64 / n,
            rss_kib(pid)
        );
    }

    if args.soak.is_some() || args.soak_seconds.is_some() {
        let total = args.soak.unwrap_or(usize::MAX);
        let until = args
            .soak_seconds
            .map(|s| Instant::now() + Duration::from_secs(s));
        let c = *args.connections.last().unwrap();
        let mut done = 0;
        let started = Instant::now();
        let rss_start = rss_kib(pid);
        while done < total && until.is_none_or(|u| Instant::now() < u) {
            let n = args.requests.min(total - done);
            let tokens = load_sessions(auth.clone(), &users, n, args.fire == "successor").await;
            let r = run_paced(
                port,
                c,
                tokens
                    .iter()
                    .map(|t| request(&args.mode, path, Some(pick(&args.mode, t))))
                    .collect(),
                args.rate,
            )
            .await;
            assert_eq!(
                r.statuses.get(&200).copied().unwrap_or(0),
                n,
                "non-200 answers: {:?}",
                r.statuses
            );
            done += n;
            println!(
                "soak: {done} refreshes, last batch {:.0} req/s, p99 {:.2} ms, server RSS {} KiB",
                r.rate(),
                r.pct(0.99),
                rss_kib(pid)
            );
        }
        println!(
            "soak: {done} refreshes in {:.0?} ({:.0} req/s on average, session loading included), server RSS {} KiB at the start, {} KiB at the end",
            started.elapsed(),
            done as f64 / started.elapsed().as_secs_f64(),
            rss_start,
            rss_kib(pid)
        );
    }

    if let Some(task) = login_task {
        task.abort();
    }
    drop(server);
    drop(redis_proc);
}

//! store-cost: what the Redis store costs Redis, without HTTP in the way. It loads sessions
//! through the library (as a login does), refreshes each of them a few times (the first refresh
//! issues the pending successor, the later ones present it: the steady-state promotion that
//! retires its parent), and after each phase reads from `INFO commandstats` the Redis commands
//! and the script CPU (`usec_per_call` of EVALSHA) per call, and from `INFO memory` the bytes per
//! session. BENCHMARKS.md quotes it.
//!
//! `cargo run --release --example store-cost -- --help`

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use refreshd::auth::{AuthService, Requester};
use refreshd::config::Settings;
use refreshd::domain::{User, UserId, Username};
use refreshd::store::{RedisStore, Store};
use refreshd::tokens::TokenCodec;

const SIGNING_KEY: &str = "refreshd-store-cost-signing-key-0123456789-0123456789";

#[derive(Parser)]
#[command(about = "Redis commands, script CPU and memory per session of the Redis store")]
struct Args {
    /// Sessions in all.
    #[arg(long, default_value_t = 100_000)]
    sessions: usize,
    /// Sessions per user.
    #[arg(long, default_value_t = 100)]
    per_user: usize,
    /// Refreshes of each session after its login (1: issue only; 2 and more: promotions).
    #[arg(long, default_value_t = 3)]
    refreshes: usize,
    /// The user agent each session records (empty by default, as refreshd-bench's sessions).
    #[arg(long, default_value = "")]
    user_agent: String,
    /// The client address each session records (none by default).
    #[arg(long)]
    address: Option<std::net::IpAddr>,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Use this (empty, dedicated) Redis instead of starting one.
    #[arg(long)]
    redis_url: Option<String>,
    /// Print MEMORY USAGE and the encoding of this many random keys at the end.
    #[arg(long, default_value_t = 6)]
    samples: usize,
    /// Seconds to wait between two refreshes of a session, as a client would (a retirement is
    /// remembered while REFRESH_TOKEN_REUSE_INTERVAL, 10 s by default, runs).
    #[arg(long, default_value_t = 0)]
    gap: u64,
    /// A shell command run as `<hook> start|end <phase>` around each phase (for example
    /// `callgrind_control -z` at the start and `-d` at the end of the phase to profile).
    #[arg(long)]
    hook: Option<String>,
}

fn hook(args: &Args, event: &str, phase: &str) {
    if let Some(hook) = &args.hook {
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("{hook} {event} '{phase}'"))
            .status()
            .expect("the hook runs");
        assert!(status.success(), "the hook failed: {status}");
    }
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn info(c: &mut redis::aio::MultiplexedConnection, section: &str) -> String {
    redis::cmd("INFO")
        .arg(section)
        .query_async(c)
        .await
        .unwrap()
}

fn field(info: &str, name: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Calls and microseconds per command name, from `INFO commandstats`.
fn commandstats(info: &str) -> BTreeMap<String, (u64, u64)> {
    let mut out = BTreeMap::new();
    for line in info.lines() {
        let Some((name, rest)) = line
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        let get = |k: &str| -> u64 {
            rest.split(',')
                .find_map(|kv| kv.strip_prefix(k))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        out.insert(name.to_owned(), (get("calls="), get("usec=")));
    }
    out
}

async fn reset_stats(c: &mut redis::aio::MultiplexedConnection) {
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(c)
        .await
        .unwrap();
}

async fn used_memory(c: &mut redis::aio::MultiplexedConnection) -> u64 {
    field(&info(c, "memory").await, "used_memory")
}

/// Seconds of CPU the Redis main thread has used (user + system).
async fn main_thread_cpu(c: &mut redis::aio::MultiplexedConnection) -> f64 {
    let cpu = info(c, "cpu").await;
    let get = |name: &str| -> f64 {
        cpu.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    get("used_cpu_user_main_thread") + get("used_cpu_sys_main_thread")
}

/// One line per phase: script calls, commands inside them, script time per call (wall time
/// inside Redis, inflated when the machine preempts Redis), and the CPU the Redis main thread
/// spent per call over the phase (network and parsing included).
async fn report(
    c: &mut redis::aio::MultiplexedConnection,
    phase: &str,
    took: Duration,
    cpu_before: f64,
) {
    let cpu = main_thread_cpu(c).await - cpu_before;
    let stats = commandstats(&info(c, "commandstats").await);
    let (calls, usec) = stats.get("evalsha").copied().unwrap_or((0, 0));
    let inner: u64 = stats
        .iter()
        .filter(|(n, _)| {
            !matches!(
                n.as_str(),
                "evalsha" | "eval" | "script|load" | "info" | "config|resetstat"
            )
        })
        .map(|(_, (calls, _))| calls)
        .sum();
    let per = |x: u64| x as f64 / calls.max(1) as f64;
    let detail: Vec<String> = stats
        .iter()
        .filter(|(n, _)| {
            !matches!(
                n.as_str(),
                "evalsha" | "info" | "config|resetstat" | "script|load"
            )
        })
        .map(|(n, (k, _))| format!("{n} {:.2}", per(*k)))
        .collect();
    println!(
        "{phase:<10} {calls:>8} EVALSHA  {:>6.2} commands each  usec_per_call {:>6.2}  main-thread CPU per call {:>6.2} us  ({:.1} s)  [{}]",
        per(inner),
        per(usec),
        cpu * 1e6 / calls.max(1) as f64,
        took.as_secs_f64(),
        detail.join(", ")
    );
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let mut _redis_proc = None;
    let url = match &args.redis_url {
        Some(url) => url.clone(),
        None => {
            let port = free_port();
            let dir = std::env::temp_dir().join(format!("refreshd-store-cost-{port}"));
            std::fs::create_dir_all(&dir).unwrap();
            _redis_proc = Some(Proc(
                Command::new("redis-server")
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                    .args(["--save", "", "--appendonly", "no"])
                    .arg("--dir")
                    .arg(&dir)
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("redis-server on the PATH"),
            ));
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "redis-server did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
            format!("redis://127.0.0.1:{port}/")
        }
    };
    let mut c = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let settings = Settings::from_lookup(|k| match k {
        "SIGNING_KEY" => Some(SIGNING_KEY.into()),
        "REDIS_URL" => Some(url.clone()),
        _ => None,
    })
    .unwrap();
    let store: Arc<dyn Store> = Arc::new(
        RedisStore::connect(&url, Duration::from_secs(10))
            .await
            .unwrap(),
    );
    let auth = Arc::new(AuthService::new(
        &settings.sessions,
        TokenCodec::new(&settings.tokens).unwrap(),
        store.clone(),
    ));

    let n_users = args.sessions.div_ceil(args.per_user.max(1));
    let template = refreshd::auth::new_user(Username::parse("template").unwrap(), "pw", None);
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut users = Vec::with_capacity(n_users);
    for i in 0..n_users {
        // One argon2 hash serves every user: hashing is not what is measured.
        let user = User {
            id: UserId::new_random(),
            username: Username::parse(&format!("cost-{run}-{i}")).unwrap(),
            ..template.clone()
        };
        store.add_user(&user).await.unwrap();
        users.push(user.id);
    }
    println!(
        "store-cost: {} sessions over {} users ({} each), user agent {} bytes, {}",
        args.sessions,
        n_users,
        args.per_user,
        args.user_agent.len(),
        redis::cmd("INFO")
            .arg("server")
            .query_async::<String>(&mut c)
            .await
            .ok()
            .map(|i| format!("Redis {}", field_str(&i, "redis_version")))
            .unwrap_or_default()
    );
    let requester = Requester {
        addr: args.address,
        user_agent: args.user_agent.clone(),
    };
    let users = Arc::new(users);

    let base = used_memory(&mut c).await;
    reset_stats(&mut c).await;
    let cpu = main_thread_cpu(&mut c).await;
    hook(&args, "start", "login");
    let started = Instant::now();
    let mut tokens = in_batches(args.sessions, args.concurrency, |i| {
        let auth = auth.clone();
        let users = users.clone();
        let r = requester.clone();
        async move {
            auth.start_session(&users[i % users.len()], true, &r)
                .await
                .unwrap()
                .refresh
        }
    })
    .await;
    let took = started.elapsed();
    hook(&args, "end", "login");
    report(&mut c, "login", took, cpu).await;
    let per_session = |m: u64| (m as f64 - base as f64) / args.sessions as f64;
    println!(
        "           {:.0} bytes per session",
        per_session(used_memory(&mut c).await)
    );

    for round in 1..=args.refreshes {
        let phase = if round == 1 {
            "issue".to_owned()
        } else {
            format!("promote {}", round - 1)
        };
        tokio::time::sleep(Duration::from_secs(if round > 1 { args.gap } else { 0 })).await;
        reset_stats(&mut c).await;
        let cpu = main_thread_cpu(&mut c).await;
        hook(&args, "start", &phase);
        let started = Instant::now();
        let held = Arc::new(std::mem::take(&mut tokens));
        tokens = in_batches(args.sessions, args.concurrency, |i| {
            let auth = auth.clone();
            let held = held.clone();
            let r = requester.clone();
            async move { auth.refresh(&held[i], &r).await.unwrap().tokens.refresh }
        })
        .await;
        let took = started.elapsed();
        hook(&args, "end", &phase);
        report(&mut c, &phase, took, cpu).await;
        println!(
            "           {:.0} bytes per session",
            per_session(used_memory(&mut c).await)
        );
    }

    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..args.samples * 20 {
        if seen.len() >= args.samples {
            break;
        }
        let key: Option<Vec<u8>> = redis::cmd("RANDOMKEY").query_async(&mut c).await.unwrap();
        let Some(key) = key else { break };
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut c)
            .await
            .unwrap();
        // One sample per kind of key (by type and the key's text up to its hash tag's end).
        let printable = String::from_utf8_lossy(&key).into_owned();
        let shape = format!(
            "{kind} {}",
            printable
                .split_once('}')
                .map(|(_, tail)| tail.chars().take(3).collect::<String>())
                .unwrap_or_default()
        );
        if !seen.insert(shape) {
            continue;
        }
        let usage: Option<u64> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&key)
            .arg("SAMPLES")
            .arg(0)
            .query_async(&mut c)
            .await
            .unwrap();
        let encoding: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg(&key)
            .query_async(&mut c)
            .await
            .unwrap();
        let len: u64 = match kind.as_str() {
            "hash" => redis::cmd("HLEN")
                .arg(&key)
                .query_async(&mut c)
                .await
                .unwrap(),
            "zset" => redis::cmd("ZCARD")
                .arg(&key)
                .query_async(&mut c)
                .await
                .unwrap(),
            "string" => redis::cmd("STRLEN")
                .arg(&key)
                .query_async(&mut c)
                .await
                .unwrap(),
            _ => 0,
        };
        println!(
            "sample {kind:<6} {encoding:<9} len {len:>6}  MEMORY USAGE {:>8}  {printable:?}",
            usage.unwrap_or(0)
        );
    }
}

fn field_str(info: &str, name: &str) -> String {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// Runs `n` calls, `concurrency` at a time; their results in call order.
async fn in_batches<F, Fut>(n: usize, concurrency: usize, call: F) -> Vec<String>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = String> + Send + 'static,
{
    let mut out = vec![String::new(); n];
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let f = call(i);
        set.spawn(async move { (i, f.await) });
        if set.len() >= concurrency {
            let (j, t) = set.join_next().await.unwrap().unwrap();
            out[j] = t;
        }
    }
    while let Some(r) = set.join_next().await {
        let (j, t) = r.unwrap();
        out[j] = t;
    }
    out
}

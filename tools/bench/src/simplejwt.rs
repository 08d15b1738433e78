//! `--api simplejwt`: drives servers that are already running through the SimpleJWT JSON API
//! (`POST <prefix>/token/` to log in, `POST <prefix>/token/refresh/` to rotate), refreshd's and
//! djangorestframework-simplejwt's own alike, and prints one table of them all. Sessions are
//! logged in over HTTP before the timed window; then each connection follows its own rotation
//! chain, presenting the refresh token the previous answer carried, so that every request rotates
//! and retires (blacklists) a token, as a client of a server with rotation does. A chain never
//! presents a token twice, so no reuse interval is ever used. With --cpu, the CPU time the
//! servers' processes (and their databases') spend per refresh is read from /proc around each
//! run: on a shared machine it moves far less than the rate does. Nothing here starts a server.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::client::{RunResult, read_response};

/// A server to drive: `NAME=http://HOST:PORT/PREFIX`.
#[derive(Clone)]
pub struct Target {
    name: String,
    /// `HOST:PORT`, connected to and sent as the Host header.
    authority: String,
    /// The path the SimpleJWT routes hang from, without a trailing slash (`/api`).
    prefix: String,
}

impl FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, url) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected NAME=http://HOST:PORT/PREFIX"))?;
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url:?}: only http:// URLs are driven"))?;
        let (authority, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if name.is_empty() || authority.is_empty() {
            return Err(format!("{s:?}: expected NAME=http://HOST:PORT/PREFIX"));
        }
        let prefix = prefix.trim_matches('/');
        Ok(Target {
            name: name.to_owned(),
            authority: authority.to_owned(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("/{prefix}")
            },
        })
    }
}

/// The processes whose CPU time counts against a target: `NAME=PID[,PID...]`, each with every
/// descendant (gunicorn's workers under its master, PostgreSQL's backends under the postmaster).
#[derive(Clone)]
pub struct CpuOf {
    name: String,
    pids: Vec<u32>,
}

impl FromStr for CpuOf {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, pids) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected NAME=PID[,PID...]"))?;
        let pids = pids
            .split(',')
            .map(|p| p.trim().parse().map_err(|_| format!("{p:?} is not a pid")))
            .collect::<Result<_, _>>()?;
        Ok(CpuOf {
            name: name.to_owned(),
            pids,
        })
    }
}

/// The CPU time (user and system, in clock ticks) `roots` and their descendants have used so far.
/// A process that exits between two readings takes its time with it, which the servers measured
/// here (long-lived workers and backends) do not do.
fn cpu_ticks(roots: &[u32]) -> u64 {
    // (ppid, utime + stime) of every process, from /proc/<pid>/stat: the fields after the
    // command, which is in parentheses and may itself hold spaces.
    let mut procs = std::collections::HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let number = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        procs.insert(pid, (number(1) as u32, number(11) + number(12)));
    }
    let mut total = 0;
    let mut todo: Vec<u32> = roots.to_vec();
    let mut seen = std::collections::HashSet::new();
    while let Some(pid) = todo.pop() {
        if !seen.insert(pid) {
            continue;
        }
        total += procs.get(&pid).map_or(0, |p| p.1);
        todo.extend(
            procs
                .iter()
                .filter(|(_, (ppid, _))| *ppid == pid)
                .map(|(child, _)| *child),
        );
    }
    total
}

/// Linux reports CPU time in USER_HZ ticks, 100 a second on every architecture it runs on.
const TICKS_PER_SECOND: f64 = 100.0;

pub struct Options {
    pub targets: Vec<Target>,
    pub cpu: Vec<CpuOf>,
    pub connections: Vec<usize>,
    pub seconds: u64,
    pub users: usize,
    pub user_prefix: String,
    pub password: String,
}

/// One connection to a target, opened again whenever the server closes it.
struct Conn {
    target: Arc<Target>,
    reader: Option<BufReader<TcpStream>>,
    line: String,
    body: Vec<u8>,
}

impl Conn {
    fn new(target: Arc<Target>) -> Self {
        Conn {
            target,
            reader: None,
            line: String::new(),
            body: Vec::new(),
        }
    }

    /// POSTs a JSON body to `<prefix><path>`; the answer's body is left in `self.body`. A new
    /// connection, when one is needed, is part of the request (and of its latency).
    async fn post(&mut self, path: &str, json: &str) -> std::io::Result<u16> {
        let reader = match &mut self.reader {
            Some(reader) => reader,
            None => {
                let stream = TcpStream::connect(&self.target.authority).await?;
                stream.set_nodelay(true)?;
                self.reader.insert(BufReader::new(stream))
            }
        };
        let request = format!(
            "POST {}{path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
            self.target.prefix,
            self.target.authority,
            json.len()
        );
        let answer = async {
            reader.get_mut().write_all(request.as_bytes()).await?;
            read_response(reader, &mut self.line, &mut self.body).await
        }
        .await;
        match answer {
            Ok(response) => {
                if response.close {
                    self.reader = None;
                }
                Ok(response.status)
            }
            Err(e) => {
                self.reader = None;
                Err(e)
            }
        }
    }

    /// The `refresh` member of the last answer's JSON body.
    fn refresh_token(&self) -> Option<String> {
        let body: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        body.get("refresh")?.as_str().map(str::to_owned)
    }
}

/// Logs `n` sessions in, session `i` as user `i % users`, a few at a time (password hashing is
/// slow by design, and a sync worker busy hashing serves nobody else).
async fn log_in(target: &Arc<Target>, opts: &Options, n: usize) -> Vec<String> {
    let mut tokens = vec![String::new(); n];
    let mut next = 0;
    while next < n {
        let batch: Vec<_> = (next..n.min(next + 4))
            .map(|i| {
                let target = target.clone();
                let body = serde_json::json!({
                    "username": format!("{}{}", opts.user_prefix, i % opts.users.max(1)),
                    "password": opts.password,
                })
                .to_string();
                tokio::spawn(async move {
                    let mut conn = Conn::new(target.clone());
                    let status = conn.post("/token/", &body).await;
                    match (status, conn.refresh_token()) {
                        (Ok(200), Some(token)) => (i, token),
                        (status, _) => panic!(
                            "{}: logging in session {i} answered {status:?}: {}",
                            target.name,
                            String::from_utf8_lossy(&conn.body)
                        ),
                    }
                })
            })
            .collect();
        next += batch.len();
        for task in batch {
            let (i, token) = task.await.unwrap();
            tokens[i] = token;
        }
    }
    tokens
}

/// One connection's chain until `deadline`: returns the refresh token to carry on with, each
/// request's (latency, status), and how many answers carried a new refresh token.
async fn follow_chain(
    target: Arc<Target>,
    mut token: String,
    deadline: Instant,
) -> (String, Vec<(u32, u16)>, usize) {
    let mut conn = Conn::new(target);
    let mut samples = Vec::new();
    let mut rotated = 0;
    while Instant::now() < deadline {
        let body = format!(r#"{{"refresh":"{token}"}}"#);
        let started = Instant::now();
        let status = conn.post("/token/refresh/", &body).await.unwrap_or(0);
        samples.push((started.elapsed().as_micros() as u32, status));
        if status != 200 {
            // A broken chain stays broken: its statuses say so in the table.
            eprintln!(
                "{}: a chain was answered {status}: {}",
                conn.target.name,
                String::from_utf8_lossy(&conn.body)
            );
            break;
        }
        // Without rotation the answer carries no refresh token and the same one is presented again.
        if let Some(next) = conn.refresh_token() {
            token = next;
            rotated += 1;
        }
    }
    (token, samples, rotated)
}

struct Row {
    connections: usize,
    target: usize,
    result: RunResult,
    rotated: usize,
    /// Server-side CPU milliseconds per request, where --cpu names the target's processes.
    cpu_ms: Option<f64>,
}

impl Row {
    fn cpu(&self) -> String {
        self.cpu_ms.map_or("–".into(), |ms| format!("{ms:.3}"))
    }
}

pub async fn run(opts: Options) {
    assert!(
        !opts.targets.is_empty(),
        "--api simplejwt needs at least one --target NAME=URL"
    );
    let sessions = opts.connections.iter().copied().max().unwrap_or(1);
    let targets: Vec<Arc<Target>> = opts.targets.iter().cloned().map(Arc::new).collect();
    println!(
        "refreshd-bench --api simplejwt: {} cores, {sessions} sessions over {} users per target, {} s per target per connection count",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        opts.users.min(sessions),
        opts.seconds
    );
    let mut chains = Vec::new();
    for target in &targets {
        let started = Instant::now();
        chains.push(log_in(target, &opts, sessions).await);
        println!(
            "{}: {sessions} sessions logged in in {:.1?}",
            target.name,
            started.elapsed()
        );
    }

    // Targets take turns at each connection count, so that a change in the machine's load over
    // the run falls on every target alike.
    let mut rows = Vec::new();
    for &c in &opts.connections {
        for (t, target) in targets.iter().enumerate() {
            let pids = opts
                .cpu
                .iter()
                .filter(|c| c.name == target.name)
                .flat_map(|c| c.pids.iter().copied())
                .collect::<Vec<_>>();
            let cpu_before = cpu_ticks(&pids);
            let started = Instant::now();
            let deadline = started + Duration::from_secs(opts.seconds);
            let tasks: Vec<_> = chains[t][..c]
                .iter_mut()
                .map(|token| {
                    tokio::spawn(follow_chain(
                        target.clone(),
                        std::mem::take(token),
                        deadline,
                    ))
                })
                .collect();
            let mut samples = Vec::new();
            let mut rotated = 0;
            for (i, task) in tasks.into_iter().enumerate() {
                let (token, chain_samples, chain_rotated) = task.await.unwrap();
                chains[t][i] = token;
                samples.extend(chain_samples);
                rotated += chain_rotated;
            }
            let result = RunResult::new(started.elapsed(), samples);
            let cpu_ms = (!pids.is_empty()).then(|| {
                cpu_ticks(&pids).saturating_sub(cpu_before) as f64 / TICKS_PER_SECOND * 1000.0
                    / result.latencies_us.len().max(1) as f64
            });
            let row = Row {
                connections: c,
                target: t,
                result,
                rotated,
                cpu_ms,
            };
            println!(
                "{}  server CPU {} ms per request",
                row.result
                    .line(&format!("{} at {c} connections", target.name)),
                row.cpu()
            );
            rows.push(row);
        }
    }

    println!();
    println!(
        "| connections | target | refreshes | rotated | req/s | p50 ms | p99 ms | server CPU ms per refresh | statuses |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---|");
    for row in &rows {
        println!(
            "| {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {} | {:?} |",
            row.connections,
            targets[row.target].name,
            row.result.latencies_us.len(),
            row.rotated,
            row.result.rate(),
            row.result.pct(0.50),
            row.result.pct(0.99),
            row.cpu(),
            row.result.statuses
        );
    }
    if targets.len() > 1 {
        let reference = &targets[0].name;
        println!();
        println!(
            "| connections | target | req/s, × {reference} | p99, {reference} ÷ target | server CPU per refresh, {reference} ÷ target |"
        );
        println!("|---:|---|---:|---:|---:|");
        for row in rows.iter().filter(|r| r.target != 0) {
            let base = rows
                .iter()
                .find(|r| r.target == 0 && r.connections == row.connections)
                .unwrap();
            let cpu = match (base.cpu_ms, row.cpu_ms) {
                (Some(b), Some(r)) if r > 0.0 => format!("{:.0}×", b / r),
                _ => "–".into(),
            };
            println!(
                "| {} | {} | {:.0}× | {:.0}× | {cpu} |",
                row.connections,
                targets[row.target].name,
                row.result.rate() / base.result.rate(),
                base.result.pct(0.99) / row.result.pct(0.99)
            );
        }
    }
}

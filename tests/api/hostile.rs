//! Hostile input: ten thousand generated requests across every route (random bytes, huge and
//! deep JSON, wrong content types, invalid UTF-8, huge, duplicate, conflicting and many cookies,
//! junk credentials). Never a 5xx, never a crash, and the server's memory stays bounded.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::helpers::*;

/// A small deterministic generator (xorshift64*), so that a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Every route with the method it serves, and a few paths that are not routes at all.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/auth/login/"),
    ("POST", "/api/auth/token/refresh/"),
    ("POST", "/api/auth/token/refresh"),
    ("POST", "/api/auth/logout/"),
    ("GET", "/api/auth/me/"),
    ("GET", "/api/auth/sessions/"),
    (
        "DELETE",
        "/api/auth/sessions/0123456789abcdef0123456789abcdef/",
    ),
    ("DELETE", "/api/auth/sessions/%7Bu%3A1%7D/"),
    ("POST", "/api/token/"),
    ("POST", "/api/token/refresh/"),
    ("POST", "/api/token/verify/"),
    ("POST", "/api/token/blacklist/"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/"),
    ("GET", "/static/app.js"),
    ("GET", "/static/..%2f..%2fetc%2fpasswd"),
    ("POST", "/api/auth/login//"),
    ("GET", "/%00"),
];

const METHODS: &[&str] = &["GET", "POST", "DELETE", "PUT", "OPTIONS", "PATCH", "HEAD"];

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/x-www-form-urlencoded",
    "text/plain",
    "multipart/form-data; boundary=x",
    "application/json; charset=utf-16",
    "",
];

/// One generated request, as raw bytes.
fn generate(rng: &mut Rng, token: &str) -> Vec<u8> {
    let (proper, path) = *rng.pick(ROUTES);
    // Mostly the route's own method, so that the input reaches the handler.
    let method = if rng.below(5) == 0 {
        *rng.pick(METHODS)
    } else {
        proper
    };
    let body: Vec<u8> = match rng.below(10) {
        0 => Vec::new(),
        1 => {
            let n = rng.below(2048);
            rng.bytes(n)
        }
        2 => "[".repeat(rng.below(20_000)).into_bytes(),
        3 => format!("{{\"refresh\": \"{}\"}}", "A".repeat(rng.below(20_000))).into_bytes(),
        4 => format!(
            "{{\"username\": {}, \"password\": {}}}",
            rng.below(1 << 20),
            "[]"
        )
        .into_bytes(),
        5 => b"{\"refresh\": \"\xff\xfe\xfd\", \"username\": \"\xc3\x28\"}".to_vec(),
        6 => format!("{{\"refresh\": \"{token}\", \"refresh\": 5, \"all\": \"yes\"}}").into_bytes(),
        7 => b"username=%ff%00&password=&refresh=Bearer%20%20".to_vec(),
        8 => format!("{{\"token\": \"{}\"}}", "eyJ".repeat(rng.below(3000))).into_bytes(),
        _ => format!("{{\"refresh\": \"{token}\"}}").into_bytes(),
    };
    let mut headers = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    let ct = *rng.pick(CONTENT_TYPES);
    if !ct.is_empty() {
        headers.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    match rng.below(8) {
        0 => headers.push_str(&format!("Cookie: refresh_token={}\r\n", "x".repeat(rng.below(12_000)))),
        1 => {
            let many: Vec<String> = (0..rng.below(600)).map(|i| format!("c{i}={i}")).collect();
            headers.push_str(&format!("Cookie: {}\r\n", many.join("; ")));
        }
        2 => headers.push_str(&format!(
            "Cookie: refresh_token={token}; refresh_token=garbage; access_token=\"Bearer {token}\"\r\nCookie: refresh_token=\r\n"
        )),
        3 => headers.push_str(&format!("Authorization: Bearer {}\r\n", "y".repeat(rng.below(9_000)))),
        4 => headers.push_str("Origin: null\r\nReferer: ::::\r\nSec-Fetch-Site: cross-site\r\n"),
        5 => headers.push_str("Cookie: refresh_token=%zz%; access_token=%\r\nAuthorization: bearer\r\n"),
        6 => headers.push_str(&format!("X-Forwarded-For: {}\r\nUser-Agent: {}\r\n", "1.1.1.1, ".repeat(rng.below(500)), "ü".repeat(rng.below(2000)))),
        _ => {}
    }
    let mut raw = headers.into_bytes();
    // Now and then a header line that is not UTF-8 at all.
    if rng.below(20) == 0 {
        raw.extend_from_slice(b"X-Junk: \xff\xfe\x80\r\n");
    }
    raw.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    raw.extend_from_slice(&body);
    raw
}

/// Sends one raw request on a fresh connection; the status, or 0 when the server closed the
/// connection without an answer (acceptable for unparseable requests).
fn send(port: u16, request: &[u8]) -> u16 {
    let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) else {
        panic!("the server stopped accepting connections");
    };
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = conn.write_all(request);
    let mut head = [0u8; 16];
    let mut got = 0;
    while got < 12 {
        match conn.read(&mut head[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    std::str::from_utf8(&head[..got.min(12)])
        .ok()
        .and_then(|s| s.get(9..12))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_hostile_requests_get_no_5xx_and_leave_the_server_healthy() {
    hostile_requests(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redis_ten_thousand_hostile_requests_get_no_5xx_either() {
    let redis = RedisProcess::start(false);
    add_user_by_cli(&redis.url(), "demo", "demo");
    hostile_requests(&[("REDIS_URL", &redis.url())]).await;
}

async fn hostile_requests(store: &[(&str, &str)]) {
    let seed = std::env::var("HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_u64);
    let mut env = vec![("WORKERS", "2"), ("LOGIN_MAX_FAILURES", "0")];
    env.extend_from_slice(store);
    let server = ServerProcess::start(&env);
    let port = server.port;
    // A real token makes some of the hostile requests reach the deeper code paths.
    let login = reqwest::Client::new()
        .post(server.url("/api/auth/login/"))
        .json(&serde_json::json!({"username": "demo", "password": "demo"}))
        .send()
        .await
        .unwrap();
    let token = Reply::read(login).await.tokens().refresh;
    let rss = |pid: u32| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap()
    };
    let pid = server.pid();
    let rss_before = rss(pid);
    let results = tokio::task::spawn_blocking(move || {
        let mut rng = Rng(seed);
        let mut statuses = std::collections::BTreeMap::new();
        let count: usize = std::env::var("HOSTILE_COUNT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10_000);
        for i in 0..count {
            let request = generate(&mut rng, &token);
            let t = std::time::Instant::now();
            let status = send(port, &request);
            if t.elapsed() > Duration::from_secs(1) {
                eprintln!(
                    "slow request {i}: {status} in {:?}: {:?}",
                    t.elapsed(),
                    String::from_utf8_lossy(&request[..request.len().min(200)])
                );
            }
            assert!(
                !(500..600).contains(&status),
                "request {i} (HOSTILE_SEED={seed}) answered {status}: {:?}",
                String::from_utf8_lossy(&request[..request.len().min(300)])
            );
            *statuses.entry(status).or_insert(0u32) += 1;
        }
        statuses
    })
    .await
    .unwrap();
    // The server is up, answers properly, and did not bloat.
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let rss_after = rss(pid);
    assert!(
        rss_after < rss_before + 64 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    // Most requests got a real answer (0 = closed without one, for unparseable requests).
    let answered: u32 = results
        .iter()
        .filter(|(s, _)| **s != 0)
        .map(|(_, n)| n)
        .sum();
    assert!(answered > 9_000, "{results:?}");
    eprintln!("statuses: {results:?}; RSS {rss_before} -> {rss_after} KiB");
}

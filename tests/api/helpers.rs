//! The test harness: builds the real application on a free port against a real Redis (a
//! `redis-server` this test run starts on a free port, or TEST_REDIS_URL) or the in-process store,
//! and talks HTTP to it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use refreshd::auth;
use refreshd::config::Settings;
use refreshd::domain::{User, UserId, Username};
use refreshd::startup::Application;
use refreshd::store::Store;
use reqwest::header::HeaderMap;
use serde_json::Value;

pub use refreshd::http::error::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Redis,
    /// A three-master Redis Cluster this test run starts.
    Cluster,
}

/// Runs each named scenario `async fn name(backend: Backend)` once per store: in-process, one
/// Redis, and a Redis Cluster.
#[macro_export]
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        mod memory_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Memory).await
                }
            )*
        }
        mod redis_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Redis).await
                }
            )*
        }
        mod cluster_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Cluster).await
                }
            )*
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Redis servers

/// A `redis-server` child on a free loopback port. A watchdog shell kills it when this test
/// process ends, however it ends; dropping the value kills it at once.
pub struct RedisProcess {
    pub port: u16,
    pid: u32,
    dir: PathBuf,
    persistent: bool,
    cluster: bool,
    /// More `redis-server` arguments (TLS, replication); for a sentinel, its configuration.
    extra: String,
    sentinel: bool,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A free port whose cluster bus port (port + 10000) is free too.
fn free_cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

impl RedisProcess {
    /// Starts a server; `persistent` keeps its data on disk across `restart`.
    pub fn start(persistent: bool) -> Self {
        Self::launch(free_port(), persistent, false, "")
    }

    /// Starts a server with more arguments (such as `--tls-port`); `port` stays plain text, for
    /// the test's own look behind the application's back.
    pub fn start_with(persistent: bool, extra: &str) -> Self {
        Self::launch(free_port(), persistent, false, extra)
    }

    /// Starts a cluster-enabled node (persistent, so that it can rejoin after a restart).
    /// With more arguments (such as `--tls-port`).
    pub fn start_cluster_node_with(extra: &str) -> Self {
        Self::launch(free_cluster_port(), true, true, extra)
    }

    /// Starts a sentinel (`redis-server --sentinel`) with `config` (its `sentinel ...` lines).
    pub fn start_sentinel(config: &str) -> Self {
        let mut r = Self::prepare(free_port(), false, false, config);
        r.sentinel = true;
        r.spawn();
        r
    }

    fn launch(port: u16, persistent: bool, cluster: bool, extra: &str) -> Self {
        let mut r = Self::prepare(port, persistent, cluster, extra);
        r.spawn();
        r
    }

    fn prepare(port: u16, persistent: bool, cluster: bool, extra: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("refreshd-test-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir for redis");
        Self {
            port,
            pid: 0,
            dir,
            persistent,
            cluster,
            extra: extra.to_owned(),
            sentinel: false,
        }
    }

    fn spawn(&mut self) {
        let mut persistence = if self.persistent {
            "--appendonly yes --appendfsync always --save ''".to_owned()
        } else {
            "--appendonly no --save ''".to_owned()
        };
        if self.cluster {
            persistence.push_str(
                " --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 1000 --cluster-require-full-coverage no",
            );
        }
        let mut extra = self.extra.clone();
        if self.sentinel {
            // A sentinel rewrites its configuration file: it needs one of its own, named first.
            let conf = self.dir.join("sentinel.conf");
            std::fs::write(&conf, &self.extra).expect("the sentinel's configuration");
            persistence = format!("'{}' --sentinel", conf.display());
            extra.clear();
        }
        let script = format!(
            "redis-server {persistence} --bind 127.0.0.1 --port {port} --dir '{dir}' {extra} --loglevel warning >'{dir}/redis.log' 2>&1 & r=$!; \
             echo $r; \
             while kill -0 {parent} 2>/dev/null && kill -0 $r 2>/dev/null; do sleep 0.3; done; \
             kill -9 $r 2>/dev/null",
            port = self.port,
            dir = self.dir.display(),
            parent = std::process::id(),
        );
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (the README's test command installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        self.pid = line.trim().parse().expect("the redis-server pid");
        // The watchdog shell is left to run; it exits with the redis-server.
        std::mem::forget(child);
        wait_for_redis(self.port);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn signal(&self, sig: &str) {
        Command::new("kill")
            .args([sig, &self.pid.to_string()])
            .status()
            .expect("kill");
    }

    /// Stops the server and waits until its port is closed.
    pub fn stop(&self) {
        self.signal("-KILL");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "redis-server did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts it again on the same port (with its data, if persistent).
    pub fn restart(&mut self) {
        self.spawn();
    }

    /// Deletes its data on disk (call while stopped): the next start is empty.
    pub fn wipe(&self) {
        for entry in std::fs::read_dir(&self.dir).unwrap().flatten() {
            let path = entry.path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("appendonly") || name.ends_with(".rdb") {
                if path.is_dir() {
                    std::fs::remove_dir_all(&path).unwrap();
                } else {
                    std::fs::remove_file(&path).unwrap();
                }
            }
        }
    }

    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.signal("-CONT");
        self.signal("-KILL");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait_for_redis(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            let mut buf = [0u8; 64];
            if s.write_all(b"PING\r\n").is_ok()
                && let Ok(n) = s.read(&mut buf)
                // Up, whether or not it wants a password first.
                && (buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH"))
            {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "redis-server on port {port} did not come up"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A private certificate authority made for one test (openssl CLI), with certificates it signs.
pub struct TestCa {
    pub dir: PathBuf,
}

impl TestCa {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(unique("refreshd-test-ca"));
        std::fs::create_dir_all(&dir).unwrap();
        // A name of its own: two test CAs must not pass for one another.
        let subject = format!("/CN={}", dir.file_name().unwrap().to_str().unwrap());
        let ca = Self { dir };
        ca.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            &subject,
        ]);
        ca
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("openssl must be installed");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).to_str().unwrap().to_owned()
    }

    /// Signs `<name>.pem` (key `<name>.key`) with the given x509v3 extensions, such as
    /// `subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth`.
    pub fn issue(&self, name: &str, extensions: &str) {
        let ext = format!("{name}.ext");
        std::fs::write(self.dir.join(&ext), extensions).unwrap();
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={name}"),
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &ext,
        ]);
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The Redis every test shares: TEST_REDIS_URL, or one server started for this test run.
pub fn shared_redis_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match std::env::var("TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            let server = RedisProcess::start(false);
            let url = server.url();
            // Lives as long as the test process; the watchdog ends it with the process.
            std::mem::forget(server);
            url
        }
    })
    .clone()
}

/// A Redis Cluster of three masters (no replicas) on free loopback ports.
pub struct RedisCluster {
    pub nodes: Vec<RedisProcess>,
}

impl RedisCluster {
    pub fn start() -> Self {
        Self::start_with(String::new)
    }

    /// Three masters, each started with the arguments `extra` makes for it.
    pub fn start_with(extra: impl Fn() -> String) -> Self {
        let nodes: Vec<RedisProcess> = (0..3)
            .map(|_| RedisProcess::start_cluster_node_with(&extra()))
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli");
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = Self { nodes };
        cluster.wait_until_ok();
        cluster
    }

    /// Waits until every node reports `cluster_state:ok`.
    pub fn wait_until_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for node in &self.nodes {
            loop {
                let out = Command::new("redis-cli")
                    .args(["-p", &node.port.to_string(), "cluster", "info"])
                    .output()
                    .expect("redis-cli");
                if String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok") {
                    break;
                }
                assert!(Instant::now() < deadline, "the cluster did not settle");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(RedisProcess::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The node that holds `key`'s hash slot.
    pub fn node_of(&self, key: &str) -> usize {
        let slot = |port: u16, args: &[&str]| {
            let out = Command::new("redis-cli")
                .arg("-p")
                .arg(port.to_string())
                .args(args)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let slot: u16 = slot(self.nodes[0].port, &["cluster", "keyslot", key])
            .trim()
            .parse()
            .unwrap();
        let shards = slot_map(&self.nodes[0]);
        let port = shards
            .iter()
            .find(|(lo, hi, _)| (*lo..=*hi).contains(&slot))
            .map(|(_, _, port)| *port)
            .expect("a node for the slot");
        self.nodes.iter().position(|n| n.port == port).unwrap()
    }
}

/// (first slot, last slot, master port) for every range, from CLUSTER NODES.
fn slot_map(node: &RedisProcess) -> Vec<(u16, u16, u16)> {
    let out = Command::new("redis-cli")
        .args(["-p", &node.port.to_string(), "cluster", "nodes"])
        .output()
        .unwrap();
    let mut map = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 9 || !fields[2].contains("master") {
            continue;
        }
        let port: u16 = fields[1].split(['@', ':']).nth(1).unwrap().parse().unwrap();
        for range in &fields[8..] {
            let (lo, hi) = range.split_once('-').unwrap_or((range, range));
            if let (Ok(lo), Ok(hi)) = (lo.parse(), hi.parse()) {
                map.push((lo, hi, port));
            }
        }
    }
    map
}

/// The Redis Cluster every cluster test shares, started once for this test run.
pub fn shared_cluster_urls() -> String {
    static URLS: OnceLock<String> = OnceLock::new();
    URLS.get_or_init(|| {
        let cluster = RedisCluster::start();
        let urls = cluster.urls();
        std::mem::forget(cluster);
        urls
    })
    .clone()
}

/// A direct connection to a Redis, for looking at keys behind the application's back.
pub async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// The application

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub redis_url: Option<String>,
    /// The client address this app's logins claim, through the trusted loopback proxy.
    pub client_ip: String,
    handle: ServerHandle,
}

/// Settings every test starts from: a fixed key, one worker, port 0, logins not limited unless
/// a test asks.
const TEST_DEFAULTS: &[(&str, &str)] = &[
    ("BIND_ADDR", "127.0.0.1:0"),
    ("WORKERS", "1"),
    (
        "SIGNING_KEY",
        "test-signing-key-0123456789-0123456789-abcdef",
    ),
    ("LOGIN_MAX_FAILURES", "1000"),
    // Each test app's logins come from an address of its own (X-Forwarded-For), so that
    // login-failure counts in the shared Redis never leak between tests.
    ("TRUSTED_PROXIES", "127.0.0.1"),
    ("STORE_TIMEOUT", "1s"),
];

pub fn settings_with(backend: Backend, vars: &[(&str, &str)]) -> Settings {
    let mut map: HashMap<String, String> = TEST_DEFAULTS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    match backend {
        Backend::Memory => {}
        Backend::Redis => {
            map.insert("REDIS_URL".into(), shared_redis_url());
        }
        Backend::Cluster => {
            map.insert("REDIS_CLUSTER_NODES".into(), shared_cluster_urls());
        }
    }
    for (k, v) in vars {
        map.insert(k.to_string(), v.to_string());
    }
    Settings::from_lookup(|k| map.get(k).cloned()).expect("valid test settings")
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

pub async fn spawn_app_with(backend: Backend, vars: &[(&str, &str)]) -> TestApp {
    spawn_with_settings(settings_with(backend, vars)).await
}

pub async fn spawn_with_settings(settings: Settings) -> TestApp {
    let app = Application::build(settings.clone())
        .await
        .expect("the application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let store = app.store();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        store,
        redis_url: settings.store.redis_url().map(|u| u.expose_text()),
        client_ip: {
            let b = uuid::Uuid::new_v4();
            let b = b.as_bytes();
            format!("198.18.{}.{}", b[0], b[1])
        },
        handle,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        // Stopping needs a runtime; the test's own may already be shutting down.
        std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(handle.stop(false));
            }
        });
    }
}

/// A logged-in client's cookies.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

/// A whole response, read at once.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

/// One Set-Cookie header, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetCookie {
    pub raw: String,
    pub value: String,
    pub attrs: Vec<(String, String)>,
}

impl SetCookie {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn has(&self, name: &str) -> bool {
        self.attr(name).is_some()
    }
}

impl Reply {
    pub async fn read(resp: reqwest::Response) -> Reply {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn set_cookies(&self) -> Vec<SetCookie> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|raw| {
                let mut parts = raw.split(';').map(str::trim);
                let (_, value) = parts.next().unwrap().split_once('=').unwrap();
                let attrs = parts
                    .map(|p| match p.split_once('=') {
                        Some((k, v)) => (k.to_owned(), v.to_owned()),
                        None => (p.to_owned(), String::new()),
                    })
                    .collect();
                SetCookie {
                    raw: raw.to_owned(),
                    value: value.to_owned(),
                    attrs,
                }
            })
            .collect()
    }

    pub fn cookie(&self, name: &str) -> Option<SetCookie> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .position(|raw| raw.starts_with(&format!("{name}=")))
            .map(|i| self.set_cookies()[i].clone())
    }

    pub fn tokens(&self) -> Tokens {
        Tokens {
            access: self.cookie("access_token").expect("an access cookie").value,
            refresh: self
                .cookie("refresh_token")
                .expect("a refresh cookie")
                .value,
        }
    }
}

/// Asserts a `{"detail": ...}` answer, with the headers every JSON answer carries.
#[track_caller]
pub fn assert_detail(reply: &Reply, status: u16, detail: &str) {
    assert_eq!(
        reply.status, status,
        "unexpected status; body: {}",
        reply.text
    );
    assert_eq!(
        reply.json,
        serde_json::json!({ "detail": detail }),
        "body: {}",
        reply.text
    );
    assert_json_headers(reply);
}

#[track_caller]
pub fn assert_json_headers(reply: &Reply) {
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
}

/// Asserts that both auth cookies are expired, with the attributes they are set with.
#[track_caller]
pub fn assert_cookies_expired(reply: &Reply) {
    for name in ["access_token", "refresh_token"] {
        let c = reply
            .cookie(name)
            .unwrap_or_else(|| panic!("{name} is not expired: {:?}", reply.set_cookies()));
        assert_eq!(c.value, "", "{}", c.raw);
        assert_eq!(c.attr("Max-Age"), Some("0"), "{}", c.raw);
        assert_eq!(c.attr("Path"), Some("/"), "{}", c.raw);
        assert_eq!(c.attr("SameSite"), Some("Lax"), "{}", c.raw);
        assert!(c.has("HttpOnly"), "{}", c.raw);
    }
}

#[track_caller]
pub fn assert_no_cookies(reply: &Reply) {
    assert!(reply.set_cookies().is_empty(), "{:?}", reply.set_cookies());
}

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn add_user(&self, username: &str, password: &str) -> User {
        self.add_user_with_id(username, password, None).await
    }

    pub async fn add_user_with_id(&self, username: &str, password: &str, id: Option<&str>) -> User {
        let user = auth::new_user(
            Username::parse(username).unwrap(),
            password,
            id.map(|i| UserId::parse(i).unwrap()),
        );
        self.store.add_user(&user).await.expect("user added");
        user
    }

    /// POSTs `body` in 1 000-byte chunks with no Content-Length, as a streaming client does.
    pub async fn post_streamed(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            body.chunks(1000).map(|c| Ok(c.to_vec())).collect();
        let mut request = self.client.post(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Reply::read(
            request
                .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                    chunks,
                )))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// One series of GET /metrics, e.g. `refreshd_refreshes_total{outcome="ok"}`.
    pub async fn metric(&self, series: &str) -> u64 {
        let text = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        metric_in(&text, series)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        Reply::read(
            self.client
                .post(self.url(path))
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> Reply {
        Reply::read(
            self.client
                .post(self.url("/api/auth/login/"))
                .header("x-forwarded-for", &self.client_ip)
                .json(&serde_json::json!({ "username": username, "password": password }))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// A new user, logged in: its cookies.
    pub async fn logged_in(&self) -> (User, Tokens) {
        let name = unique("user");
        let user = self.add_user(&name, "pw-1234").await;
        let reply = self.login(&name, "pw-1234").await;
        assert_detail(&reply, 200, LOGGED_IN);
        (user, reply.tokens())
    }

    /// POST with a raw Cookie header value.
    pub async fn post_with_cookie(&self, path: &str, cookie: &str) -> Reply {
        Reply::read(
            self.client
                .post(self.url(path))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn refresh_with_cookie(&self, token: &str) -> Reply {
        self.post_with_cookie(
            "/api/auth/token/refresh/",
            &format!("refresh_token={token}"),
        )
        .await
    }

    pub async fn refresh_with_body(&self, token: &str) -> Reply {
        self.post_json(
            "/api/auth/token/refresh/",
            &serde_json::json!({ "refresh": token }),
        )
        .await
    }

    pub async fn me_with_cookie(&self, access: &str) -> Reply {
        Reply::read(
            self.client
                .get(self.url("/api/auth/me/"))
                .header("cookie", format!("access_token={access}"))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn logout_with_cookie(&self, refresh: &str) -> Reply {
        self.post_with_cookie("/api/auth/logout/", &format!("refresh_token={refresh}"))
            .await
    }
}

/// The payload of a JWT, for looking at claims.
pub fn claims_of(token: &str) -> Value {
    use std::collections::HashMap;
    let table: HashMap<u8, u32> =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            .iter()
            .enumerate()
            .map(|(i, c)| (*c, i as u32))
            .collect();
    let part = token.split('.').nth(1).expect("a JWT");
    let mut out = Vec::new();
    for chunk in part.as_bytes().chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= table[c] << (18 - 6 * i);
        }
        out.extend_from_slice(&acc.to_be_bytes()[1..chunk.len() * 6 / 8 + 1]);
    }
    serde_json::from_slice(&out).expect("a JSON payload")
}

/// Signs arbitrary claims with the test key, as another service sharing the key would.
pub fn sign_with(key: &str, alg: jsonwebtoken::Algorithm, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

pub fn test_key() -> &'static str {
    TEST_DEFAULTS
        .iter()
        .find(|(k, _)| *k == "SIGNING_KEY")
        .unwrap()
        .1
}

pub fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// ---------------------------------------------------------------------------------------------
// The real binary

/// Runs `command` with `stdin` on its standard input and its output captured.
pub fn run_with_stdin(command: &mut Command, stdin: &[u8]) -> std::process::Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// The real binary, on a free port, with its log on a pipe.
/// Adds a user to the Redis at `redis_url` through `refreshd user add`, as an operator would.
pub fn add_user_by_cli(redis_url: &str, username: &str, password: &str) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_refreshd"))
        .args(["user", "add", username])
        .env_clear()
        .env("REDIS_URL", redis_url)
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    assert!(child.wait().unwrap().success(), "user add {username}");
}

pub struct ServerProcess {
    pub port: u16,
    child: Child,
    /// The log, drained as it comes: a full pipe would stall the server's next log line.
    log: Option<std::thread::JoinHandle<String>>,
}

impl ServerProcess {
    pub fn start(env: &[(&str, &str)]) -> ServerProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(unique("refreshd-run"));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_refreshd"))
            .env_clear()
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("WORKERS", "1")
            .envs(env.iter().copied())
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "refreshd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut child = child;
        let mut stderr = child.stderr.take().unwrap();
        let log = std::thread::spawn(move || {
            let mut log = String::new();
            let _ = stderr.read_to_string(&mut log);
            log
        });
        ServerProcess {
            child,
            port,
            log: Some(log),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: &str) {
        Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
    }

    /// Waits for the process to exit and returns its status and whole log.
    pub fn wait(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().unwrap();
        let log = self.log.take().unwrap().join().unwrap();
        (status, log)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// One series of a Prometheus text page.
pub fn metric_in(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .filter(|rest| rest.starts_with(' '))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("{series} not in:\n{text}"))
}

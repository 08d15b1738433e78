//! Redis servers for tests: `RedisProcess` (a `redis-server`, or a sentinel, on a free port,
//! ended with the test process however it ends), `RedisCluster` (three masters), the server and
//! cluster every test shares, and a direct connection for looking behind the application's back.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::fresh::free_port;

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

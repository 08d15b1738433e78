//! The real binary as a child process: a command with input on stdin, `refreshd user add` as an
//! operator runs it, and the server on a free port with its log on a pipe.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::fresh::unique;

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

/// The real binary, on a free port, with its log on a pipe.
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

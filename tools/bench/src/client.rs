//! The load loops' HTTP/1.1 client and what they measure: one response read off a connection
//! (Content-Length, chunked, or up to the close), and the latency percentiles of a run. Nothing
//! here knows a route, a token or a server.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::TcpStream;

/// What a load loop needs of one response (its body is left in the caller's buffer).
pub struct Response {
    pub status: u16,
    /// The server closes the connection after this response (gunicorn's sync workers do after
    /// every one), so the next request needs a new connection.
    pub close: bool,
}

/// Reads one response, its body into `body`. `line` and `body` are the caller's, so that a load
/// loop allocates them once.
pub async fn read_response(
    reader: &mut BufReader<TcpStream>,
    line: &mut String,
    body: &mut Vec<u8>,
) -> std::io::Result<Response> {
    line.clear();
    if reader.read_line(line).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status = line.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    // HTTP/1.0 closes unless told otherwise; HTTP/1.1 keeps the connection unless told otherwise.
    let mut close = line.starts_with("HTTP/1.0");
    let mut length = None;
    let mut chunked = false;
    loop {
        line.clear();
        if reader.read_line(line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == "\r\n" {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    body.clear();
    if chunked {
        loop {
            line.clear();
            reader.read_line(line).await?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| std::io::Error::other(format!("bad chunk size {size:?}")))?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    line.clear();
                    if reader.read_line(line).await? == 0 || line == "\r\n" {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..]).await?;
            line.clear();
            reader.read_line(line).await?;
        }
    } else if let Some(length) = length {
        body.resize(length, 0);
        reader.read_exact(body).await?;
    } else if close {
        reader.read_to_end(body).await?;
    }
    Ok(Response { status, close })
}

/// One run: how long it took, each request's latency and each status's count.
pub struct RunResult {
    pub elapsed: Duration,
    /// Sorted.
    pub latencies_us: Vec<u32>,
    pub statuses: BTreeMap<u16, usize>,
}

impl RunResult {
    /// From each request's (latency, status), in any order.
    pub fn new(elapsed: Duration, samples: impl IntoIterator<Item = (u32, u16)>) -> Self {
        let mut latencies_us = Vec::new();
        let mut statuses = BTreeMap::new();
        for (latency, status) in samples {
            latencies_us.push(latency);
            *statuses.entry(status).or_insert(0) += 1;
        }
        latencies_us.sort_unstable();
        RunResult {
            elapsed,
            latencies_us,
            statuses,
        }
    }
    pub fn rate(&self) -> f64 {
        self.latencies_us.len() as f64 / self.elapsed.as_secs_f64()
    }
    /// The `p` quantile of the latencies, in milliseconds (0 for a run with no request).
    pub fn pct(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
    pub fn line(&self, label: &str) -> String {
        format!(
            "{label:<28} {:>9.0} req/s  p50 {:>6.2} ms  p90 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  statuses {:?}",
            self.rate(),
            self.pct(0.50),
            self.pct(0.90),
            self.pct(0.99),
            self.pct(1.0),
            self.statuses
        )
    }
}

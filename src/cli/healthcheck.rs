//! `refreshd healthcheck`, the container's HEALTHCHECK: GET /healthz on BIND_ADDR with plain std
//! I/O, so that the check needs no HTTP client and no curl in the image. Depends on nothing else
//! in the crate.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// GET /healthz on BIND_ADDR (0.0.0.0 is asked on 127.0.0.1); Ok when it answers 200.
pub fn run(bind_addr: &str) -> Result<(), String> {
    let addr = bind_addr
        .replace("0.0.0.0", "127.0.0.1")
        .replace("[::]", "[::1]");
    let target = addr
        .to_socket_addrs()
        .map_err(|e| format!("bad BIND_ADDR {addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("bad BIND_ADDR {addr}"))?;
    let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(2))
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    if reply.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!(
            "unhealthy: {}",
            reply.lines().next().unwrap_or("no answer")
        ))
    }
}

//! The work behind each command of the command line: running the server, the `user` commands,
//! `check-config`, `healthcheck` and `keys generate`. `main.rs` parses the arguments, loads
//! `.env` and dispatches here. Reaches the server only through `startup`; never imports `http`
//! or actix-web.

pub mod check_config;
pub mod healthcheck;
pub mod keys;
pub mod serve;
pub mod users;

/// Logs to standard error: plain lines, or with LOG_FORMAT=json one JSON object per line.
pub fn init_logging(json: bool) {
    let mut builder = env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or(crate::config::default_of("RUST_LOG")),
    );
    if json {
        builder.format(|buf, record| {
            use std::io::Write;
            let line = serde_json::json!({
                "ts": humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
                "level": record.level().as_str(),
                "target": record.target(),
                "msg": record.args().to_string(),
            });
            writeln!(buf, "{line}")
        });
    }
    builder.init();
}

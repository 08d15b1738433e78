//! `refreshd check-config`: the effective settings, secrets redacted, and every problem, the
//! keys' included. Reads the environment; starts nothing.

use std::process::ExitCode;

use crate::config::{ConfigError, Settings};
use crate::tokens::TokenCodec;

/// Every setting as read (secrets redacted), then every problem, the keys' included. Exits 1 on
/// any problem.
pub fn run() -> ExitCode {
    let (settings, mut problems) = Settings::from_lookup_with_problems(|k| std::env::var(k).ok());
    for (name, value) in settings.describe() {
        println!("{name}={value}");
    }
    if let Err(e) = TokenCodec::new(&settings.tokens) {
        problems.push(e.to_string());
    }
    if problems.is_empty() {
        println!("# no problems found");
        return ExitCode::SUCCESS;
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    eprint!("refreshd: {}", ConfigError(problems));
    ExitCode::FAILURE
}

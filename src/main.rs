//! The command line: `serve` (the default), the `user` commands, `check-config`, `healthcheck`
//! and `keys generate`. Parses the arguments, loads `.env`, reads the settings from the
//! environment and hands each command to `refreshd::cli`; no logic of its own.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use refreshd::cli::{self, users::UserCommand};
use refreshd::config::Settings;

#[derive(Parser)]
#[command(
    name = "refreshd",
    version,
    about = "A session server with rotating refresh tokens",
    after_help = "Settings come from the environment and from a .env file in the working directory \
(real environment variables win); `refreshd check-config` prints them. See .env.example."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Manage users in the store named by REDIS_URL (or REDIS_CLUSTER_NODES, REDIS_SENTINELS).
    ///
    /// Reads the same settings as the server: the environment, and a .env file in the working
    /// directory (real environment variables win).
    #[command(subcommand)]
    User(UserCommand),
    /// Print the effective settings (secrets redacted) and every problem; non-zero on any.
    CheckConfig,
    /// Exit 0 when the server on BIND_ADDR answers GET /healthz (for container health checks).
    Healthcheck,
    /// Signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a fresh key: a PEM private key (and its public key), or a random HS* secret.
    Generate {
        /// HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384 or EdDSA.
        #[arg(long, default_value = "ES256")]
        alg: String,
        /// Write the private key (or secret) to this file, mode 0600, and the public key to
        /// FILE.pub; without it, both are printed.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Cli::parse();
    if let Some(Command::Keys(KeysCommand::Generate { alg, out })) = &args.command {
        // Needs no settings: it only makes a key.
        return match cli::keys::generate(alg, out.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("refreshd: {e}");
                ExitCode::FAILURE
            }
        };
    }
    // Real environment variables win over .env (in the working directory); a missing .env is
    // fine, a malformed one is not: half-read settings would start a server nobody configured.
    match dotenvy::from_path(".env") {
        Ok(()) => {}
        Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            eprintln!("refreshd: .env: {e}");
            return ExitCode::from(2);
        }
    }
    if let Some(Command::CheckConfig) = &args.command {
        return cli::check_config::run();
    }
    let settings = match Settings::from_lookup(|k| std::env::var(k).ok()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("refreshd: {e}");
            return ExitCode::from(2);
        }
    };
    cli::init_logging(settings.server.log_json);
    let result = match args.command.unwrap_or(Command::Serve) {
        Command::Serve => cli::serve::run(settings).await,
        Command::User(cmd) => cli::users::run(settings, cmd).await,
        Command::CheckConfig => unreachable!("handled before the settings are checked"),
        Command::Healthcheck => cli::healthcheck::run(&settings.server.bind_addr),
        Command::Keys(_) => unreachable!("handled before the settings are read"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("refreshd: {e}");
            ExitCode::FAILURE
        }
    }
}

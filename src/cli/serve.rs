//! `refreshd serve`, the default command: builds the application, serves until SIGTERM or
//! SIGINT, and stops cleanly on a signal that comes during start-up too.

use crate::config::Settings;
use crate::startup::{Application, StopSignals};

/// These lines were logged by the binary, under its name; log filters and readers that look
/// for it keep working.
const LOG_TARGET: &str = "refreshd";

pub async fn run(settings: Settings) -> Result<(), String> {
    // Caught before the port is bound, so that a signal during start-up stops the server
    // cleanly; one that comes while start-up still waits for the store stops it at once.
    let mut signals =
        StopSignals::listen().map_err(|e| format!("cannot listen for SIGTERM/SIGINT: {e}"))?;
    let app = tokio::select! {
        // A start-up that is done wins over a signal that came at the same moment.
        biased;
        app = Application::build(settings.clone()) => app.map_err(|e| e.to_string())?,
        name = signals.next() => {
            log::info!(target: LOG_TARGET, "{name} during start-up: stopping");
            return Ok(());
        }
    };
    let host = settings
        .server
        .bind_addr
        .rsplit_once(':')
        .map_or("127.0.0.1", |(h, _)| h);
    log::info!(
        target: LOG_TARGET,
        "refreshd listening: open http://{host}:{}/ in a browser for the demo page, or see the README's curl walk-through",
        app.port()
    );
    app.stop_on(signals);
    app.run_until_stopped().await.map_err(|e| e.to_string())?;
    log::info!(target: LOG_TARGET, "refreshd stopped");
    Ok(())
}

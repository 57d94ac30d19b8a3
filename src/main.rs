//! The `sihai` daemon: command-line parsing, logging and signals. Everything else lives
//! in the crates under `crates/`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sihai_config::Config;
use sihai_server::Server;
use tracing::info;

#[derive(Parser)]
#[command(
    name = "sihai",
    version,
    about = "SIP softswitch for 400-number service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Run {
        /// Configuration file.
        #[arg(short, long, default_value = "config/sihai.toml")]
        config: PathBuf,
    },
    /// Validate a configuration file and exit: 0 if it is valid, 1 with every error otherwise.
    Check {
        #[arg(short, long, default_value = "config/sihai.toml")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => match Config::load(&config) {
            Ok(_) => {
                println!("{}: ok", config.display());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprintln!("{errors}");
                ExitCode::FAILURE
            }
        },
        Command::Run { config } => match run(config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("sihai: {err:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run(path: PathBuf) -> anyhow::Result<()> {
    let config = Config::load(&path).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    init_logging(&config.log.level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let server = Server::bind(config)
            .await
            .with_context(|| format!("starting with {}", path.display()))?;
        info!(config = %path.display(), "sihai started");
        server.run(shutdown_signal()).await;
        Ok(())
    })
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    info!("shutdown requested");
}

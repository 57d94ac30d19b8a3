//! The `sihai` daemon: command-line parsing, logging and signals. Everything else lives
//! in the crates under `crates/`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sihai_config::Config;
use sihai_server::Server;
use tracing::info;

/// glibc's malloc spent ~15 % of the signalling thread under load (consolidating freed
/// message buffers); mimalloc's thread-local free lists make that a few percent.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Print recent call detail records from the store the configuration names.
    Cdr {
        #[arg(short, long, default_value = "config/sihai.toml")]
        config: PathBuf,
        /// Only calls to this 400 number (any common spelling).
        #[arg(long)]
        number: Option<String>,
        /// Only calls from this caller (any common spelling, e.g. +86 138-0013-8000).
        #[arg(long)]
        caller: Option<String>,
        /// Only calls of this enterprise (its id).
        #[arg(long)]
        enterprise: Option<String>,
        /// Only calls set up at or after this time (RFC 3339, e.g. 2026-11-23T09:00:00+08:00).
        #[arg(long)]
        since: Option<jiff::Timestamp>,
        /// Only calls set up before this time.
        #[arg(long)]
        until: Option<jiff::Timestamp>,
        /// Only this outcome: answered, no_answer, busy, rejected, blacklisted, after_hours, failed, cancelled.
        #[arg(long)]
        outcome: Option<sihai_store::Outcome>,
        /// How many records, newest first.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// CSV instead of a table.
        #[arg(long)]
        csv: bool,
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
        Command::Cdr {
            config,
            number,
            caller,
            enterprise,
            since,
            until,
            outcome,
            limit,
            csv,
        } => {
            let filter = sihai_store::CdrFilter {
                number: number.map(|n| sihai_routing::normalise_400(&n).unwrap_or(n)),
                enterprise,
                caller: caller.map(|c| sihai_routing::normalise_caller(&c).as_str().to_string()),
                since,
                until,
                outcome,
                limit,
            };
            match print_cdrs(&config, &filter, csv) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("sihai: {err:#}");
                    ExitCode::FAILURE
                }
            }
        }
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
    // One event loop on this thread: the signalling core, its sockets and its timers
    // share it, so a datagram reaches the core without waking another thread (on the
    // multi-threaded runtime every message cost a cross-thread wake-up, ~40 % more CPU
    // per call). CDR commits run on the store's own thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let server = Server::bind(config, &path)
            .await
            .with_context(|| format!("starting with {}", path.display()))?;
        info!(config = %path.display(), "sihai started");
        server.run(shutdown_signal()).await;
        Ok(())
    })
}

fn print_cdrs(
    path: &std::path::Path,
    filter: &sihai_store::CdrFilter,
    csv: bool,
) -> anyhow::Result<()> {
    use sihai_store::CdrStore;
    let config = Config::load(path).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let store = sihai_store::SqliteStore::open(&config.store.sqlite, config.store.commit_interval)
        .with_context(|| format!("opening {}", config.store.sqlite.display()))?;
    let cdrs = store.query(filter).context("querying CDRs")?;
    let text = if csv {
        sihai_store::report::format_csv(&cdrs)
    } else {
        sihai_store::report::format_table(&cdrs)
    };
    print!("{text}");
    Ok(())
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

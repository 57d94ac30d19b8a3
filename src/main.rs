//! The `sihai` daemon: command-line parsing, logging and signals. Everything else lives
//! in the crates under `crates/`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sihai_config::Config;
use sihai_server::{LogLevelReloader, Server};
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
        /// Also check the file as a reload of this running configuration: a setting
        /// that needs a restart (a listener, the store, the relay's ports...) and
        /// differs is an error, as the daemon's reload would reject it.
        #[arg(long, value_name = "RUNNING")]
        running: Option<PathBuf>,
        /// List which settings a reload applies and which need a restart.
        #[arg(long)]
        reload_rules: bool,
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
        Command::Check {
            config,
            running,
            reload_rules,
        } => check(&config, running.as_deref(), reload_rules),
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

/// `sihai check`: the file alone, or as a reload of `running`.
fn check(path: &Path, running: Option<&Path>, reload_rules: bool) -> ExitCode {
    if reload_rules {
        println!("On reload (SIGHUP, or a change of the file):");
        print!("{}", sihai_config::describe_reload_rules());
    }
    let checked = match running {
        None => Config::load(path).map(|_| ()),
        Some(running) => match Config::load(running) {
            Ok(running) => Config::reload(path, &running).map(|_| ()),
            Err(errors) => {
                eprintln!("{errors}");
                eprintln!(
                    "{}: the running configuration is not valid",
                    running.display()
                );
                return ExitCode::FAILURE;
            }
        },
    };
    match checked {
        Ok(()) => {
            match running {
                None => println!("{}: ok", path.display()),
                Some(running) => println!(
                    "{}: ok, and every change from {} applies on reload",
                    path.display(),
                    running.display()
                ),
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
    }
}

fn run(path: PathBuf) -> anyhow::Result<()> {
    let config = Config::load(&path).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let log_level = init_logging(&config.log.level);
    // One event loop on this thread: the signalling core, its sockets and its timers
    // share it, so a datagram reaches the core without waking another thread (on the
    // multi-threaded runtime every message cost a cross-thread wake-up, ~40 % more CPU
    // per call). CDR commits run on the store's own thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let mut server = Server::bind(config, &path)
            .await
            .with_context(|| format!("starting with {}", path.display()))?;
        server.on_log_level(log_level);
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

/// Logs to stderr at `[log] level` (or `RUST_LOG`, when set, which then also wins over
/// reloads), with colours only when stderr is a terminal: a file or journald would
/// store the escape codes. Returns how a reload changes the level.
fn init_logging(level: &str) -> LogLevelReloader {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let from_env = EnvFilter::try_from_default_env().ok();
    let env_decides = from_env.is_some();
    let filter = from_env.unwrap_or_else(|| EnvFilter::new(level));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .init();
    Box::new(move |level: &str| {
        if env_decides {
            return Err("RUST_LOG is set and decides the level".into());
        }
        // `sihai_config` has validated the directives already.
        let filter = EnvFilter::try_new(level).map_err(|err| err.to_string())?;
        handle.reload(filter).map_err(|err| err.to_string())
    })
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

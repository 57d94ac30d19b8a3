//! The `sihai` daemon: command-line parsing, logging and signals. Everything else lives
//! in the crates under `crates/`.

mod account;
mod notify;
mod tenant;
mod user;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sihai_config::{Config, LogConfig, LogFormat};
use sihai_server::{LogLevelReloader, Server};
use tracing::{info, warn};

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
    /// Prepaid accounts: list, show, recharge, adjust, ledger, verify.
    Account {
        /// Configuration file (the store it names holds the accounts).
        #[arg(short, long, default_value = "config/sihai.toml", global = true)]
        config: PathBuf,
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Print the store's tenant data (enterprises, numbers, plans, groups, schedules,
    /// prompts, menus, extensions, tariffs) as TOML, headed by its revision.
    Export {
        #[arg(short, long, default_value = "config/sihai.toml")]
        config: PathBuf,
        /// Only this enterprise's entries (an apply of it changes only that enterprise).
        #[arg(long)]
        enterprise: Option<String>,
    },
    /// Validate a file of tenant data (an export, or a whole configuration file), print
    /// what it changes, and apply it to the store in one transaction. Refused when an
    /// entry it changes was changed since the export it was made from.
    Apply {
        #[arg(short, long, default_value = "config/sihai.toml")]
        config: PathBuf,
        /// The TOML file of tenant data.
        file: PathBuf,
        /// Validate and print the changes only.
        #[arg(long)]
        dry_run: bool,
        /// Apply even over changes made since the export (they are lost).
        #[arg(long)]
        force: bool,
    },
    /// The admin API's users.
    User {
        #[arg(short, long, default_value = "config/sihai.toml", global = true)]
        config: PathBuf,
        #[command(subcommand)]
        command: UserCommand,
    },
    /// The monthly statement (话费详单) of a billed enterprise: opening balance, every
    /// charged call, fees, adjustments and recharges, totals per kind, closing balance.
    Bill {
        #[arg(short, long, default_value = "config/sihai.toml")]
        config: PathBuf,
        /// The enterprise's id.
        enterprise: String,
        /// The month, Asia/Shanghai: YYYY-MM.
        #[arg(long)]
        month: sihai_billing::Month,
        /// The call lines as CSV (with a header line) instead of the statement.
        #[arg(long)]
        csv: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; the password is read from standard input (one line, at least 10
    /// characters).
    Add {
        login: String,
        /// operator, enterprise_admin or enterprise_viewer.
        #[arg(long)]
        role: sihai_store::Role,
        /// The enterprise of an enterprise user.
        #[arg(long)]
        enterprise: Option<String>,
    },
    /// Create an API key for a user (for machines: `Authorization: Bearer KEY`); the key
    /// is printed once.
    Key {
        login: String,
        /// What the key is for, e.g. "crm-sync".
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum AccountCommand {
    /// One line per account: status, balance, reserved, available, low-balance warning.
    List {
        /// JSON (an array of what `show --json` prints) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One account with its policy figures (amounts in yuan).
    Show {
        /// The enterprise's id.
        enterprise: String,
        #[arg(long)]
        json: bool,
    },
    /// Post a recharge (exact decimal yuan: 600, 600.50), idempotent on --ref; then
    /// review the account, so that a suspended account above its threshold resumes.
    Recharge {
        enterprise: String,
        /// Yuan, e.g. 600 or 600.50; at least the enterprise's min_recharge.
        amount: sihai_store::Money,
        /// The payment's reference (bank transfer, receipt): posting it again changes nothing.
        #[arg(long = "ref", value_name = "REF")]
        reference: String,
        /// Shown on the ledger and the statement.
        #[arg(long)]
        note: Option<String>,
        /// Accept an amount below the enterprise's min_recharge.
        #[arg(long)]
        force: bool,
    },
    /// Post an operator's correction of either sign (e.g. -12.50), idempotent on --ref.
    Adjust {
        enterprise: String,
        /// Yuan, either sign: 20, -12.50.
        #[arg(allow_negative_numbers = true)]
        amount: sihai_store::Money,
        #[arg(long = "ref", value_name = "REF")]
        reference: String,
        /// Why (required): shown on the ledger and the statement.
        #[arg(long)]
        note: String,
    },
    /// Give a reclaimed account's numbers back to the enterprise (an operator's
    /// decision: a recharge alone never does), then review it as the daemon would.
    Restore { enterprise: String },
    /// The account's entries, oldest first, with the balance after each.
    Ledger {
        enterprise: String,
        /// Only this month, Asia/Shanghai: YYYY-MM.
        #[arg(long)]
        month: Option<sihai_billing::Month>,
        /// CSV instead of a table.
        #[arg(long)]
        csv: bool,
    },
    /// Check the books: every balance is the sum of its entries, every reserved amount
    /// the sum of its calls' holds. Exit 0 when clean, 1 with each discrepancy otherwise.
    Verify,
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
                ..Default::default()
            };
            match print_cdrs(&config, &filter, csv) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("sihai: {err:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Account { config, command } => account_command(&config, command),
        Command::User { config, command } => report_failure(match command {
            UserCommand::Add {
                login,
                role,
                enterprise,
            } => user::add(&config, &login, role, enterprise),
            UserCommand::Key { login, name } => user::key(&config, &login, &name),
        }),
        Command::Export { config, enterprise } => {
            report_failure(tenant::export(&config, enterprise.as_deref()))
        }
        Command::Apply {
            config,
            file,
            dry_run,
            force,
        } => report_failure(tenant::apply(&config, &file, dry_run, force)),
        Command::Bill {
            config,
            enterprise,
            month,
            csv,
        } => report_failure(
            account::Books::open(&config)
                .and_then(|books| account::bill(&books, &enterprise, month, csv)),
        ),
        Command::Run { config } => match run(config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                // Once the logger is up the reason goes through it, so that a JSON log
                // stays JSON to its last line.
                if tracing::dispatcher::has_been_set() {
                    tracing::error!("{err:#}");
                } else {
                    eprintln!("sihai: {err:#}");
                }
                ExitCode::FAILURE
            }
        },
    }
}

/// `sihai account …`.
fn account_command(config: &Path, command: AccountCommand) -> ExitCode {
    let books = match account::Books::open(config) {
        Ok(books) => books,
        Err(err) => return report_failure(Err(err)),
    };
    let result = match command {
        AccountCommand::List { json } => account::list(&books, json),
        AccountCommand::Show { enterprise, json } => account::show(&books, &enterprise, json),
        AccountCommand::Recharge {
            enterprise,
            amount,
            reference,
            note,
            force,
        } => account::recharge(&books, &enterprise, amount, &reference, note, force),
        AccountCommand::Adjust {
            enterprise,
            amount,
            reference,
            note,
        } => account::adjust(&books, &enterprise, amount, &reference, note),
        AccountCommand::Restore { enterprise } => account::restore(&books, &enterprise),
        AccountCommand::Ledger {
            enterprise,
            month,
            csv,
        } => account::ledger(&books, &enterprise, month, csv),
        AccountCommand::Verify => match account::verify(&books) {
            Ok(true) => Ok(()),
            Ok(false) => {
                // The discrepancies are printed; the store is closed on the way out.
                drop(books);
                return ExitCode::FAILURE;
            }
            Err(err) => Err(err),
        },
    };
    report_failure(result.and_then(|()| books.close()))
}

/// Exit 0, or print the error with its context and exit 1.
fn report_failure(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sihai: {err:#}");
            ExitCode::FAILURE
        }
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
    let log_level = init_logging(&config.log);
    // Read before the runtime starts: systemd waits for READY=1 on this socket.
    let readiness = notify::Notifier::from_env().unwrap_or_else(|err| {
        warn!(%err, "cannot use NOTIFY_SOCKET; systemd will not hear that sihai is ready");
        notify::Notifier::disabled()
    });
    // One event loop on this thread: the signalling core, its sockets and its timers
    // share it, so a datagram reaches the core without waking another thread (on the
    // multi-threaded runtime every message cost a cross-thread wake-up, ~40 % more CPU
    // per call). CDR commits run on the store's own thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let config_api = config.api.clone();
    runtime.block_on(async move {
        let mut server = Server::bind(config, &path)
            .await
            .with_context(|| format!("starting with {}", path.display()))?;
        server.on_log_level(log_level);
        // The admin API, on its own threads, when the file has an [api] section.
        let api = match &config_api {
            Some(settings) => {
                // The certificate is read now: a wrong path or key stops the start with
                // the reason, rather than an API that fails every handshake.
                let tls = settings
                    .tls
                    .as_ref()
                    .map(sihai_api::tls::server_config)
                    .transpose()
                    .context("the admin API's TLS settings")?;
                let (tenant, access) = server.api_stores();
                let (cdrs, ledger) = server.records_stores();
                let records = sihai_api::RecordStores {
                    cdrs,
                    ledger,
                    analytics: server.analytics_store(),
                };
                let api = sihai_api::Api::new(
                    tenant,
                    access,
                    records,
                    server.audio_store(),
                    server.config_path().to_path_buf(),
                    settings.session_lifetime,
                    server.node_view(),
                );
                Some(
                    sihai_api::spawn(settings.listen, tls, api)
                        .with_context(|| format!("binding the admin API to {}", settings.listen))?,
                )
            }
            None => None,
        };
        info!(config = %path.display(), "sihai started");
        // The listeners are bound, the store is open and the API serves: under
        // `Type=notify`, `systemctl start` returns now, and units ordered after sihai start.
        notify(&readiness, &ready_state(&server));
        let readiness = std::sync::Arc::new(readiness);
        let running = server.config();
        let stopping = move || {
            // systemd's stop timeout must outlast the drain, whatever the drain time the
            // running configuration says: ask for the drain, the last BYEs' grace and a
            // margin for the final flush.
            let drain = running.load().sip.drain_timeout;
            let budget = drain + sihai_server::core::HANG_UP_GRACE + STOP_MARGIN;
            notify(
                &readiness,
                &format!("STOPPING=1\nEXTEND_TIMEOUT_USEC={}", budget.as_micros()),
            );
        };
        server.run(shutdown_requests(stopping)).await;
        if let Some(api) = api {
            api.stop();
        }
        Ok(())
    })
}

/// Beyond the drain and the last BYEs' grace, what a stop may take (flushing the store,
/// stopping the API) before systemd's stop timeout, which `EXTEND_TIMEOUT_USEC` sets.
const STOP_MARGIN: std::time::Duration = std::time::Duration::from_secs(10);

/// What `READY=1` tells systemd, with the sockets for `systemctl status`.
fn ready_state(server: &Server) -> String {
    let listening: Vec<String> = server
        .local_addrs()
        .iter()
        .map(|(transport, addr)| format!("{transport} {addr}"))
        .collect();
    format!("READY=1\nSTATUS=listening on {}", listening.join(", "))
}

/// Sends `state` to systemd; a failure is logged, never fatal: the service runs the same,
/// only systemd's view of it lags (and a start would time out, saying why in the log).
fn notify(notifier: &notify::Notifier, state: &str) {
    if let Err(err) = notifier.notify(state) {
        warn!(%err, state, "cannot notify systemd");
    }
}

/// Opens the store the configuration names, for one command.
pub(crate) fn open_store(
    config: &sihai_config::StoreConfig,
) -> anyhow::Result<std::sync::Arc<dyn sihai_store::Store>> {
    sihai_server::open_store(config).with_context(|| match &config.postgres {
        Some(postgres) => format!("opening {}", sihai_store::redact_url(&postgres.url)),
        None => format!("opening {}", config.sqlite.display()),
    })
}

fn print_cdrs(
    path: &std::path::Path,
    filter: &sihai_store::CdrFilter,
    csv: bool,
) -> anyhow::Result<()> {
    let config = Config::load(path).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let store = open_store(&config.store)?;
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
/// reloads), as text or JSON lines (`[log] format`), with colours only in text on a
/// terminal: a file or journald would store the escape codes. Returns how a reload
/// changes the level (the format is fixed until a restart).
fn init_logging(log: &LogConfig) -> LogLevelReloader {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let from_env = EnvFilter::try_from_default_env().ok();
    let env_decides = from_env.is_some();
    let filter = from_env.unwrap_or_else(|| EnvFilter::new(with_quiet_drivers(&log.level)));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    // One of the two is `None`: an absent layer writes nothing.
    let (text, json) = match log.format {
        LogFormat::Text => (
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal()),
            ),
            None,
        ),
        LogFormat::Json => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            ),
        ),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .init();
    Box::new(move |level: &str| {
        if env_decides {
            return Err("RUST_LOG is set and decides the level".into());
        }
        // `sihai_config` has validated the directives already.
        let filter =
            EnvFilter::try_new(with_quiet_drivers(level)).map_err(|err| err.to_string())?;
        handle.reload(filter).map_err(|err| err.to_string())
    })
}

/// `level` with the database driver's own debug lines (every statement it prepares and
/// runs, thousands a second under load) left out: sihai logs what it does with the
/// database itself. A directive naming `tokio_postgres` in `level` wins.
fn with_quiet_drivers(level: &str) -> String {
    if level.contains("tokio_postgres") {
        level.to_owned()
    } else {
        format!("{level},tokio_postgres=info")
    }
}

/// Each SIGTERM or SIGINT as one request to stop, named for the log: the first drains
/// the node, the second ends the calls left at once (see `Server::run`). The handlers
/// stay installed until the process exits, so that no later signal kills it mid-drain.
fn shutdown_requests(
    on_first: impl FnOnce() + Send + 'static,
) -> tokio::sync::mpsc::Receiver<&'static str> {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    let listen = |kind: SignalKind, name: &str| {
        signal(kind)
            .map_err(|err| {
                // Its default action (exit) then still stops the process, without a drain.
                tracing::warn!(%err, "cannot listen for {name}; it stops the daemon at once");
            })
            .ok()
    };
    async fn next(signal: &mut Option<Signal>) -> Option<()> {
        match signal {
            Some(signal) => signal.recv().await,
            None => None,
        }
    }
    let (requests, received) = tokio::sync::mpsc::channel(4);
    let mut term = listen(SignalKind::terminate(), "SIGTERM");
    let mut int = listen(SignalKind::interrupt(), "SIGINT");
    tokio::spawn(async move {
        let mut on_first = Some(on_first);
        loop {
            let name = tokio::select! {
                Some(()) = next(&mut term) => "SIGTERM",
                Some(()) = next(&mut int) => "SIGINT",
                else => return,
            };
            if let Some(on_first) = on_first.take() {
                on_first();
            }
            if requests.send(name).await.is_err() {
                return;
            }
        }
    });
    received
}

//! The PostgreSQL store, for several nodes sharing one system of record.
//!
//! The traits are blocking (the SQLite store answers from its own threads); this store
//! runs the maintained async driver (`tokio-postgres`, pooled by `deadpool-postgres`,
//! each statement prepared once per connection) on a small runtime of its own, and a
//! trait call hands its future to that runtime and waits for the answer on a channel.
//! So a call works from any thread, the daemon's event loop included, without nesting
//! runtimes; what must not wait (a CDR, a reservation on the event loop) does not:
//! see [`PgStore`].

mod access;
mod analytics;
mod audio;
mod cdr;
mod ledger;
mod reserver;
mod spool;
mod tenant;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::migrations::{MIGRATIONS, SCHEMA_VERSION, postgres as postgres_dialect};
use crate::{Exclusive, Job, StoreError};

/// Tuning for [`PgStore::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// This node's name, unique among the nodes sharing the database: its calls'
    /// reservations and its last sign of life are kept under it, so that a restarted
    /// node settles its own calls and never another node's.
    pub node: String,
    /// The longest a recorded CDR waits for others to share its transaction (as
    /// [`StoreOptions::commit_interval`](crate::StoreOptions)).
    pub commit_interval: Duration,
    /// A batch this large commits at once.
    pub max_batch: usize,
    /// Connections in the pool.
    pub pool_size: usize,
    /// How long a connection attempt, or a wait for a free connection, may take before
    /// the operation fails with [`StoreError::Unreachable`].
    pub connect_timeout: Duration,
    /// A directory of this node's own where the CDR writer keeps the batches it could
    /// not commit because the database was unreachable (JSON lines, fsynced before a
    /// [`wait_committed`](crate::CdrStore::wait_committed) waiter is answered), and
    /// from which [`PgStore::open`] replays what a previous run left. Created when
    /// needed. `None`: no spool; queued CDRs are in memory only during an outage.
    pub spool: Option<PathBuf>,
}

impl PgOptions {
    /// Defaults for node `node`.
    pub fn new(node: impl Into<String>) -> PgOptions {
        PgOptions {
            node: node.into(),
            commit_interval: crate::DEFAULT_COMMIT_INTERVAL,
            max_batch: crate::DEFAULT_MAX_BATCH,
            pool_size: DEFAULT_POOL_SIZE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            spool: None,
        }
    }
}

/// The default for [`PgOptions::pool_size`].
pub const DEFAULT_POOL_SIZE: usize = 16;

/// The default for [`PgOptions::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Advisory lock keys (`pg_advisory_*lock(bigint)`), one per thing done once across
/// the nodes; arbitrary but fixed ("sihai" in ASCII, then a number).
pub(crate) const LOCK_MIGRATE: i64 = 0x7369_6861_6900_0001;
/// [`Job::Lifecycle`]'s advisory lock.
pub const LOCK_LIFECYCLE: i64 = 0x7369_6861_6900_0002;
/// [`Job::Rollups`]'s advisory lock.
pub const LOCK_ROLLUPS: i64 = 0x7369_6861_6900_0003;

/// Everything the store's futures need, shared by the store and its tasks.
pub(crate) struct Shared {
    /// The database URL without its password, which every error names.
    pub(crate) path: PathBuf,
    pub(crate) node: String,
    pub(crate) pool: Pool,
    // Read by the CDR writer (`cdr.rs`), not yet on this branch.
    #[allow(dead_code)]
    pub(crate) options: PgOptions,
    /// Set by this store's first `reserve`: from then on this process is the node's
    /// daemon and keeps its `node_alive.alive_at` current. A store that never reserves
    /// (the CLI, a restarted node still settling its previous run's calls) never
    /// stamps it, so recovery keeps charging up to the previous run's last sign of life.
    pub(crate) reserving: AtomicBool,
    /// The pool's connection settings, kept for the connections that must not be
    /// pooled (the tenant listener's, which holds a `LISTEN` for the store's life).
    pub(crate) config: tokio_postgres::Config,
    /// The tenant revisions pushed by the listener, started on the first
    /// [`tenant_changes`](crate::TenantStore::tenant_changes) (see `tenant.rs`).
    pub(crate) tenant_watch: std::sync::OnceLock<tokio::sync::watch::Receiver<i64>>,
    /// The CDR writer's queue and commits, for the metrics endpoint.
    pub(crate) writer_stats: Arc<crate::WriterStats>,
}

impl Shared {
    /// A pooled connection, or [`StoreError::Unreachable`].
    pub(crate) async fn client(&self, context: &'static str) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(source) => self.err(context)(source),
            other => StoreError::Unreachable {
                path: self.path.clone(),
                context,
                detail: other.to_string(),
            },
        })
    }

    /// Maps a driver error to [`StoreError::Postgres`] with `context`.
    pub(crate) fn err(
        &self,
        context: &'static str,
    ) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
        move |source| StoreError::Postgres {
            path: self.path.clone(),
            context,
            source: Arc::new(source),
        }
    }

    pub(crate) fn corrupt(&self, table: &'static str, rowid: i64, detail: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            table,
            rowid,
            detail,
        }
    }
}

/// Everything the store holds, in one PostgreSQL database shared by several nodes.
///
/// # Threads
/// The store owns a two-thread tokio runtime (`sihai-pg`) and a pool of
/// [`PgOptions::pool_size`] connections. A blocking trait call ([`PgStore::run`]) spawns
/// its future there and waits for the result; nothing else of the daemon's runs there.
pub struct PgStore {
    pub(crate) shared: Arc<Shared>,
    /// The store's runtime; `None` once shut down.
    runtime: Option<tokio::runtime::Runtime>,
    pub(crate) handle: tokio::runtime::Handle,
    pub(crate) writer: cdr::WriterHandle,
    /// Groups the event loop's reservations into transactions.
    pub(crate) reserver: reserver::Reserver,
    /// This node's `node_alive.alive_at` as found at open (before this run stamps it):
    /// when the previous run was last known alive, for crash recovery.
    pub(crate) previous_alive: Option<jiff::Timestamp>,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`),
    /// brings its schema up to [`SCHEMA_VERSION`] (one node at a time: the migration
    /// holds an advisory lock) and starts the writer.
    pub fn open(url: &str, options: PgOptions) -> Result<PgStore, StoreError> {
        let path = PathBuf::from(redact(url));
        let unreachable = |context: &'static str, detail: String| StoreError::Unreachable {
            path: path.clone(),
            context,
            detail,
        };
        let config: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| {
            unreachable("reading the database URL", e.to_string())
        })?;
        let mut config = config;
        config.connect_timeout(options.connect_timeout);
        config.application_name(format!("sihai {}", options.node));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sihai-pg")
            .enable_all()
            .build()
            .map_err(|source| StoreError::SpawnWriter {
                path: path.clone(),
                thread: "postgres runtime",
                source,
            })?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                // A broken connection is found by the statement that uses it (and the
                // operation fails or the batch is retried): no round trip per checkout.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(2))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| unreachable("building the connection pool", e.to_string()))?;
        let shared = Arc::new(Shared {
            path,
            node: options.node.clone(),
            pool,
            options,
            reserving: AtomicBool::new(false),
            config,
            tenant_watch: std::sync::OnceLock::new(),
            writer_stats: Arc::default(),
        });
        let handle = runtime.handle().clone();
        {
            let shared = shared.clone();
            block(&handle, &shared.path.clone(), async move {
                migrate(&shared).await
            })?;
        }
        let previous_alive = {
            let shared = shared.clone();
            block(&handle, &shared.path.clone(), async move {
                ledger::previous_alive(&shared).await
            })?
        };
        let writer = cdr::WriterHandle::start(&shared, &handle)?;
        let reserver = reserver::Reserver::start(&shared, &handle);
        Ok(PgStore {
            shared,
            runtime: Some(runtime),
            handle,
            writer,
            reserver,
            previous_alive,
        })
    }

    /// The database's URL, without its password.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.shared.node
    }

    /// Runs `future` on the store's runtime and waits for its result; works from any
    /// thread, inside another runtime or not.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        future: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        block(&self.handle, &self.shared.path, future)
    }

    /// Commits everything queued, stops the writer and reports the last commit's result.
    /// Dropping the store does the same, logging instead of returning a failure.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.shutdown()
    }

    /// Stops the store as a SIGKILL would: what is queued (CDRs, settlements) is not
    /// written. What was committed stays. For crash-recovery tests.
    #[doc(hidden)]
    pub fn simulate_kill(mut self) {
        self.writer.abandon();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    fn shutdown(&mut self) -> Result<(), StoreError> {
        let result = self.writer.shut_down(&self.handle, &self.shared.path);
        if let Some(runtime) = self.runtime.take() {
            // Not `drop`: dropping a runtime inside another runtime's thread panics.
            runtime.shutdown_background();
        }
        result
    }
}

impl Exclusive for PgStore {
    /// A session advisory lock (`pg_try_advisory_lock`) on a connection taken out of the
    /// pool for the job, held while `work` runs on the caller's thread. The connection
    /// is then closed rather than returned, which releases the lock however `work`
    /// ended (a panic included): a pooled connection still holding it would keep the
    /// job from every node. The node dying closes it too.
    fn exclusively(&self, job: Job, work: &mut dyn FnMut()) -> Result<bool, StoreError> {
        const CONTEXT: &str = "taking a job's advisory lock";
        let key = match job {
            Job::Lifecycle => LOCK_LIFECYCLE,
            Job::Rollups => LOCK_ROLLUPS,
        };
        let shared = self.shared.clone();
        let (client, locked) = self.run(async move {
            let client = shared.client(CONTEXT).await?;
            let locked: bool = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .await
                .map_err(shared.err(CONTEXT))?
                .get(0);
            // Out of the pool: closed when dropped, never reused with the lock held.
            Ok((Object::take(client), locked))
        })?;
        if locked {
            work();
        }
        drop(client);
        Ok(locked)
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if self.runtime.is_some()
            && let Err(e) = self.shutdown()
        {
            tracing::error!(error = %e, "closing the PostgreSQL store");
        }
    }
}

/// Spawns `future` on `handle` and waits for it on this thread.
pub(crate) fn block<T: Send + 'static>(
    handle: &tokio::runtime::Handle,
    path: &Path,
    future: impl Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = tx.send(future.await);
    });
    rx.recv().unwrap_or_else(|_| {
        Err(StoreError::WriterStopped {
            path: path.to_path_buf(),
        })
    })
}

/// Brings the schema up to [`SCHEMA_VERSION`] in one transaction, under an advisory
/// lock so that nodes starting together migrate once.
async fn migrate(shared: &Shared) -> Result<(), StoreError> {
    const CONTEXT: &str = "migrating the schema";
    let err = shared.err(CONTEXT);
    let mut client = shared.client(CONTEXT).await?;
    let tx = client.transaction().await.map_err(&err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_MIGRATE])
        .await
        .map_err(&err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS sihai_schema (
             id      INT    PRIMARY KEY CHECK (id = 1),
             version BIGINT NOT NULL
         );
         INSERT INTO sihai_schema (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;",
    )
    .await
    .map_err(&err)?;
    let found: i64 = tx
        .query_one("SELECT version FROM sihai_schema WHERE id = 1", &[])
        .await
        .map_err(&err)?
        .get(0);
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: shared.path.clone(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        tx.batch_execute(&postgres_dialect(sql))
            .await
            .map_err(&err)?;
        tracing::info!(database = %shared.path.display(), from, to = from + 1, "migrated the store schema");
    }
    tx.execute(
        "UPDATE sihai_schema SET version = $1 WHERE id = 1",
        &[&SCHEMA_VERSION],
    )
    .await
    .map_err(&err)?;
    tx.commit().await.map_err(&err)
}

/// `url` without its password, for logs and errors.
pub fn redact(url: &str) -> String {
    // postgres://user:password@host/db: drop what lies between the first ':' after
    // the scheme and the '@'.
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Whether `e` is a transaction PostgreSQL aborted only because of another one running
/// at the same time (chosen as a deadlock's victim, or a serialization failure): run
/// again, it succeeds.
pub(crate) fn is_transient(e: &StoreError) -> bool {
    use tokio_postgres::error::SqlState;
    match e {
        StoreError::Postgres { source, .. } => matches!(
            source.code(),
            Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::T_R_SERIALIZATION_FAILURE
        ),
        _ => false,
    }
}

/// Whether `e` says the database could not be reached or the connection broke, rather
/// than that it refused what was sent: no connection could be made or taken in time, the
/// connection closed or failed with an I/O error (no SQLSTATE), or the server said so
/// (class 08, connection exception; 57P01 admin shutdown, 57P02 crash shutdown, 57P03
/// cannot connect now). What failed this way may succeed unchanged once the database is
/// back, so the CDR writer spools it.
pub(crate) fn is_unreachable(e: &StoreError) -> bool {
    match e {
        StoreError::Unreachable { .. } => true,
        StoreError::Postgres { source, .. } => match source.code() {
            Some(code) => {
                let code = code.code();
                code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
            }
            None => source.is_closed() || has_io_cause(source.as_ref()),
        },
        _ => false,
    }
}

/// Whether an I/O error is among the causes of `e` (a refused or reset connection, a
/// timeout), as opposed to, say, a value that could not be decoded.
fn has_io_cause(e: &tokio_postgres::Error) -> bool {
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if c.is::<std::io::Error>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// A copy of a failure to hand to each of several waiters (a failed batch answers every
/// flush waiting on it). The variants a PostgreSQL operation produces are copied
/// exactly (the driver's error is shared); any other (none is expected) becomes
/// `Unreachable` with its text.
pub(crate) fn dup_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Postgres {
            path,
            context,
            source,
        } => StoreError::Postgres {
            path: path.clone(),
            context,
            source: Arc::clone(source),
        },
        StoreError::Unreachable {
            path,
            context,
            detail,
        } => StoreError::Unreachable {
            path: path.clone(),
            context,
            detail: detail.clone(),
        },
        StoreError::Corrupt {
            path,
            table,
            rowid,
            detail,
        } => StoreError::Corrupt {
            path: path.clone(),
            table,
            rowid: *rowid,
            detail: detail.clone(),
        },
        other => StoreError::Unreachable {
            path: other.path().to_path_buf(),
            context: "committing queued CDRs",
            detail: other.to_string(),
        },
    }
}

/// Microseconds since the Unix epoch, the schema's instants, back to a timestamp.
pub(crate) fn ts_from_us(us: i64) -> Result<jiff::Timestamp, String> {
    jiff::Timestamp::from_microsecond(us).map_err(|e| format!("instant {us}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn a_url_is_shown_without_its_password() {
        assert_eq!(
            redact("postgres://sihai:s3cr:et@db.example:5432/sihai"),
            "postgres://sihai:***@db.example:5432/sihai"
        );
        assert_eq!(
            redact("postgres://sihai@127.0.0.1/sihai"),
            "postgres://sihai@127.0.0.1/sihai"
        );
        assert_eq!(redact("host=/run/pg dbname=x"), "host=/run/pg dbname=x");
    }
}

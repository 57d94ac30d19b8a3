//! The store's conformance tests run against both backends: [`both_backends!`] turns one
//! test body into `name::sqlite` and `name::postgres`, each given a fresh
//! [`TestStore`].
//!
//! PostgreSQL: the server named by `SIHAI_TEST_PG_URL` (an admin URL; `scripts/test`
//! starts one and sets it), or, without it, the repository's own test server
//! (`scripts/pg-test-server`, started here on first use in `target/pg-test`, port
//! 55432). Each test gets a database of its own, dropped at the end.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sihai_store::{PgOptions, PgStore, SqliteStore, Store, StoreOptions};

/// Which backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The admin URL of the test server.
pub fn pg_admin_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("SIHAI_TEST_PG_URL") {
            return url;
        }
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let out = std::process::Command::new(root.join("scripts/pg-test-server"))
            .arg("start")
            .arg(root.join("target/pg-test"))
            .arg("55432")
            .output()
            .expect("run scripts/pg-test-server");
        assert!(
            out.status.success(),
            "cannot start the PostgreSQL test server (set SIHAI_TEST_PG_URL, or install \
             postgresql): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    })
}

/// A database of its own on the test server, dropped with this value.
pub struct PgDb {
    pub name: String,
    pub url: String,
}

impl PgDb {
    pub fn new() -> PgDb {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let admin = pg_admin_url();
        let name = format!(
            "sihai_t_{}_{}_{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let mut client = postgres::Client::connect(admin, postgres::NoTls).expect("connect");
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create the test database");
        let base = admin.rsplit_once('/').expect("a URL with a database").0;
        PgDb {
            url: format!("{base}/{name}"),
            name,
        }
    }

    /// A direct connection, to look at rows the way `rusqlite` does for SQLite.
    pub fn connect(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).expect("connect")
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(pg_admin_url(), postgres::NoTls) {
            let _ = client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

enum Opened {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// A store under test, which can be closed and reopened (or killed and reopened) on the
/// same database.
pub struct TestStore {
    pub backend: Backend,
    opened: Option<Opened>,
    /// SQLite: the database file's directory.
    pub dir: tempfile::TempDir,
    /// PostgreSQL: the test's database.
    pub db: Option<PgDb>,
    pub commit_interval: Duration,
    /// PostgreSQL: the node the store runs as.
    pub node: String,
}

impl TestStore {
    /// A fresh, empty store with a 5 ms commit interval.
    pub fn new(backend: Backend) -> TestStore {
        TestStore::with_commit_interval(backend, Duration::from_millis(5))
    }

    pub fn with_commit_interval(backend: Backend, commit_interval: Duration) -> TestStore {
        let mut t = TestStore {
            backend,
            opened: None,
            dir: tempfile::tempdir().unwrap(),
            db: (backend == Backend::Postgres).then(PgDb::new),
            commit_interval,
            node: "node-a".into(),
        };
        t.open();
        t
    }

    /// The SQLite database file (SQLite only).
    pub fn sqlite_path(&self) -> PathBuf {
        self.dir.path().join("sihai.db")
    }

    /// Another store on the same database, as another node (PostgreSQL) or another
    /// process (SQLite) would open it.
    pub fn open_another(&self, node: &str) -> Box<dyn Store> {
        match self.backend {
            Backend::Sqlite => Box::new(
                SqliteStore::open_with(
                    &self.sqlite_path(),
                    StoreOptions {
                        commit_interval: self.commit_interval,
                        ..StoreOptions::default()
                    },
                )
                .expect("open sqlite"),
            ),
            Backend::Postgres => {
                let mut options = PgOptions::new(node);
                options.commit_interval = self.commit_interval;
                options.pool_size = 4;
                Box::new(
                    PgStore::open(&self.db.as_ref().unwrap().url, options).expect("open postgres"),
                )
            }
        }
    }

    fn open(&mut self) {
        self.opened = Some(match self.backend {
            Backend::Sqlite => Opened::Sqlite(
                SqliteStore::open_with(
                    &self.sqlite_path(),
                    StoreOptions {
                        commit_interval: self.commit_interval,
                        ..StoreOptions::default()
                    },
                )
                .expect("open sqlite"),
            ),
            Backend::Postgres => {
                let mut options = PgOptions::new(self.node.clone());
                options.commit_interval = self.commit_interval;
                options.pool_size = 4;
                Opened::Postgres(
                    PgStore::open(&self.db.as_ref().unwrap().url, options).expect("open postgres"),
                )
            }
        });
    }

    pub fn store(&self) -> &dyn Store {
        match self.opened.as_ref().expect("open") {
            Opened::Sqlite(s) => s,
            Opened::Postgres(s) => s,
        }
    }

    /// Closes the store (committing what is queued) and opens it again.
    pub fn reopen(&mut self) {
        self.close();
        self.open();
    }

    /// Closes the store, committing what is queued.
    pub fn close(&mut self) {
        match self.opened.take() {
            Some(Opened::Sqlite(s)) => s.close().expect("close"),
            Some(Opened::Postgres(s)) => s.close().expect("close"),
            None => {}
        }
    }

    /// Stops the store as a SIGKILL would (nothing queued is written) and opens it again.
    pub fn kill_and_reopen(&mut self) {
        match self.opened.take() {
            Some(Opened::Sqlite(s)) => s.simulate_kill(),
            Some(Opened::Postgres(s)) => s.simulate_kill(),
            None => {}
        }
        self.open();
    }

    /// The SQLite store itself, for what only it has (SQLite only).
    pub fn sqlite(&self) -> &SqliteStore {
        match self.opened.as_ref() {
            Some(Opened::Sqlite(s)) => s,
            _ => panic!("not a SQLite store"),
        }
    }

    /// The PostgreSQL store itself (PostgreSQL only).
    pub fn postgres(&self) -> &PgStore {
        match self.opened.as_ref() {
            Some(Opened::Postgres(s)) => s,
            _ => panic!("not a PostgreSQL store"),
        }
    }
}

/// One conformance test, run against each backend:
///
/// ```ignore
/// both_backends! {
///     /// What it proves.
///     fn a_cdr_reads_back_as_recorded(t) {
///         t.store().record(full_cdr("a"), None).unwrap();
///         ...
///     }
/// }
/// ```
/// makes `a_cdr_reads_back_as_recorded::sqlite` and `…::postgres`, where `t` is a
/// `&mut TestStore` (its `backend` says which).
#[macro_export]
macro_rules! both_backends {
    ($( $(#[$attr:meta])* fn $name:ident($t:ident) $body:block )*) => {
        $(
            $(#[$attr])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                fn body($t: &mut $crate::common::backend::TestStore) $body
                #[test]
                fn sqlite() {
                    body(&mut $crate::common::backend::TestStore::new(
                        $crate::common::backend::Backend::Sqlite,
                    ))
                }
                #[test]
                fn postgres() {
                    body(&mut $crate::common::backend::TestStore::new(
                        $crate::common::backend::Backend::Postgres,
                    ))
                }
            }
        )*
    };
}

/// Raw SQL on the test's database, whichever the backend: what `rusqlite` on the file
/// is to a SQLite test.
impl TestStore {
    /// The path the store's errors name: the SQLite file, or the PostgreSQL URL without
    /// its password.
    pub fn store_path(&self) -> PathBuf {
        match self.backend {
            Backend::Sqlite => self.sqlite_path(),
            Backend::Postgres => self.postgres().path().to_path_buf(),
        }
    }

    /// The one integer `sql` selects (a `BIGINT` on PostgreSQL: cast sums and counts
    /// with `CAST(… AS BIGINT)`, which SQLite reads as an integer too).
    pub fn scalar(&self, sql: &str) -> i64 {
        match self.backend {
            Backend::Sqlite => rusqlite::Connection::open(self.sqlite_path())
                .expect("open sqlite")
                .query_row(sql, [], |r| r.get(0))
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
            Backend::Postgres => self
                .db
                .as_ref()
                .expect("a PostgreSQL database")
                .connect()
                .query_one(sql, &[])
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .get(0),
        }
    }

    /// Runs `sql` (statements without results).
    pub fn execute(&self, sql: &str) {
        match self.backend {
            Backend::Sqlite => rusqlite::Connection::open(self.sqlite_path())
                .expect("open sqlite")
                .execute_batch(sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
            Backend::Postgres => self
                .db
                .as_ref()
                .expect("a PostgreSQL database")
                .connect()
                .batch_execute(sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
        }
    }
}

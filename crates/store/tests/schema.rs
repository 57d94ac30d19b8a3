//! The schema's one source of truth: both backends, migrated from the same list, have
//! the same tables and columns; PostgreSQL migrates once however many nodes start at
//! once, and refuses a database from a newer sihai.

mod common;

use std::collections::BTreeMap;

use common::backend::{Backend, PgDb, TestStore};
use sihai_store::{PgOptions, PgStore, SCHEMA_VERSION, StoreError};

/// Every table's columns, by table, in column order.
type Columns = BTreeMap<String, Vec<String>>;

fn sqlite_columns(t: &TestStore) -> Columns {
    let conn = rusqlite::Connection::open(t.sqlite_path()).unwrap();
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'sqlite_sequence'",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables
        .into_iter()
        .map(|table| {
            let columns = conn
                .prepare(&format!(
                    "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
                ))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            (table, columns)
        })
        .collect()
}

fn postgres_columns(db: &PgDb) -> Columns {
    let mut client = db.connect();
    let mut out = Columns::new();
    for row in client
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name <> 'sihai_schema'
             ORDER BY table_name, ordinal_position",
            &[],
        )
        .unwrap()
    {
        out.entry(row.get(0)).or_default().push(row.get(1));
    }
    out
}

#[test]
fn both_backends_have_the_same_tables_and_columns() {
    let sqlite = TestStore::new(Backend::Sqlite);
    let postgres = TestStore::new(Backend::Postgres);
    let from_sqlite = sqlite_columns(&sqlite);
    let from_postgres = postgres_columns(postgres.db.as_ref().unwrap());
    assert!(from_sqlite.contains_key("cdr") && from_sqlite.contains_key("node_alive"));
    assert_eq!(from_sqlite, from_postgres);
    let version: i64 = postgres
        .db
        .as_ref()
        .unwrap()
        .connect()
        .query_one("SELECT version FROM sihai_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn nodes_starting_together_migrate_once_and_agree() {
    let db = PgDb::new();
    let opened: Vec<PgStore> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let url = db.url.clone();
                scope.spawn(move || PgStore::open(&url, PgOptions::new(format!("n{i}"))))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    });
    assert_eq!(opened.len(), 4);
    drop(opened);
    let version: i64 = db
        .connect()
        .query_one("SELECT version FROM sihai_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn a_database_from_a_newer_sihai_is_refused() {
    let db = PgDb::new();
    drop(PgStore::open(&db.url, PgOptions::new("a")).unwrap());
    db.connect()
        .execute("UPDATE sihai_schema SET version = 99", &[])
        .unwrap();
    let err = PgStore::open(&db.url, PgOptions::new("a"))
        .err()
        .expect("refused");
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
        "{err:?}"
    );
}

#[test]
fn an_unreachable_server_is_a_clear_error_within_the_connect_timeout() {
    let mut options = PgOptions::new("a");
    options.connect_timeout = std::time::Duration::from_millis(500);
    // Nothing listens on port 9 (discard) of loopback.
    let started = std::time::Instant::now();
    let err = PgStore::open("postgres://sihai:secret@127.0.0.1:9/sihai", options)
        .err()
        .expect("refused");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let text = err.to_string();
    assert!(
        text.contains("postgres://sihai:***@127.0.0.1:9/sihai"),
        "{text}"
    );
    assert!(!text.contains("secret"), "{text}");
}

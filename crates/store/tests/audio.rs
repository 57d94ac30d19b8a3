//! Uploaded recordings: stored by digest, idempotent, durable; a version 8 database
//! gains the table and keeps everything it had.

mod common;

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::Connection;
use sihai_store::{
    AudioStore, CdrFilter, CdrStore, SCHEMA_VERSION, SqliteStore, TenantChange, TenantEntry,
    TenantStore, audio_digest,
};

use common::full_cdr;

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, Duration::from_millis(5)).unwrap()
}

fn at() -> Timestamp {
    "2026-05-01T08:00:00Z".parse().unwrap()
}

/// Not a real WAV: the store keeps bytes without looking inside them.
fn recording(seed: u8) -> Vec<u8> {
    (0..10_000u32)
        .map(|i| (i as u8).wrapping_mul(seed))
        .collect()
}

both_backends! {
    fn a_recording_is_stored_under_its_digest_once_and_survives_a_reopen(t) {
    let store = t.store();
    let wav = recording(3);
    let digest = store.put_audio(&wav, at()).unwrap();
    assert_eq!(digest, audio_digest(&wav));
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    // The same bytes again: the same digest, still one row.
    assert_eq!(store.put_audio(&wav, at()).unwrap(), digest);
    let other = store.put_audio(&recording(5), at()).unwrap();
    assert_ne!(other, digest);
    assert_eq!(store.audio(&digest).unwrap(), Some(wav.clone()));
    assert_eq!(store.audio(&audio_digest(b"never stored")).unwrap(), None);
    t.reopen();

    assert_eq!(t.store().audio(&digest).unwrap(), Some(wav.clone()));
    t.close();
    assert_eq!(t.scalar("SELECT COUNT(*) FROM audio"), 2);
    assert_eq!(t.scalar("SELECT CAST(SUM(bytes) AS BIGINT) FROM audio"), 20_000);
}
}

#[test]
fn a_version_8_database_gains_the_audio_table_and_keeps_its_cdrs_and_tenant_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cdr.db");
    let store = open(&path);
    store.record(full_cdr("before-upgrade"), None).unwrap();
    let prompt = TenantEntry {
        section: "prompt".into(),
        key: "hold".into(),
        enterprise: Some("acme".into()),
        body: "[[prompt]]\nname = \"hold\"\nenterprise = \"acme\"\nfile = \"hold.wav\"\n".into(),
    };
    store
        .apply_tenant(TenantChange {
            upserts: vec![prompt.clone()],
            base_revision: Some(0),
            ..TenantChange::default()
        })
        .unwrap();
    store.close().unwrap();
    // What a version 8 database looks like.
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(common::DOWN_TO_V8).unwrap();
    let tables: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'audio'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0);
    drop(conn);

    let store = open(&path);
    assert_eq!(
        store.query(&CdrFilter::default()).unwrap(),
        vec![full_cdr("before-upgrade")]
    );
    let tenant = store.tenant().unwrap();
    assert_eq!((tenant.revision, tenant.entries.len()), (1, 1));
    assert_eq!(tenant.entries[0].entry, prompt);
    let digest = store.put_audio(&recording(7), at()).unwrap();
    assert_eq!(store.audio(&digest).unwrap(), Some(recording(7)));
    store.close().unwrap();

    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 12);
}

both_backends! {
    fn the_sweep_deletes_only_old_recordings_no_prompt_names(t) {
    let store = t.store();
    let later: Timestamp = "2026-05-02T08:00:00Z".parse().unwrap();
    let named = store.put_audio(&recording(3), at()).unwrap();
    let replaced = store.put_audio(&recording(5), at()).unwrap();
    // Stored just now, its entry not written yet: spared by its age.
    let fresh = store.put_audio(&recording(7), later).unwrap();
    store
        .apply_tenant(TenantChange {
            upserts: vec![TenantEntry {
                section: "prompt".into(),
                key: "ringback".into(),
                enterprise: Some("acme".into()),
                body: format!(
                    "[[prompt]]\nname = \"ringback\"\nenterprise = \"acme\"\naudio = \"{named}\"\n"
                ),
            }],
            base_revision: Some(0),
            ..TenantChange::default()
        })
        .unwrap();
    assert_eq!(store.sweep_audio(later).unwrap(), 1);
    assert_eq!(store.audio(&replaced).unwrap(), None);
    assert!(store.audio(&named).unwrap().is_some());
    assert!(store.audio(&fresh).unwrap().is_some());
    // Nothing more to do the second time.
    assert_eq!(store.sweep_audio(later).unwrap(), 0);
}
}

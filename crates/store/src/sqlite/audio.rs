//! Uploaded recordings' SQL: the writer's side of [`AudioStore::put_audio`] (an admin
//! operation, durable when answered) and the read on the reading connection.

use std::path::Path;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::writer::Admin;
use crate::{AudioStore, StoreError, audio_digest};

/// Stores `wav` under `digest` unless it is already there (same digest, same bytes).
pub(crate) fn put(
    conn: &Connection,
    path: &Path,
    digest: &str,
    wav: &[u8],
    at: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO audio (digest, wav, bytes, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (digest) DO NOTHING",
    )
    .and_then(|mut st| st.execute(params![digest, wav, wav.len() as i64, at.as_microsecond()]))
    .map(|_| ())
    .map_err(|source| StoreError::Sqlite {
        path: path.to_path_buf(),
        context: "storing an uploaded recording",
        source,
    })
}

/// Deletes unnamed recordings stored before `before` (µs); how many.
pub(crate) fn sweep(conn: &Connection, path: &Path, before: i64) -> Result<usize, StoreError> {
    conn.prepare_cached(
        "DELETE FROM audio WHERE created_at < ?1 AND NOT EXISTS (
             SELECT 1 FROM tenant_entry
             WHERE section = 'prompt' AND body LIKE '%' || audio.digest || '%')",
    )
    .and_then(|mut st| st.execute(params![before]))
    .map_err(|source| StoreError::Sqlite {
        path: path.to_path_buf(),
        context: "deleting uploaded recordings no prompt names",
        source,
    })
}

impl AudioStore for SqliteStore {
    fn sweep_audio(&self, stored_before: Timestamp) -> Result<usize, StoreError> {
        self.admin(|reply| Admin::SweepAudio(stored_before.as_microsecond(), reply))
    }

    fn put_audio(&self, wav: &[u8], at: Timestamp) -> Result<String, StoreError> {
        let digest = audio_digest(wav);
        let stored = digest.clone();
        self.admin(|reply| Admin::PutAudio(stored, wav.to_vec(), at, reply))?;
        Ok(digest)
    }

    fn audio(&self, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let conn = self.reader();
        conn.prepare_cached("SELECT wav FROM audio WHERE digest = ?1")
            .and_then(|mut st| st.query_row([digest], |row| row.get(0)).optional())
            .map_err(self.err("reading an uploaded recording"))
    }
}

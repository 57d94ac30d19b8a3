//! [`AudioStore`] for [`PgStore`]: recordings as BYTEA rows keyed by their digest.

use jiff::Timestamp;

use super::PgStore;
use crate::{AudioStore, StoreError, audio_digest};

impl AudioStore for PgStore {
    fn put_audio(&self, wav: &[u8], at: Timestamp) -> Result<String, StoreError> {
        const CONTEXT: &str = "storing an uploaded recording";
        let digest = audio_digest(wav);
        let stored = digest.clone();
        let wav = wav.to_vec();
        self.with_client(CONTEXT, move |shared, client| async move {
            // Written once: the same digest is the same bytes, so a second upload (or a
            // second node storing it at the same moment) changes nothing.
            let st = client
                .prepare_cached(
                    "INSERT INTO audio (digest, wav, bytes, created_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (digest) DO NOTHING",
                )
                .await
                .map_err(shared.err(CONTEXT))?;
            let bytes = i64::try_from(wav.len()).unwrap_or(i64::MAX);
            client
                .execute(&st, &[&stored, &wav, &bytes, &at.as_microsecond()])
                .await
                .map_err(shared.err(CONTEXT))?;
            Ok(())
        })?;
        Ok(digest)
    }

    fn audio(&self, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
        const CONTEXT: &str = "reading an uploaded recording";
        let digest = digest.to_owned();
        self.with_client(CONTEXT, move |shared, client| async move {
            let st = client
                .prepare_cached("SELECT wav FROM audio WHERE digest = $1")
                .await
                .map_err(shared.err(CONTEXT))?;
            let Some(row) = client
                .query_opt(&st, &[&digest])
                .await
                .map_err(shared.err(CONTEXT))?
            else {
                return Ok(None);
            };
            row.try_get(0).map(Some).map_err(|e| {
                // audio has no row id in PostgreSQL: the digest names the row.
                shared.corrupt("audio", 0, format!("{digest}: {e}"))
            })
        })
    }

    fn sweep_audio(&self, stored_before: Timestamp) -> Result<usize, StoreError> {
        const CONTEXT: &str = "deleting uploaded recordings no prompt names";
        let before = stored_before.as_microsecond();
        self.with_client(CONTEXT, move |shared, mut client| async move {
            let err = shared.err(CONTEXT);
            let tx = client.transaction().await.map_err(&err)?;
            // The editors' lock first (as `apply_tenant` takes it): no prompt naming an
            // old recording can commit between the DELETE's snapshot and its end, and
            // the DELETE (READ COMMITTED, its snapshot taken after the lock) sees every
            // prompt committed before. SQLite gets the same from its one writer.
            tx.execute(
                "SELECT revision FROM tenant_meta WHERE id = 1 FOR UPDATE",
                &[],
            )
            .await
            .map_err(&err)?;
            // A digest is `sha256:` and hex digits, so it holds no LIKE wildcard; it can
            // only appear in a prompt's body as its `audio` value.
            let st = tx
                .prepare_cached(
                    "DELETE FROM audio WHERE created_at < $1 AND NOT EXISTS (
                         SELECT 1 FROM tenant_entry
                         WHERE section = 'prompt' AND body LIKE '%' || audio.digest || '%')",
                )
                .await
                .map_err(&err)?;
            let n = tx.execute(&st, &[&before]).await.map_err(&err)?;
            tx.commit().await.map_err(&err)?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }
}

//! The uploaded recordings seam: an enterprise's 彩铃 and menu prompts sent through the
//! admin API, kept by content so that a `[[prompt]] audio = "sha256:…"` entry names
//! exactly the audio that was checked and converted, whichever node plays it.

use jiff::Timestamp;

use crate::StoreError;

/// How [`audio_digest`] names audio: `sha256:` then 64 lower-case hex digits.
pub const AUDIO_DIGEST_PREFIX: &str = "sha256:";

/// The name of `wav` in an [`AudioStore`]: `sha256:` and the hex SHA-256 of its bytes.
pub fn audio_digest(wav: &[u8]) -> String {
    use std::fmt::Write as _;
    let hash = ring::digest::digest(&ring::digest::SHA256, wav);
    let mut out = String::with_capacity(AUDIO_DIGEST_PREFIX.len() + 64);
    out.push_str(AUDIO_DIGEST_PREFIX);
    for byte in hash.as_ref() {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Uploaded recordings: SQLite now, PostgreSQL later.
///
/// Content-addressed and write-once: the store does not look inside the bytes (the API
/// converts an upload to 8 kHz mono 16-bit WAV before storing it), and nothing is ever
/// replaced, so a prompt's digest always plays the same audio; a new recording is a
/// new digest, and the tenant entry that names it is what changes (revisioned and
/// audited like any other entry).
///
/// # PostgreSQL
/// `put_audio` is `INSERT INTO audio (digest, wav, bytes, created_at) VALUES (…) ON
/// CONFLICT (digest) DO NOTHING` (`wav` a BYTEA); `audio` is `SELECT wav FROM audio
/// WHERE digest = $1`.
pub trait AudioStore: Send + Sync {
    /// Stores `wav` (already converted) and returns its digest ([`audio_digest`]).
    /// Idempotent: the same bytes stored again change nothing. Durable when it returns.
    fn put_audio(&self, wav: &[u8], at: Timestamp) -> Result<String, StoreError>;

    /// The recording stored under `digest`, if any.
    fn audio(&self, digest: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Deletes the recordings no `[[prompt]]` entry names any more (replaced or removed
    /// uploads) that were stored before `stored_before`; how many. The age spares an
    /// upload between its storing and the write of the entry that names it. Durable
    /// when it returns.
    ///
    /// PostgreSQL: the same statement (`LIKE '%' || digest || '%'` over the prompt
    /// entries' bodies, where a digest can only appear as the `audio` value).
    fn sweep_audio(&self, stored_before: Timestamp) -> Result<usize, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_the_hex_sha256_of_the_bytes() {
        // FIPS 180-2's example.
        assert_eq!(
            audio_digest(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(audio_digest(b"").len(), 7 + 64);
    }
}

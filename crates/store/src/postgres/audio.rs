//! [`AudioStore`] for [`PgStore`].

use jiff::Timestamp;

use super::PgStore;
use crate::{AudioStore, StoreError};

impl AudioStore for PgStore {
    fn put_audio(&self, wav: &[u8], at: Timestamp) -> Result<String, StoreError> {
        todo!("{} {at}", wav.len())
    }

    fn audio(&self, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
        todo!("{digest}")
    }

    fn sweep_audio(&self, stored_before: Timestamp) -> Result<usize, StoreError> {
        todo!("{stored_before}")
    }
}

//! [`AnalyticsStore`] for [`PgStore`].

use sihai_analytics::{Analysis, DayRange};

use super::PgStore;
use crate::{AnalyticsStore, RolledUp, StoreError};

impl AnalyticsStore for PgStore {
    fn roll_up(&self, max: usize) -> Result<RolledUp, StoreError> {
        todo!("{max}")
    }

    fn analysis(
        &self,
        enterprise: &str,
        number: Option<&str>,
        range: DayRange,
    ) -> Result<Analysis, StoreError> {
        todo!("{enterprise} {number:?} {range:?}")
    }
}

//! [`TenantStore`] for [`PgStore`].

use super::PgStore;
use crate::{Applied, StoreError, TenantChange, TenantData, TenantStore};

impl TenantStore for PgStore {
    fn tenant(&self) -> Result<TenantData, StoreError> {
        todo!()
    }

    fn tenant_revision(&self) -> Result<i64, StoreError> {
        todo!()
    }

    fn apply_tenant(&self, change: TenantChange) -> Result<Applied, StoreError> {
        todo!("{change:?}")
    }

    fn tenant_source(&self, origin: &str) -> Result<Option<(String, i64)>, StoreError> {
        todo!("{origin}")
    }
}

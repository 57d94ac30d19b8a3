//! The configuration the daemon runs, assembled as it assembles it: the node's settings
//! from its file, the tenant data from the store. What a recharge's rules (the
//! enterprise's billing policy) and a recording's directory are read from.

use std::path::Path;

use sihai_config::{Config, tenant};
use sihai_store::TenantStore;

use crate::error::ApiError;

/// Reads the node file and the store's tenant data and assembles them; on the blocking
/// pool (it reads a file and the store).
pub(crate) fn running_config(
    tenant_store: &dyn TenantStore,
    path: &Path,
) -> Result<Config, ApiError> {
    let origin = path.display().to_string();
    let node_text = std::fs::read_to_string(path)
        .map_err(|e| ApiError::Internal(format!("reading {origin}: {e}")))?;
    let data = tenant_store.tenant()?;
    let rendered = tenant::render(data.entries.iter().map(|s| &s.entry));
    Config::from_parts(
        &node_text,
        &origin,
        &rendered,
        sihai_server::tenant::STORE_ORIGIN,
    )
    .map_err(|errors| {
        ApiError::Internal(format!(
            "the running configuration does not assemble: {errors}"
        ))
    })
}

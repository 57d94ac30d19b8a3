//! [`CdrStore`] for [`PgStore`], and the writer that commits CDRs in batches.
#![allow(unused_variables)]

use std::path::Path;
use std::sync::Arc;

use super::{PgStore, Shared};
use crate::{Cdr, CdrFilter, CdrStore, MissedCallAlert, NewAlert, StoreError};

/// The writer task's handle: what the store sends it.
pub(crate) struct WriterHandle {}

impl WriterHandle {
    /// Starts the writer task on `handle`.
    pub(crate) fn start(
        shared: &Arc<Shared>,
        handle: &tokio::runtime::Handle,
    ) -> Result<WriterHandle, StoreError> {
        Ok(WriterHandle {})
    }

    /// Stops the writer without writing what is queued (a simulated SIGKILL).
    pub(crate) fn abandon(&mut self) {}

    /// Commits what is queued and stops the writer.
    pub(crate) fn shut_down(
        &mut self,
        handle: &tokio::runtime::Handle,
        path: &Path,
    ) -> Result<(), StoreError> {
        Ok(())
    }
}

impl CdrStore for PgStore {
    fn record(&self, cdr: Cdr, alert: Option<NewAlert>) -> Result<(), StoreError> {
        todo!()
    }

    fn flush(&self) -> Result<(), StoreError> {
        todo!()
    }

    fn wait_committed(&self) -> Result<(), StoreError> {
        todo!()
    }

    fn query(&self, filter: &CdrFilter) -> Result<Vec<Cdr>, StoreError> {
        todo!()
    }

    fn callers_before(
        &self,
        enterprise: &str,
        callers: &[String],
        before: jiff::Timestamp,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        todo!()
    }

    fn charged_calls(
        &self,
        enterprise: &str,
        since: jiff::Timestamp,
        until: jiff::Timestamp,
    ) -> Result<(u64, sihai_records::Money), StoreError> {
        todo!()
    }

    fn queue_alert(
        &self,
        reference: &str,
        alert: NewAlert,
        due: jiff::Timestamp,
    ) -> Result<(), StoreError> {
        todo!()
    }

    fn due_alerts(
        &self,
        now: jiff::Timestamp,
        limit: usize,
    ) -> Result<Vec<MissedCallAlert>, StoreError> {
        todo!()
    }

    fn alert_delivered(&self, id: i64) -> Result<(), StoreError> {
        todo!()
    }

    fn alert_failed(
        &self,
        id: i64,
        next_attempt_at: jiff::Timestamp,
        give_up: bool,
    ) -> Result<(), StoreError> {
        todo!()
    }
}

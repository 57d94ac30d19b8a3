//! [`LedgerStore`] for [`PgStore`].
#![allow(unused_variables)]

use jiff::Timestamp;

use super::PgStore;
use crate::{Discrepancy, LedgerQuery, LedgerStore, LedgerTotals, Posted, Spender, StoreError};
use sihai_records::{
    Account, AccountStatus, LedgerEntry, Money, NewEntry, OpenReservation, ReservationOutcome,
    ReservationRequest,
};

impl LedgerStore for PgStore {
    fn open_account(&self, enterprise: &str, at: Timestamp) -> Result<Account, StoreError> {
        todo!()
    }

    fn account(&self, enterprise: &str) -> Result<Option<Account>, StoreError> {
        todo!()
    }

    fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        todo!()
    }

    fn post(&self, entry: NewEntry) -> Result<Posted, StoreError> {
        todo!()
    }

    fn ledger(
        &self,
        enterprise: &str,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        todo!()
    }

    fn ledger_entries(
        &self,
        enterprise: &str,
        query: &LedgerQuery,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        todo!()
    }

    fn ledger_totals(
        &self,
        enterprise: &str,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<LedgerTotals, StoreError> {
        todo!()
    }

    fn set_status(
        &self,
        enterprise: &str,
        status: AccountStatus,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        todo!()
    }

    fn set_low_balance_warned(&self, enterprise: &str, warned: bool) -> Result<(), StoreError> {
        todo!()
    }

    fn reserve(&self, request: ReservationRequest) -> Result<ReservationOutcome, StoreError> {
        todo!()
    }

    fn mark_answered(&self, call_id: &str, at: Timestamp) -> Result<(), StoreError> {
        todo!()
    }

    fn open_reservations(&self) -> Result<(Option<Timestamp>, Vec<OpenReservation>), StoreError> {
        todo!()
    }

    fn spent(
        &self,
        spender: Spender<'_>,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Money, StoreError> {
        todo!()
    }

    fn verify(&self) -> Result<Vec<Discrepancy>, StoreError> {
        todo!()
    }
}

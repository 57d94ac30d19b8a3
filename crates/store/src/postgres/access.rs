//! [`AccessStore`] for [`PgStore`].
#![allow(unused_variables)]

use jiff::Timestamp;

use super::PgStore;
use crate::{AccessStore, ApiKey, AuditEntry, NewAudit, NewUser, Session, StoreError, User};

impl AccessStore for PgStore {
    fn add_user(&self, user: NewUser) -> Result<User, StoreError> {
        todo!()
    }

    fn user_by_login(&self, login: &str) -> Result<Option<(User, String)>, StoreError> {
        todo!()
    }

    fn users(&self, enterprise: Option<&str>) -> Result<Vec<User>, StoreError> {
        todo!()
    }

    fn set_password(
        &self,
        user_id: i64,
        password_hash: &str,
        at: Timestamp,
        keep_session: Option<&str>,
    ) -> Result<(), StoreError> {
        todo!()
    }

    fn remove_user(&self, user_id: i64) -> Result<bool, StoreError> {
        todo!()
    }

    fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        csrf_token: &str,
        expires_at: Timestamp,
        source: Option<&str>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        todo!()
    }

    fn session(&self, token_hash: &str, now: Timestamp) -> Result<Option<Session>, StoreError> {
        todo!()
    }

    fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
        todo!()
    }

    fn add_api_key(
        &self,
        key_hash: &str,
        user_id: i64,
        name: &str,
        at: Timestamp,
    ) -> Result<i64, StoreError> {
        todo!()
    }

    fn user_by_api_key(&self, key_hash: &str) -> Result<Option<User>, StoreError> {
        todo!()
    }

    fn api_keys(&self, user_id: i64) -> Result<Vec<ApiKey>, StoreError> {
        todo!()
    }

    fn remove_api_key(&self, user_id: i64, key_id: i64) -> Result<bool, StoreError> {
        todo!()
    }

    fn audit(&self, entry: NewAudit) -> Result<i64, StoreError> {
        todo!()
    }

    fn audit_log(
        &self,
        enterprise: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        todo!()
    }
}

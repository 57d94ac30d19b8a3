//! Builders shared by the integration tests.
#![allow(dead_code)]

pub mod backend;

use jiff::Timestamp;
use sihai_store::{Cdr, HangupSide, NewAlert, Outcome, PhoneAttempt};

/// Turns a version 12 database back into what version 9 looked like (no analytics
/// rollups): CDRs written before the upgrade.
pub const DOWN_TO_V9: &str = "
    ALTER TABLE cdr DROP COLUMN customer_id;
    DROP TABLE node_alive; DROP INDEX reservation_node; ALTER TABLE reservation DROP COLUMN node;
    DROP TABLE analytics_day; DROP TABLE analytics_caller; DROP TABLE analytics_month_caller;
    DROP TABLE analytics_watermark;
    PRAGMA user_version = 9;";

/// Turns a version 12 database back into what version 8 looked like (no analytics
/// rollups, no uploaded recordings).
pub const DOWN_TO_V8: &str = "
    ALTER TABLE cdr DROP COLUMN customer_id;
    DROP TABLE node_alive; DROP INDEX reservation_node; ALTER TABLE reservation DROP COLUMN node;
    DROP TABLE analytics_day; DROP TABLE analytics_caller; DROP TABLE analytics_month_caller;
    DROP TABLE analytics_watermark;
    DROP TABLE audio; PRAGMA user_version = 8;";

/// Turns a version 12 database back into what version 7 looked like (no users, sessions,
/// API keys or audit log).
pub const DOWN_TO_V7: &str = "
    ALTER TABLE cdr DROP COLUMN customer_id;
    DROP TABLE node_alive; DROP INDEX reservation_node; ALTER TABLE reservation DROP COLUMN node;
    DROP TABLE analytics_day; DROP TABLE analytics_caller; DROP TABLE analytics_month_caller;
    DROP TABLE analytics_watermark;
    DROP TABLE audio; DROP TABLE app_session; DROP TABLE api_key; DROP TABLE app_user; DROP TABLE audit;
    PRAGMA user_version = 7;";

/// Turns a version 12 database back into what version 6 looked like (no access tables,
/// no tenant data).
pub const DOWN_TO_V6: &str = "
    ALTER TABLE cdr DROP COLUMN customer_id;
    DROP TABLE node_alive; DROP INDEX reservation_node; ALTER TABLE reservation DROP COLUMN node;
    DROP TABLE analytics_day; DROP TABLE analytics_caller; DROP TABLE analytics_month_caller;
    DROP TABLE analytics_watermark;
    DROP TABLE audio; DROP TABLE app_session; DROP TABLE api_key; DROP TABLE app_user; DROP TABLE audit;
    DROP TABLE tenant_source; DROP TABLE tenant_meta; DROP TABLE tenant_entry;
    PRAGMA user_version = 6;";

/// Turns a version 12 database back into what version 4 looked like (no access tables,
/// no tenant data, no ledger).
pub const DOWN_TO_V4: &str = "
    ALTER TABLE cdr DROP COLUMN customer_id;
    DROP TABLE node_alive;
    DROP TABLE analytics_day; DROP TABLE analytics_caller; DROP TABLE analytics_month_caller;
    DROP TABLE analytics_watermark;
    DROP TABLE audio; DROP TABLE app_session; DROP TABLE api_key; DROP TABLE app_user; DROP TABLE audit;
    DROP TABLE tenant_source; DROP TABLE tenant_meta; DROP TABLE tenant_entry;
    DROP TABLE reservation; DROP TABLE ledger; DROP TABLE account; DROP TABLE node_clock;
    ALTER TABLE cdr DROP COLUMN tariff; ALTER TABLE cdr DROP COLUMN cost;
    ALTER TABLE cdr DROP COLUMN billed_seconds; PRAGMA user_version = 4;";

pub fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// A CDR with every field set.
pub fn full_cdr(call_id: &str) -> Cdr {
    Cdr {
        call_id: call_id.into(),
        number: "4001234567".into(),
        enterprise: "acme".into(),
        caller: "13812345678".into(),
        caller_province: Some("广东".into()),
        caller_city: Some("深圳".into()),
        answered_by: Some("13900000003".into()),
        attempts: vec![
            PhoneAttempt {
                phone: "13900000001".into(),
                result: "busy".into(),
            },
            PhoneAttempt {
                phone: "13900000002".into(),
                result: "486".into(),
            },
            PhoneAttempt {
                phone: "13900000003".into(),
                result: "answered".into(),
            },
        ],
        setup_at: ts("2026-03-02T01:59:58.123456Z"),
        ring_at: Some(ts("2026-03-02T01:59:59.5Z")),
        answer_at: Some(ts("2026-03-02T02:00:05.000001Z")),
        end_at: ts("2026-03-02T02:01:10.25Z"),
        talk_seconds: 65,
        outcome: Outcome::Answered,
        hangup_side: Some(HangupSide::Phone),
        hangup_cause: Some("BYE".into()),
        recording: None,
        menu_path: None,
        announcement: None,
        billed_seconds: 0,
        cost: None,
        tariff: None,
        customer_id: None,
    }
}

/// An unanswered call with every optional field empty.
pub fn missed_cdr(call_id: &str, setup: Timestamp) -> Cdr {
    Cdr {
        call_id: call_id.into(),
        number: "4009876543".into(),
        enterprise: "globex".into(),
        caller: "anonymous".into(),
        caller_province: None,
        caller_city: None,
        answered_by: None,
        attempts: vec![],
        setup_at: setup,
        ring_at: None,
        answer_at: None,
        end_at: setup + jiff::SignedDuration::from_secs(30),
        talk_seconds: 0,
        outcome: Outcome::NoAnswer,
        hangup_side: None,
        hangup_cause: None,
        recording: None,
        menu_path: None,
        announcement: None,
        billed_seconds: 0,
        cost: None,
        tariff: None,
        customer_id: None,
    }
}

pub fn alert_for(cdr: &Cdr) -> NewAlert {
    NewAlert {
        enterprise: cdr.enterprise.clone(),
        url: "https://crm.example.com/missed".into(),
        payload: format!(
            r#"{{"call_id":"{}","caller":"{}"}}"#,
            cdr.call_id, cdr.caller
        ),
    }
}

/// A billed call's CDR, as the daemon records it when the call ends.
pub fn billed_cdr(call_id: &str, enterprise: &str, cost: Option<i64>) -> Cdr {
    let mut cdr = full_cdr(call_id);
    cdr.enterprise = enterprise.into();
    cdr.billed_seconds = 66;
    cdr.cost = cost.map(sihai_store::Money::from_units);
    cdr.tariff = cost.map(|_| "standard".into());
    cdr
}

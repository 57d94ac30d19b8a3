//! The operator's views of the whole node: every prepaid account's standing (`GET
//! /api/v1/accounts`) and the node's live call figures (`GET /api/v1/node`).
//!
//! Only the operator reads them: they span every enterprise, so an enterprise's users
//! get `403` (an enterprise's own account is `GET /api/v1/enterprises/{id}/account`).
//!
//! The accounts are what `sihai account list` shows, computed by the same code
//! (`sihai_server::billing::standings`, the lifecycle's own reclaim rule). The node view
//! reads the atomics the signalling loop publishes (`sihai_server::NodeView`): no lock
//! the loop takes, nothing it waits for.

use axum::Json;
use axum::extract::State;
use jiff::Timestamp;
use serde::Serialize;
use sihai_server::billing::{Standing, standings};
use sihai_server::stats::{ANSWER_RATE_MINUTES, SETUP_RATE_SECONDS};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::running::running_config;
use crate::{Api, blocking};

pub(crate) fn operator_only(caller: &Caller) -> Result<(), ApiError> {
    if caller.is_operator() {
        Ok(())
    } else {
        Err(ApiError::Forbidden("only the operator sees the whole node"))
    }
}

/// One prepaid account as it stands.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountStandingJson {
    enterprise: String,
    /// The enterprise's name; null when it is no longer configured.
    name: Option<String>,
    /// The operator has suspended the enterprise (`suspended = true` on its entry):
    /// its numbers answer as suspended numbers, whatever the account's status.
    enterprise_suspended: bool,
    /// Whether sihai bills the enterprise now (it names a tariff).
    billed: bool,
    /// Its tariff's name; null when not billed.
    tariff: Option<String>,
    /// Exact decimal yuan: the sum of the ledger's entries.
    balance: String,
    /// What the calls in progress hold.
    reserved: String,
    /// What new calls may still reserve: balance minus reserved.
    available: String,
    /// The account's status as billing has it: `active`, `suspended` (its balance went
    /// below `suspend_below`) or `reclaimed`.
    status: String,
    status_since: String,
    /// The balance is below zero.
    negative: bool,
    /// When the balance went below zero, while it stays there.
    negative_since: Option<String>,
    /// The low-balance warning was sent (cleared when the balance is back above the
    /// warning level).
    low_balance_warned: bool,
    /// The warning level, exact decimal yuan; null when not billed.
    low_balance_warning: Option<String>,
    /// The suspension threshold, exact decimal yuan; null when not billed.
    suspend_below: Option<String>,
    /// When the account is reclaimed (its numbers answer `404`) if the balance stays
    /// below zero; null while it is not below zero, once reclaimed, or when not billed.
    reclaim_at: Option<String>,
    /// Whole days until `reclaim_at`, rounded up (0: due now).
    days_until_reclaim: Option<u32>,
    opened_at: String,
}

impl From<Standing> for AccountStandingJson {
    fn from(standing: Standing) -> Self {
        let billing = standing.billing();
        let tariff = billing.map(|b| b.tariff.name().to_owned());
        let policy = billing.map(|b| &b.policy);
        let low_balance_warning = policy.map(|p| p.low_balance_warning.exact().to_string());
        let suspend_below = policy.map(|p| p.suspend_below.exact().to_string());
        let enterprise = standing.enterprise.as_ref();
        let account = &standing.account;
        AccountStandingJson {
            name: enterprise.map(|e| e.name.clone()),
            enterprise_suspended: enterprise.is_some_and(|e| e.suspended),
            billed: tariff.is_some(),
            tariff,
            balance: account.balance.exact().to_string(),
            reserved: account.reserved.exact().to_string(),
            available: account.available().exact().to_string(),
            status: account.status.as_str().to_owned(),
            status_since: account.status_since.to_string(),
            negative: standing.negative,
            negative_since: account.negative_since.map(|t| t.to_string()),
            low_balance_warned: account.low_balance_warned,
            low_balance_warning,
            suspend_below,
            reclaim_at: standing.reclaim_at.map(|t| t.to_string()),
            days_until_reclaim: standing.days_until_reclaim,
            opened_at: account.opened_at.to_string(),
            enterprise: standing.account.enterprise,
        }
    }
}

/// `GET /api/v1/accounts`: every prepaid account, by enterprise id, as `sihai account
/// list` computes it.
#[utoipa::path(get, path = "/api/v1/accounts", tag = "operator",
    responses((status = 200, description = "Every prepaid account (of every enterprise sihai bills or billed), by enterprise id", body = Vec<AccountStandingJson>),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, description = "Not the operator", body = crate::error::ErrorBody)))]
pub async fn accounts(
    State(api): State<Api>,
    caller: Caller,
) -> Result<Json<Vec<AccountStandingJson>>, ApiError> {
    operator_only(&caller)?;
    let (tenant, ledger, config_path) = (api.tenant.clone(), api.ledger.clone(), api.config_path);
    let mut all = blocking(move || {
        let config = match running_config(&*tenant, &config_path) {
            Ok(config) => config,
            Err(err) => return Ok(Err(err)),
        };
        Ok(Ok(standings(&*ledger, &config, Timestamp::now())?))
    })
    .await??;
    all.sort_by(|a, b| a.account.enterprise.cmp(&b.account.enterprise));
    Ok(Json(
        all.into_iter().map(AccountStandingJson::from).collect(),
    ))
}

/// The node's calls: now, and over the last seconds and hour.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NodeCallsJson {
    /// Calls in progress now (in setup, ringing, in a voice menu or talking).
    in_progress: u64,
    /// New calls per second over the last `setup_rate_seconds` whole seconds.
    setups_per_second: f64,
    setup_rate_seconds: u64,
    /// Calls answered and missed (no answer, busy, after hours, cancelled, failed)
    /// that ended in the current minute or the `answer_rate_minutes - 1` before it.
    answered_last_hour: u64,
    missed_last_hour: u64,
    /// answered ÷ (answered + missed) of the last hour, 0 to 1, as traffic analysis
    /// computes it (refused calls never reached a phone); null without such calls.
    answer_rate_last_hour: Option<f64>,
    answer_rate_minutes: u64,
    /// Since the daemon started: new calls, and the finished ones by how they ended
    /// (refused: screened, not admitted, out of credit, suspended or unknown number).
    offered: u64,
    answered: u64,
    missed: u64,
    refused: u64,
}

/// The SIP endpoint's counters since start.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NodeSipJson {
    /// Messages received.
    received: u64,
    /// Requests that reached the transaction layer.
    requests: u64,
    /// Messages that were not SIP (dropped).
    unparsable: u64,
    /// Requests answered with an error by validation.
    rejected_requests: u64,
    /// Responses that failed validation or matched no transaction.
    dropped_responses: u64,
    stray_acks: u64,
    transaction_timeouts: u64,
    transport_errors: u64,
    /// Requests from addresses that are no trunk: answered with one stateless `403`,
    /// or dropped.
    untrusted_rejected: u64,
    untrusted_dropped: u64,
    /// Requests from a known scanner's User-Agent, dropped.
    scanners_dropped: u64,
    /// Requests over their source's rate limit, dropped.
    flood_limited: u64,
}

/// A live view of the node.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NodeJson {
    /// When this view was taken, RFC 3339.
    now: String,
    /// When the daemon started, RFC 3339.
    started_at: String,
    uptime_seconds: i64,
    /// The tenant data revision the running configuration was assembled from: an API
    /// write is in force once this reaches its revision.
    tenant_revision: i64,
    calls: NodeCallsJson,
    sip: NodeSipJson,
}

/// `GET /api/v1/node`: calls in progress, setups per second, answer rate, and the SIP
/// endpoint's counters, read from the running daemon's atomics.
#[utoipa::path(get, path = "/api/v1/node", tag = "operator",
    responses((status = 200, body = NodeJson),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, description = "Not the operator", body = crate::error::ErrorBody)))]
pub async fn node(State(api): State<Api>, caller: Caller) -> Result<Json<NodeJson>, ApiError> {
    operator_only(&caller)?;
    let now = Timestamp::now();
    let view = &api.node;
    let calls = view.stats.calls(now);
    let sip = view.stats.snapshot();
    Ok(Json(NodeJson {
        now: now.to_string(),
        started_at: view.started_at.to_string(),
        uptime_seconds: now.as_second().saturating_sub(view.started_at.as_second()),
        tenant_revision: view.tenant_revision(),
        calls: NodeCallsJson {
            in_progress: calls.in_progress,
            setups_per_second: calls.setups_per_second,
            setup_rate_seconds: SETUP_RATE_SECONDS,
            answered_last_hour: calls.answered_last_hour,
            missed_last_hour: calls.missed_last_hour,
            answer_rate_last_hour: calls.answer_rate_last_hour(),
            answer_rate_minutes: ANSWER_RATE_MINUTES,
            offered: calls.offered,
            answered: calls.answered,
            missed: calls.missed,
            refused: calls.refused,
        },
        sip: NodeSipJson {
            received: sip.received,
            requests: sip.requests,
            unparsable: sip.unparsable,
            rejected_requests: sip.rejected_requests,
            dropped_responses: sip.dropped_responses,
            stray_acks: sip.stray_acks,
            transaction_timeouts: sip.transaction_timeouts,
            transport_errors: sip.transport_errors,
            untrusted_rejected: sip.untrusted_rejected,
            untrusted_dropped: sip.untrusted_dropped,
            scanners_dropped: sip.scanners_dropped,
            flood_limited: sip.flood_limited,
        },
    }))
}

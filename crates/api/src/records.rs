//! What an enterprise reads in its backend: its call detail records (paged, and the
//! whole range as a streamed CSV), its missed calls, its prepaid account, ledger and
//! monthly bill, under `/api/v1/enterprises/{enterprise}/…`.
//!
//! Everything here only reads, so a viewer may use all of it; another enterprise's data
//! is `404`, as everywhere. The figures are the ones `sihai cdr`, `sihai account` and
//! `sihai bill` print, from the same code (`sihai_store::report`, `statement`), with
//! times as RFC 3339 and amounts as exact decimal yuan strings (`"0.325"`: the ledger's
//! amount, not the display's rounding).
//!
//! Pages are keyset pages: newest first by (setup time, record), `next` names the last
//! call of the page and `before=NEXT` continues after it, so a walk sees every call once
//! however many calls arrive meanwhile.

use std::str::FromStr;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sihai_billing::Month;
use sihai_store::statement::{self, StatementSummary};
use sihai_store::{Cdr, CdrFilter, LedgerEntry, LedgerQuery, Outcome, StoreError, report};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::{Api, blocking};

/// A page's size when the request names none.
const DEFAULT_LIMIT: usize = 50;
/// The largest page.
const MAX_LIMIT: usize = 500;
/// The CSV export reads this many CDRs at a time.
const EXPORT_PAGE: usize = 1000;
/// Pages of the CSV export waiting to be sent: the export holds at most this many (plus
/// the one being read) in memory, however long the range.
const EXPORT_QUEUE: usize = 2;

/// The outcomes that are a missed call: someone called the enterprise and nobody took
/// the call. They are the outcomes after which the call core sends the enterprise its
/// missed-call alert (crates/call `b2bua/record.rs`: any routed call that was not
/// answered, and a call refused after hours): nobody answered (`no_answer`), every phone
/// was busy (`busy`), the caller hung up while it rang (`cancelled`), no phone could be
/// reached (`failed`), or it came after hours (`after_hours`). Refusals by screening
/// (`rejected`, `blacklisted`) and for the enterprise's balance (`out_of_credit`) raise
/// no alert and are not missed calls.
pub const MISSED: [Outcome; 5] = [
    Outcome::NoAnswer,
    Outcome::Busy,
    Outcome::AfterHours,
    Outcome::Cancelled,
    Outcome::Failed,
];

fn visible(caller: &Caller, enterprise: &str) -> Result<(), ApiError> {
    if caller.sees(enterprise) {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

/// The query of the CDR routes, as text: each value is checked here, so a bad one is a
/// `400` saying which and why.
#[derive(Debug, Default, Deserialize)]
pub struct CdrQuery {
    since: Option<String>,
    until: Option<String>,
    number: Option<String>,
    caller: Option<String>,
    outcome: Option<String>,
    limit: Option<String>,
    before: Option<String>,
}

fn timestamp(name: &str, value: &str) -> Result<Timestamp, ApiError> {
    Timestamp::from_str(value).map_err(|_| {
        ApiError::BadRequest(format!(
            "{name} must be an RFC 3339 timestamp such as 2026-03-01T00:00:00+08:00, not {value:?}"
        ))
    })
}

/// A page's `next`: the last call's setup time (µs since the epoch) and its call id in
/// hex, so that it needs no escaping in a URL.
fn cursor(cdr: &Cdr) -> String {
    let hex: String = cdr.call_id.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{}.{hex}", cdr.setup_at.as_microsecond())
}

fn parse_cursor(text: &str) -> Result<(Timestamp, String), ApiError> {
    let bad = || ApiError::BadRequest(format!("before must be a page's next value, not {text:?}"));
    let (micros, hex) = text.split_once('.').ok_or_else(bad)?;
    let at = micros
        .parse::<i64>()
        .ok()
        .and_then(|m| Timestamp::from_microsecond(m).ok())
        .ok_or_else(bad)?;
    if hex.is_empty() || hex.len() % 2 != 0 || hex.len() > 512 {
        return Err(bad());
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    let call_id = String::from_utf8(bytes).map_err(|_| bad())?;
    Ok((at, call_id))
}

impl CdrQuery {
    /// The store's filter for `enterprise`'s calls; the page size is left to the caller.
    fn filter(&self, enterprise: &str) -> Result<CdrFilter, ApiError> {
        let since = self
            .since
            .as_deref()
            .map(|v| timestamp("since", v))
            .transpose()?;
        let until = self
            .until
            .as_deref()
            .map(|v| timestamp("until", v))
            .transpose()?;
        let outcome = self
            .outcome
            .as_deref()
            .map(|v| {
                v.parse::<Outcome>().map_err(|_| {
                    let names: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
                    ApiError::BadRequest(format!(
                        "outcome must be one of {}, not {v:?}",
                        names.join(", ")
                    ))
                })
            })
            .transpose()?;
        let before = self.before.as_deref().map(parse_cursor).transpose()?;
        // Normalised as `sihai cdr` does: the number canonical, the caller as stored.
        let number = self
            .number
            .as_deref()
            .map(|n| sihai_routing::normalise_400(n).unwrap_or_else(|| n.to_owned()));
        let caller = self
            .caller
            .as_deref()
            .map(|c| sihai_routing::normalise_caller(c).as_str().to_string());
        Ok(CdrFilter {
            number,
            enterprise: Some(enterprise.to_owned()),
            caller,
            since,
            until,
            outcome,
            before,
            ..CdrFilter::default()
        })
    }

    fn limit(&self) -> Result<usize, ApiError> {
        page_limit(self.limit.as_deref())
    }
}

/// A page's size: [`DEFAULT_LIMIT`] when not given, at most [`MAX_LIMIT`].
fn page_limit(text: Option<&str>) -> Result<usize, ApiError> {
    let Some(text) = text else {
        return Ok(DEFAULT_LIMIT);
    };
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(ApiError::BadRequest(format!(
            "limit must be a whole number from 1 to {MAX_LIMIT}, not {text:?}"
        ))),
    }
}

/// One phone tried.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AttemptJson {
    phone: String,
    /// `answered`, `busy`, `no_answer`, a SIP status such as `486`, `at_capacity`…
    result: String,
}

/// A call detail record: the columns of `sihai cdr --csv`, with times as RFC 3339 and
/// the cost as exact decimal yuan; `null` where the CSV has an empty field.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CdrJson {
    call_id: String,
    enterprise: String,
    /// The 400 number dialled.
    number: String,
    /// The caller's number, or `anonymous`.
    caller: String,
    /// "province city", one name when they are the same (北京).
    region: Option<String>,
    answered_by: Option<String>,
    setup: String,
    ring: Option<String>,
    answer: Option<String>,
    end: String,
    talk_s: u32,
    billed_seconds: u32,
    /// Exact decimal yuan, e.g. `"0.325"`; `null` when the call was not billed.
    cost: Option<String>,
    tariff: Option<String>,
    /// `answered`, `no_answer`, `busy`, `rejected`, `blacklisted`, `after_hours`,
    /// `out_of_credit`, `failed` or `cancelled`.
    outcome: String,
    /// Who hung up and why, e.g. `caller BYE`.
    hangup: Option<String>,
    attempts: Vec<AttemptJson>,
    recording: Option<String>,
    /// The voice-menu keys pressed, e.g. `1>3`.
    menu: Option<String>,
    /// The prompt the caller heard before the release.
    announcement: Option<String>,
    /// The caller's id in the enterprise's CRM, when its lookup (来电弹屏) gave one.
    customer_id: Option<String>,
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl From<Cdr> for CdrJson {
    fn from(cdr: Cdr) -> CdrJson {
        let region = match (cdr.caller_province.as_deref(), cdr.caller_city.as_deref()) {
            (Some(p), Some(c)) if p == c => p.to_owned(),
            (Some(p), Some(c)) => format!("{p} {c}"),
            (Some(x), None) | (None, Some(x)) => x.to_owned(),
            (None, None) => String::new(),
        };
        let hangup = match (cdr.hangup_side, cdr.hangup_cause.as_deref()) {
            (Some(s), Some(c)) => format!("{s} {c}"),
            (Some(s), None) => s.to_string(),
            (None, Some(c)) => c.to_owned(),
            (None, None) => String::new(),
        };
        CdrJson {
            call_id: cdr.call_id,
            enterprise: cdr.enterprise,
            number: cdr.number,
            caller: cdr.caller,
            region: non_empty(region),
            answered_by: cdr.answered_by,
            setup: cdr.setup_at.to_string(),
            ring: cdr.ring_at.map(|t| t.to_string()),
            answer: cdr.answer_at.map(|t| t.to_string()),
            end: cdr.end_at.to_string(),
            talk_s: cdr.talk_seconds,
            billed_seconds: cdr.billed_seconds,
            cost: cdr.cost.map(|m| m.exact().to_string()),
            tariff: cdr.tariff,
            outcome: cdr.outcome.as_str().to_owned(),
            hangup: non_empty(hangup),
            attempts: cdr
                .attempts
                .into_iter()
                .map(|a| AttemptJson {
                    phone: a.phone,
                    result: a.result,
                })
                .collect(),
            recording: cdr.recording,
            menu: cdr.menu_path,
            announcement: cdr.announcement,
            customer_id: cdr.customer_id,
        }
    }
}

/// One page of CDRs, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CdrPage {
    cdrs: Vec<CdrJson>,
    /// Pass it as `before` for the next page; `null` on the last page.
    next: Option<String>,
}

/// Reads one page: `limit` CDRs, and `next` when there may be more (one more is read to
/// know).
async fn page(api: &Api, mut filter: CdrFilter, limit: usize) -> Result<CdrPage, ApiError> {
    filter.limit = limit + 1;
    let store = api.cdrs.clone();
    let mut cdrs = blocking(move || store.query(&filter)).await?;
    let more = cdrs.len() > limit;
    cdrs.truncate(limit);
    let next = if more { cdrs.last().map(cursor) } else { None };
    Ok(CdrPage {
        cdrs: cdrs.into_iter().map(CdrJson::from).collect(),
        next,
    })
}

/// `GET /api/v1/enterprises/{enterprise}/cdrs`: the enterprise's calls, newest first.
#[utoipa::path(get, path = "/api/v1/enterprises/{enterprise}/cdrs", tag = "records", params(
        ("enterprise" = String, Path, description = "The enterprise's id"),
        ("since" = Option<String>, Query, description = "Calls set up at or after this RFC 3339 instant"),
        ("until" = Option<String>, Query, description = "Calls set up before this RFC 3339 instant"),
        ("number" = Option<String>, Query, description = "The 400 number dialled"),
        ("caller" = Option<String>, Query, description = "The caller's number"),
        ("outcome" = Option<String>, Query, description = "answered, no_answer, busy, rejected, blacklisted, after_hours, out_of_credit, failed or cancelled"),
        ("limit" = Option<usize>, Query, description = "Calls per page, 1 to 500 (50)"),
        ("before" = Option<String>, Query, description = "The previous page's `next`"),
    ),
    responses((status = 200, body = CdrPage), (status = 400, description = "A bad filter", body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 404, description = "Not your enterprise", body = crate::error::ErrorBody)))]
pub async fn cdrs(
    State(api): State<Api>,
    caller: Caller,
    Path(enterprise): Path<String>,
    Query(query): Query<CdrQuery>,
) -> Result<Json<CdrPage>, ApiError> {
    visible(&caller, &enterprise)?;
    let filter = query.filter(&enterprise)?;
    Ok(Json(page(&api, filter, query.limit()?).await?))
}

/// `GET /api/v1/enterprises/{enterprise}/missed-calls`: the calls nobody took (see
/// [`MISSED`]), newest first.
#[utoipa::path(get, path = "/api/v1/enterprises/{enterprise}/missed-calls", tag = "records", params(
        ("enterprise" = String, Path, description = "The enterprise's id"),
        ("since" = Option<String>, Query, description = "Calls set up at or after this RFC 3339 instant"),
        ("until" = Option<String>, Query, description = "Calls set up before this RFC 3339 instant"),
        ("number" = Option<String>, Query, description = "The 400 number dialled"),
        ("caller" = Option<String>, Query, description = "The caller's number"),
        ("outcome" = Option<String>, Query, description = "One of the missed outcomes: no_answer, busy, after_hours, cancelled or failed"),
        ("limit" = Option<usize>, Query, description = "Calls per page, 1 to 500 (50)"),
        ("before" = Option<String>, Query, description = "The previous page's `next`"),
    ),
    responses((status = 200, description = "Calls with outcome no_answer, busy, after_hours, cancelled or failed", body = CdrPage),
        (status = 400, description = "A bad filter", body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 404, description = "Not your enterprise", body = crate::error::ErrorBody)))]
pub async fn missed_calls(
    State(api): State<Api>,
    caller: Caller,
    Path(enterprise): Path<String>,
    Query(query): Query<CdrQuery>,
) -> Result<Json<CdrPage>, ApiError> {
    visible(&caller, &enterprise)?;
    let mut filter = query.filter(&enterprise)?;
    filter.outcomes = MISSED.to_vec();
    Ok(Json(page(&api, filter, query.limit()?).await?))
}

/// The CSV export's body: `first` (the header and the first page, already read), then
/// the following pages as the blocking pool reads them, one chunk each, until the range
/// ends or the client goes away. A store error ends the body with an error, so the
/// client sees a broken transfer rather than a short file.
fn csv_body(api: &Api, first: String, rest: Option<CdrFilter>) -> Body {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(EXPORT_QUEUE);
    let store = api.cdrs.clone();
    // `blocking_send` waits while the client reads: the export holds a few pages at most.
    tokio::task::spawn_blocking(move || {
        if tx.blocking_send(Ok(Bytes::from(first))).is_err() {
            return;
        }
        let Some(mut filter) = rest else { return };
        loop {
            let cdrs = match store.query(&filter) {
                Ok(cdrs) => cdrs,
                Err(err) => {
                    tracing::error!(%err, "the CDR export stopped");
                    let _ = tx.blocking_send(Err(std::io::Error::other(err.to_string())));
                    return;
                }
            };
            let Some(last) = cdrs.last() else { return };
            let next = (last.setup_at, last.call_id.clone());
            let full = cdrs.len() == filter.limit;
            if tx.blocking_send(Ok(Bytes::from(rows_only(&cdrs)))).is_err() {
                // The client went away.
                return;
            }
            if !full {
                return;
            }
            filter.before = Some(next);
        }
    });
    Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

/// The CSV lines of `cdrs` without the header `report::format_csv` starts with.
fn rows_only(cdrs: &[Cdr]) -> String {
    let text = report::format_csv(cdrs);
    match text.split_once("\r\n") {
        Some((_, rows)) => rows.to_owned(),
        None => String::new(),
    }
}

/// `GET /api/v1/enterprises/{enterprise}/cdrs.csv`: every call of the range as the CSV
/// of `sihai cdr --csv`, newest first, streamed page by page.
#[utoipa::path(get, path = "/api/v1/enterprises/{enterprise}/cdrs.csv", tag = "records", params(
        ("enterprise" = String, Path, description = "The enterprise's id"),
        ("since" = Option<String>, Query, description = "Calls set up at or after this RFC 3339 instant"),
        ("until" = Option<String>, Query, description = "Calls set up before this RFC 3339 instant"),
        ("number" = Option<String>, Query, description = "The 400 number dialled"),
        ("caller" = Option<String>, Query, description = "The caller's number"),
        ("outcome" = Option<String>, Query, description = "answered, no_answer, busy, rejected, blacklisted, after_hours, out_of_credit, failed or cancelled"),
        ("before" = Option<String>, Query, description = "Start after this call (a page's `next`)"),
    ),
    responses((status = 200, description = "RFC 4180 CSV with a header line: the columns of `sihai cdr --csv`", content_type = "text/csv"),
        (status = 400, description = "A bad filter", body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 404, description = "Not your enterprise", body = crate::error::ErrorBody)))]
pub async fn cdrs_csv(
    State(api): State<Api>,
    caller: Caller,
    Path(enterprise): Path<String>,
    Query(query): Query<CdrQuery>,
) -> Result<Response, ApiError> {
    visible(&caller, &enterprise)?;
    let mut filter = query.filter(&enterprise)?;
    filter.limit = EXPORT_PAGE;
    // The first page is read before answering, so that a store error is a plain 500.
    let store = api.cdrs.clone();
    let first_filter = filter.clone();
    let cdrs = blocking(move || store.query(&first_filter)).await?;
    let first = report::format_csv(&cdrs);
    let rest = match cdrs.last() {
        Some(last) if cdrs.len() == EXPORT_PAGE => {
            filter.before = Some((last.setup_at, last.call_id.clone()));
            Some(filter)
        }
        _ => None,
    };
    drop(cdrs);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"cdrs.csv\"",
            ),
        ],
        csv_body(&api, first, rest),
    )
        .into_response())
}

/// An enterprise's prepaid account.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountJson {
    enterprise: String,
    /// Exact decimal yuan: the sum of the ledger's entries.
    balance: String,
    /// What the calls in progress hold.
    reserved: String,
    /// What new calls may still reserve: balance minus reserved.
    available: String,
    /// `active`, `suspended` or `reclaimed`.
    status: String,
    status_since: String,
    /// When the balance went below zero, while it stays there.
    negative_since: Option<String>,
    /// The balance fell below the enterprise's `low_balance_warning` and the warning was
    /// sent (cleared by a recharge above it): the portal's low-balance banner.
    low_balance_warned: bool,
    opened_at: String,
}

/// `GET /api/v1/enterprises/{enterprise}/account`: balance, reserved, available, status.
#[utoipa::path(get, path = "/api/v1/enterprises/{enterprise}/account", tag = "records", params(
        ("enterprise" = String, Path, description = "The enterprise's id"),
    ),
    responses((status = 200, body = AccountJson), (status = 401, body = crate::error::ErrorBody),
        (status = 404, description = "Not your enterprise, or it has no prepaid account (not billed by sihai)", body = crate::error::ErrorBody)))]
pub async fn account(
    State(api): State<Api>,
    caller: Caller,
    Path(enterprise): Path<String>,
) -> Result<Json<AccountJson>, ApiError> {
    visible(&caller, &enterprise)?;
    let ledger = api.ledger.clone();
    let account = blocking(move || ledger.account(&enterprise))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(AccountJson {
        balance: account.balance.exact().to_string(),
        reserved: account.reserved.exact().to_string(),
        available: account.available().exact().to_string(),
        status: account.status.as_str().to_owned(),
        status_since: account.status_since.to_string(),
        negative_since: account.negative_since.map(|t| t.to_string()),
        low_balance_warned: account.low_balance_warned,
        opened_at: account.opened_at.to_string(),
        enterprise: account.enterprise,
    }))
}

/// The `month` of the ledger and bill routes, and the ledger's page.
#[derive(Debug, Default, Deserialize)]
pub struct MonthQuery {
    month: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

/// A ledger page's `next`: the last entry's time (µs since the epoch) and id.
fn ledger_cursor(entry: &LedgerEntry) -> String {
    format!("{}.{}", entry.at.as_microsecond(), entry.id)
}

fn parse_ledger_cursor(text: &str) -> Result<(Timestamp, i64), ApiError> {
    let bad = || ApiError::BadRequest(format!("after must be a page's next value, not {text:?}"));
    let (micros, id) = text.split_once('.').ok_or_else(bad)?;
    let at = micros
        .parse::<i64>()
        .ok()
        .and_then(|m| Timestamp::from_microsecond(m).ok())
        .ok_or_else(bad)?;
    Ok((at, id.parse::<i64>().map_err(|_| bad())?))
}

impl MonthQuery {
    fn limit(&self) -> Result<usize, ApiError> {
        page_limit(self.limit.as_deref())
    }

    /// The month asked for; the current one (Asia/Shanghai) when none is.
    fn month(&self) -> Result<Month, ApiError> {
        match self.month.as_deref() {
            None => Ok(Month::containing(Timestamp::now())),
            Some(text) => text.parse().map_err(|e: sihai_billing::ParseMonthError| {
                ApiError::BadRequest(format!("month: {e}, not {text:?}"))
            }),
        }
    }
}

/// One ledger entry, as `sihai account ledger` shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LedgerEntryJson {
    /// RFC 3339.
    time: String,
    /// `call_charge`, `recharge`, `adjustment`, `fee`, `monthly_minimum` or
    /// `suspension_day_fee`.
    kind: String,
    /// Exact decimal yuan; negative for a charge.
    amount: String,
    balance_after: String,
    reference: String,
    actor: String,
    note: Option<String>,
}

impl From<LedgerEntry> for LedgerEntryJson {
    fn from(e: LedgerEntry) -> LedgerEntryJson {
        LedgerEntryJson {
            time: e.at.to_string(),
            kind: e.kind.as_str().to_owned(),
            amount: e.amount.exact().to_string(),
            balance_after: e.balance_after.exact().to_string(),
            reference: e.reference,
            actor: e.actor,
            note: e.note,
        }
    }
}

/// A page of a month of the ledger.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LedgerJson {
    enterprise: String,
    /// `YYYY-MM`.
    month: String,
    /// Oldest first.
    entries: Vec<LedgerEntryJson>,
    /// Pass it as `after` for the next page; `null` on the last page.
    next: Option<String>,
}

/// The enterprise's account must exist: `404` otherwise (not billed, or unknown).
async fn has_account(api: &Api, enterprise: &str) -> Result<(), ApiError> {
    let ledger = api.ledger.clone();
    let id = enterprise.to_owned();
    blocking(move || ledger.account(&id))
        .await?
        .map(|_| ())
        .ok_or(ApiError::NotFound)
}

/// `GET /api/v1/enterprises/{enterprise}/ledger?month=YYYY-MM`: the month's entries,
/// oldest first, a page at a time (a busy month has an entry per charged call).
#[utoipa::path(get, path = "/api/v1/enterprises/{enterprise}/ledger", tag = "records", params(
        ("enterprise" = String, Path, description = "The enterprise's id"),
        ("month" = Option<String>, Query, description = "YYYY-MM, Asia/Shanghai; the current month when left out"),
        ("limit" = Option<usize>, Query, description = "Entries per page, 1 to 500 (50)"),
        ("after" = Option<String>, Query, description = "The previous page's `next`"),
    ),
    responses((status = 200, body = LedgerJson), (status = 400, description = "Not a month, or a bad page", body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody),
        (status = 404, description = "Not your enterprise, or it has no prepaid account", body = crate::error::ErrorBody)))]
pub async fn ledger(
    State(api): State<Api>,
    caller: Caller,
    Path(enterprise): Path<String>,
    Query(query): Query<MonthQuery>,
) -> Result<Json<LedgerJson>, ApiError> {
    visible(&caller, &enterprise)?;
    let month = query.month()?;
    let limit = query.limit()?;
    let after = query
        .after
        .as_deref()
        .map(parse_ledger_cursor)
        .transpose()?;
    has_account(&api, &enterprise).await?;
    let ledger = api.ledger.clone();
    let id = enterprise.clone();
    let mut entries = blocking(move || {
        ledger.ledger_entries(
            &id,
            &LedgerQuery {
                since: Some(month.start()),
                until: Some(month.end()),
                after,
                without_call_charges: false,
                limit: limit + 1,
            },
        )
    })
    .await?;
    let more = entries.len() > limit;
    entries.truncate(limit);
    let next = if more {
        entries.last().map(ledger_cursor)
    } else {
        None
    };
    Ok(Json(LedgerJson {
        enterprise,
        month: month.to_string(),
        entries: entries.into_iter().map(LedgerEntryJson::from).collect(),
        next,
    }))
}

/// A kind of entry and its sum over the month.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TotalJson {
    kind: String,
    /// How many entries of the kind.
    entries: u64,
    amount: String,
}

/// The monthly statement's figures, as `sihai bill` computes them.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BillJson {
    enterprise: String,
    name: String,
    /// `YYYY-MM`.
    month: String,
    /// The balance before the month.
    opening: String,
    /// The balance at its end (or now, for the current month).
    closing: String,
    /// The charged calls set up in the month.
    calls: u64,
    /// What they cost.
    calls_cost: String,
    /// The sum of each kind of entry, in the statement's order; kinds without an entry
    /// are left out.
    totals: Vec<TotalJson>,
    /// The sum of every entry: closing minus opening.
    entries_sum: String,
    /// The entries other than call charges (fees, minimums, adjustments, recharges).
    other_entries: Vec<LedgerEntryJson>,
}

/// `GET /api/v1/enterprises/{enterprise}/bill?month=YYYY-MM`: the monthly statement.
#[utoipa::path(get, path = "/api/v1/enterprises/{enterprise}/bill", tag = "records", params(
        ("enterprise" = String, Path, description = "The enterprise's id"),
        ("month" = Option<String>, Query, description = "YYYY-MM, Asia/Shanghai; the current month when left out"),
    ),
    responses((status = 200, body = BillJson), (status = 400, description = "Not a month", body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody),
        (status = 404, description = "Not your enterprise, or it has no prepaid account", body = crate::error::ErrorBody)))]
pub async fn bill(
    State(api): State<Api>,
    caller: Caller,
    Path(enterprise): Path<String>,
    Query(query): Query<MonthQuery>,
) -> Result<Json<BillJson>, ApiError> {
    visible(&caller, &enterprise)?;
    let month = query.month()?;
    has_account(&api, &enterprise).await?;
    let (ledger, cdrs, tenant) = (api.ledger.clone(), api.cdrs.clone(), api.tenant.clone());
    let id = enterprise.clone();
    // Counted and summed by the store: a month of a million calls is a few numbers, and
    // it reconciles as `sihai bill`'s statement does.
    let summary = blocking(
        move || -> Result<Result<StatementSummary, ApiError>, StoreError> {
            let (start, end) = (month.start(), month.end());
            let totals = ledger.ledger_totals(&id, start, end)?;
            let other = ledger.ledger_entries(
                &id,
                &LedgerQuery {
                    since: Some(start),
                    until: Some(end),
                    without_call_charges: true,
                    ..LedgerQuery::default()
                },
            )?;
            let calls = cdrs.charged_calls(&id, start, end)?;
            let name = enterprise_name(&*tenant, &id)?.unwrap_or_else(|| id.clone());
            Ok(
                StatementSummary::new(&id, &name, &month.to_string(), totals, calls, other)
                    .map_err(|e| ApiError::Internal(e.to_string())),
            )
        },
    )
    .await??;
    Ok(Json(BillJson {
        entries_sum: summary.entries_sum().exact().to_string(),
        enterprise: summary.enterprise,
        name: summary.name,
        month: summary.period,
        opening: summary.opening.exact().to_string(),
        closing: summary.closing.exact().to_string(),
        calls: summary.calls,
        calls_cost: summary.calls_cost.exact().to_string(),
        totals: summary
            .totals
            .into_iter()
            .map(|t| TotalJson {
                kind: t.kind.as_str().to_owned(),
                entries: t.entries,
                amount: t.amount.exact().to_string(),
            })
            .collect(),
        other_entries: summary
            .other_entries
            .into_iter()
            .map(LedgerEntryJson::from)
            .collect(),
    }))
}

/// The most charged calls a statement download holds: the statement is built whole in
/// memory (its call table is aligned over every line), so a month beyond this is
/// refused with a pointer to the streamed CSV export instead.
pub const STATEMENT_MAX_CALLS: u64 = 50_000;

/// The monthly statement as `sihai bill` prints it (`csv`: as `sihai bill --csv`),
/// read by the same [`statement::read_statement`].
async fn statement_download(
    api: &Api,
    caller: &Caller,
    enterprise: String,
    query: &MonthQuery,
    csv: bool,
) -> Result<Response, ApiError> {
    visible(caller, &enterprise)?;
    let month = query.month()?;
    has_account(api, &enterprise).await?;
    let (ledger, cdrs, tenant) = (api.ledger.clone(), api.cdrs.clone(), api.tenant.clone());
    let id = enterprise.clone();
    let text = blocking(move || -> Result<Result<String, ApiError>, StoreError> {
        let (start, end) = (month.start(), month.end());
        let (calls, _) = cdrs.charged_calls(&id, start, end)?;
        if calls > STATEMENT_MAX_CALLS {
            return Ok(Err(ApiError::BadRequest(format!(
                "{month} has {calls} charged calls, more than a statement download holds \
                 ({STATEMENT_MAX_CALLS}); export its calls with cdrs.csv, or print it with \
                 `sihai bill`"
            ))));
        }
        let name = enterprise_name(&*tenant, &id)?.unwrap_or_else(|| id.clone());
        let period = month.to_string();
        Ok(
            statement::read_statement(&*ledger, &*cdrs, (&id, &name, &period), start, end)?
                .map(|s| {
                    if csv {
                        statement::format_statement_csv(&s)
                    } else {
                        statement::format_statement(&s)
                    }
                })
                .map_err(|e| ApiError::Internal(e.to_string())),
        )
    })
    .await??;
    let safe: String = enterprise
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect();
    let (kind, extension) = if csv {
        ("text/csv; charset=utf-8", "csv")
    } else {
        ("text/plain; charset=utf-8", "txt")
    };
    Ok((
        [
            (header::CONTENT_TYPE, kind.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"statement-{safe}-{month}.{extension}\""),
            ),
        ],
        text,
    )
        .into_response())
}

/// `GET /api/v1/enterprises/{enterprise}/bill.txt?month=YYYY-MM`: the monthly statement
/// (话费详单) as `sihai bill` prints it, to download.
#[utoipa::path(get, path = "/api/v1/enterprises/{enterprise}/bill.txt", tag = "records", params(
        ("enterprise" = String, Path, description = "The enterprise's id"),
        ("month" = Option<String>, Query, description = "YYYY-MM, Asia/Shanghai; the current month when left out"),
    ),
    responses((status = 200, description = "The statement as `sihai bill` prints it: opening balance, the charged calls, the other entries, the totals per kind, the closing balance", content_type = "text/plain"),
        (status = 400, description = "Not a month, or more charged calls than a download holds (50,000)", body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody),
        (status = 404, description = "Not your enterprise, or it has no prepaid account", body = crate::error::ErrorBody)))]
pub async fn bill_text(
    State(api): State<Api>,
    caller: Caller,
    Path(enterprise): Path<String>,
    Query(query): Query<MonthQuery>,
) -> Result<Response, ApiError> {
    statement_download(&api, &caller, enterprise, &query, false).await
}

/// `GET /api/v1/enterprises/{enterprise}/bill.csv?month=YYYY-MM`: the statement's call
/// lines as `sihai bill --csv` prints them.
#[utoipa::path(get, path = "/api/v1/enterprises/{enterprise}/bill.csv", tag = "records", params(
        ("enterprise" = String, Path, description = "The enterprise's id"),
        ("month" = Option<String>, Query, description = "YYYY-MM, Asia/Shanghai; the current month when left out"),
    ),
    responses((status = 200, description = "RFC 4180 CSV with a header line: the charged calls of the month, oldest first, as `sihai bill --csv` prints them", content_type = "text/csv"),
        (status = 400, description = "Not a month, or more charged calls than a download holds (50,000)", body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody),
        (status = 404, description = "Not your enterprise, or it has no prepaid account", body = crate::error::ErrorBody)))]
pub async fn bill_csv(
    State(api): State<Api>,
    caller: Caller,
    Path(enterprise): Path<String>,
    Query(query): Query<MonthQuery>,
) -> Result<Response, ApiError> {
    statement_download(&api, &caller, enterprise, &query, true).await
}

/// The enterprise's display name, from its `[[enterprise]]` entry in the store.
fn enterprise_name(
    tenant: &dyn sihai_store::TenantStore,
    id: &str,
) -> Result<Option<String>, StoreError> {
    let data = tenant.tenant()?;
    Ok(data
        .entries
        .iter()
        .find(|s| s.entry.section == "enterprise" && s.entry.key == id)
        .and_then(|s| sihai_config::tenant::fields_of(&s.entry))
        .and_then(|fields| fields.get("name")?.as_str().map(str::to_owned)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_garbage_is_refused() {
        let at: Timestamp = "2026-03-02T01:59:58.123456Z".parse().unwrap();
        let cdr_id = "a1b2-r:x";
        let text = format!(
            "{}.{}",
            at.as_microsecond(),
            cdr_id
                .bytes()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        assert_eq!(parse_cursor(&text).unwrap(), (at, cdr_id.to_owned()));
        for bad in [
            "",
            "12",
            "x.61",
            "12.6",
            "12.zz",
            "12.",
            "99999999999999999999.61",
        ] {
            assert!(parse_cursor(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limits_and_filters_are_checked() {
        let q = |f: fn(&mut CdrQuery)| {
            let mut query = CdrQuery::default();
            f(&mut query);
            query
        };
        assert_eq!(CdrQuery::default().limit().unwrap(), DEFAULT_LIMIT);
        assert_eq!(q(|q| q.limit = Some("500".into())).limit().unwrap(), 500);
        for bad in ["0", "501", "-1", "ten"] {
            let query = CdrQuery {
                limit: Some(bad.into()),
                ..CdrQuery::default()
            };
            assert!(query.limit().is_err(), "{bad}");
        }
        assert!(
            q(|q| q.since = Some("yesterday".into()))
                .filter("acme")
                .is_err()
        );
        assert!(
            q(|q| q.outcome = Some("missed".into()))
                .filter("acme")
                .is_err()
        );
        let filter = q(|q| {
            q.since = Some("2026-03-01T00:00:00+08:00".into());
            q.outcome = Some("no_answer".into());
        })
        .filter("acme")
        .unwrap();
        assert_eq!(filter.enterprise.as_deref(), Some("acme"));
        assert_eq!(filter.outcome, Some(Outcome::NoAnswer));
        assert_eq!(
            filter.since,
            Some("2026-02-28T16:00:00Z".parse::<Timestamp>().unwrap())
        );
    }

    #[test]
    fn months_are_validated() {
        let m = |s: &str| {
            MonthQuery {
                month: Some(s.into()),
                ..MonthQuery::default()
            }
            .month()
        };
        assert_eq!(m("2026-03").unwrap().to_string(), "2026-03");
        for bad in ["2026-13", "2026-3", "march", "2026-03-01", ""] {
            assert!(m(bad).is_err(), "{bad}");
        }
        assert!(MonthQuery::default().month().is_ok());
    }

    #[test]
    fn a_ledger_cursor_round_trips_and_garbage_is_refused() {
        let at: Timestamp = "2026-03-02T01:59:58.123456Z".parse().unwrap();
        let entry = LedgerEntry {
            id: 42,
            enterprise: "acme".into(),
            kind: sihai_store::EntryKind::Recharge,
            amount: sihai_store::Money::ZERO,
            reference: "r".into(),
            at,
            actor: "cli".into(),
            note: None,
            balance_after: sihai_store::Money::ZERO,
        };
        assert_eq!(
            parse_ledger_cursor(&ledger_cursor(&entry)).unwrap(),
            (at, 42)
        );
        for bad in ["", "12", "x.1", "12.x", "12.", "99999999999999999999.1"] {
            assert!(parse_ledger_cursor(bad).is_err(), "{bad:?}");
        }
    }
}

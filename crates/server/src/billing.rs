//! Prepaid billing at the daemon's edge: what the pure state machines of `sihai-billing`
//! ask, carried out against the store.
//!
//! - [`serve`]: a billed call's requests (admission, renewals, its answer) go to the
//!   store and its answers back to the call, within the same turn of the event loop.
//!   The SQLite store answers a reservation from its in-memory book (a few
//!   microseconds, no disk); a store that needs a round trip (PostgreSQL) will answer
//!   later through the same [`Core::on_reservation`](crate::Core::on_reservation).
//! - [`recover`]: at start, the calls a killed daemon left open are settled, each once,
//!   before any new call is taken (the crash policy is in docs/billing.md).
//! - [`run_lifecycle`]: every `[billing] lifecycle_interval_s`, each billed account is
//!   reviewed: the price list's fees for what it has configured (opening, extra bound
//!   phones, ringback recordings, extensions), each billed number's month-end minimum
//!   for the months that ended, then the lifecycle (suspension, the daily fee, reclaim,
//!   the low-balance warning).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jiff::Timestamp;
use sihai_billing::{
    Billables, LifecycleAction, Month, day_fee_day, days_until, fees_due, monthly_minimum,
    months_due, reclaim_due_at, review,
};
use sihai_config::{Config, Enterprise, EnterpriseBilling, PhoneTarget};
use sihai_rating::{Call, CallerRegion, Money, billable_seconds, rate};
use sihai_records::json_string;
use sihai_store::{
    Account, AccountStatus, Cdr, CdrStore, EntryKind, Exclusive, HangupSide, Job, LedgerStore,
    NewAlert, NewEntry, OpenReservation, Outcome, Refusal, ReservationOutcome, Spender, StoreError,
};
use tracing::{debug, error, info, warn};

use crate::Core;
use sihai_call::b2bua::BillingOp;

/// Where reservation answers come back to the event loop: at once for a store that
/// answers from memory (SQLite), later for one that needs a round trip (PostgreSQL),
/// in which case the loop receives them with [`Reservations::recv`].
pub struct Reservations {
    tx: tokio::sync::mpsc::UnboundedSender<(String, ReservationOutcome)>,
    rx: tokio::sync::mpsc::UnboundedReceiver<(String, ReservationOutcome)>,
}

impl Default for Reservations {
    fn default() -> Self {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        Reservations { tx, rx }
    }
}

impl Reservations {
    /// The next answer that came back after [`serve`] returned.
    pub async fn recv(&mut self) -> Option<(String, ReservationOutcome)> {
        self.rx.recv().await
    }
}

/// Carries out every billing request the core has queued. Each reservation goes to
/// the store without waiting ([`LedgerStore::reserve_then`]); answers already there
/// (SQLite's, given at once) are fed back to their calls within this turn of the event
/// loop, which may queue more (a call admitted by a voice menu is answered at once).
/// The store not answering (its database unreachable) refuses the call with `503`
/// ([`Refusal::Unavailable`]).
pub fn serve(core: &mut Core, ledger: &dyn LedgerStore, reservations: &mut Reservations) {
    loop {
        while let Some(op) = core.poll_billing() {
            match op {
                BillingOp::Reserve(request) => {
                    let call_id = request.call_id.clone();
                    let answers = reservations.tx.clone();
                    ledger.reserve_then(
                        request,
                        Box::new(move |result| {
                            let outcome = result.unwrap_or_else(|err| {
                                // Without an answer nothing is known of the account:
                                // turned away to be retried, not told it has no money.
                                error!(call = %call_id, %err, "cannot reserve the call's balance; refused with 503");
                                ReservationOutcome::Refused(Refusal::Unavailable)
                            });
                            // The loop has stopped: the call is gone with it.
                            let _ = answers.send((call_id, outcome));
                        }),
                    );
                }
                BillingOp::Answered { call_id, at } => {
                    if let Err(err) = ledger.mark_answered(&call_id, at) {
                        error!(call = %call_id, %err, "cannot record the call's answer with its reservation");
                    }
                }
            }
        }
        let mut answered = false;
        while let Ok((call_id, outcome)) = reservations.rx.try_recv() {
            core.on_reservation(Instant::now(), Timestamp::now(), &call_id, outcome);
            answered = true;
        }
        if !answered {
            return;
        }
    }
}

/// Opens an account for every billed enterprise that has none yet (balance zero), so
/// that `sihai account list` shows it and its calls are refused for want of money
/// rather than for want of an account.
pub fn open_accounts(ledger: &dyn LedgerStore, config: &Config, now: Timestamp) {
    for enterprise in config.enterprises.iter().filter(|e| e.billing.is_some()) {
        if let Err(err) = ledger.open_account(&enterprise.id, now) {
            error!(enterprise = %enterprise.id, %err, "cannot open the enterprise's account");
        }
    }
}

/// Where one prepaid account stands, as every door shows it (`sihai account list` and
/// `show`, the API's `GET /api/v1/accounts`): the account, its enterprise as configured
/// now, and what the lifecycle's own rules ([`sihai_billing::reclaim_due_at`]) say of
/// it.
#[derive(Debug, Clone)]
pub struct Standing {
    pub account: Account,
    /// The enterprise as configured; `None` when it is no longer.
    pub enterprise: Option<Enterprise>,
    /// The balance is below zero (since `account.negative_since`).
    pub negative: bool,
    /// When the account is reclaimed if the balance stays below zero; `None` while it
    /// is not below zero, once reclaimed, or when the enterprise is no longer billed
    /// (no policy: the lifecycle no longer reviews it).
    pub reclaim_at: Option<Timestamp>,
    /// Whole days until `reclaim_at`, rounded up (0: due now).
    pub days_until_reclaim: Option<u32>,
}

impl Standing {
    pub fn new(account: Account, enterprise: Option<&Enterprise>, now: Timestamp) -> Standing {
        let policy = enterprise
            .and_then(|e| e.billing.as_ref())
            .map(|b| &b.policy);
        let reclaim_at = policy.and_then(|p| reclaim_due_at(&account, p, now));
        Standing {
            negative: account.balance.is_negative(),
            days_until_reclaim: reclaim_at.map(|at| days_until(at, now)),
            reclaim_at,
            enterprise: enterprise.cloned(),
            account,
        }
    }

    /// The enterprise's tariff and policy now; `None` when it is not billed (any more).
    pub fn billing(&self) -> Option<&EnterpriseBilling> {
        self.enterprise.as_ref().and_then(|e| e.billing.as_ref())
    }
}

/// Every prepaid account as it stands at `now`, in the store's order, after opening the
/// account of any billed enterprise that has none yet (as the daemon does at start and
/// on reload).
pub fn standings(
    ledger: &dyn LedgerStore,
    config: &Config,
    now: Timestamp,
) -> Result<Vec<Standing>, StoreError> {
    open_accounts(ledger, config, now);
    let enterprises: HashMap<&str, &Enterprise> = config
        .enterprises
        .iter()
        .map(|e| (e.id.as_str(), e))
        .collect();
    Ok(ledger
        .accounts()?
        .into_iter()
        .map(|account| {
            let enterprise = enterprises.get(account.enterprise.as_str()).copied();
            Standing::new(account, enterprise, now)
        })
        .collect())
}

/// Settles every call a previous run left open (killed, or the machine lost), once.
///
/// The policy: an answered call is charged from its answer to the last moment the
/// store knew the daemon was running (`alive_at`, stamped at every commit and every
/// second while calls are open), never more than the money it held (the daemon would
/// have cut it there); its CDR says `hangup_cause = "restart"`. A call that was not
/// answered costs nothing. Each settles through the same `record` as any call, so a
/// CDR already written for it (the call ended just before the kill) makes the
/// settlement a no-op: no call is charged twice.
pub fn recover(
    store: &dyn CdrStore,
    ledger: &dyn LedgerStore,
    config: &Config,
) -> Result<usize, StoreError> {
    let (alive_at, open) = ledger.open_reservations()?;
    let count = open.len();
    for reservation in open {
        let cdr = recovered_cdr(&reservation, alive_at, config);
        info!(call = %cdr.call_id, enterprise = %cdr.enterprise, answered = cdr.answer_at.is_some(),
            billed_seconds = cdr.billed_seconds, cost = %cdr.cost.unwrap_or_default(),
            "settling a call left open by the previous run");
        store.record(cdr, None)?;
    }
    if count > 0 {
        store.flush()?;
    }
    Ok(count)
}

/// The CDR, and so the settlement, of a call left open: see [`recover`].
fn recovered_cdr(
    reservation: &OpenReservation,
    alive_at: Option<Timestamp>,
    config: &Config,
) -> Cdr {
    let info = &reservation.recovery;
    let answered_at = info.answered_at;
    let end_at = alive_at
        .unwrap_or(info.setup_at)
        .max(answered_at.unwrap_or(info.setup_at));
    let tariff = config.tariff(&info.tariff);
    let (billed_seconds, cost) = match (answered_at, tariff) {
        (Some(answered_at), Some(tariff)) => {
            let region = info
                .caller_province
                .as_deref()
                .map(|province| CallerRegion {
                    province,
                    city: info.caller_city.as_deref().unwrap_or(""),
                });
            let rating = rate(
                tariff,
                &Call {
                    answered_at,
                    seconds: billable_seconds(answered_at, end_at),
                    region,
                },
            );
            (rating.billed_seconds, rating.cost.min(reservation.held))
        }
        (Some(_), None) => {
            error!(call = %reservation.call_id, tariff = %info.tariff,
                "the tariff of a call left open is no longer configured; it is not charged");
            (0, Money::ZERO)
        }
        (None, _) => (0, Money::ZERO),
    };
    let talk_seconds = answered_at.map_or(0, |at| billable_seconds(at, end_at));
    Cdr {
        call_id: reservation.call_id.clone(),
        number: info.number.clone(),
        enterprise: reservation.enterprise.clone(),
        caller: info.caller.clone(),
        caller_province: info.caller_province.clone(),
        caller_city: info.caller_city.clone(),
        answered_by: None,
        attempts: Vec::new(),
        setup_at: info.setup_at,
        ring_at: None,
        answer_at: answered_at,
        end_at,
        talk_seconds,
        outcome: if answered_at.is_some() {
            Outcome::Answered
        } else {
            Outcome::Failed
        },
        hangup_side: Some(HangupSide::System),
        hangup_cause: Some("restart".into()),
        recording: None,
        menu_path: None,
        announcement: None,
        billed_seconds,
        cost: Some(cost),
        tariff: Some(info.tariff.clone()),
        customer_id: None,
    }
}

/// The months whose minimum each number has been settled up to, kept between passes
/// (a pass after a restart recomputes them; posting is idempotent).
#[derive(Debug, Default)]
pub struct MonthEnds {
    covered: HashMap<String, Month>,
}

/// What `enterprise_id` has configured that the price list's fees count: its bound
/// phones by first appearance in its groups (in the file's order, so a phone added at
/// the end is the one beyond the included ones, not one already charged), its
/// extensions, and the prompts its numbers', menu nodes' and extensions' ringbacks name.
/// Disabled phones count: disabling keeps the phone bound (it is in the file, ready to
/// ring again on a reload), it only stops ringing it.
pub fn billables(config: &Config, enterprise_id: &str) -> Billables {
    let phones = config
        .groups
        .iter()
        .filter(|g| g.enterprise == enterprise_id)
        .flat_map(|g| &g.phones)
        .map(|phone| match &phone.target {
            PhoneTarget::Number(number) => number.clone(),
            PhoneTarget::Uri(uri) => uri.clone(),
        })
        .collect();
    let extensions = config
        .extensions
        .iter()
        .filter(|e| e.enterprise == enterprise_id);
    let ringbacks = config
        .numbers
        .iter()
        .filter(|n| n.enterprise == enterprise_id)
        .filter_map(|n| n.ringback.clone())
        .chain(
            config
                .menus
                .iter()
                .filter(|m| m.enterprise == enterprise_id)
                .flat_map(|m| &m.nodes)
                .filter_map(|node| node.ringback.clone()),
        )
        .chain(extensions.clone().filter_map(|e| e.ringback.clone()))
        .collect();
    Billables {
        phones,
        extensions: extensions.map(|e| e.number.clone()).collect(),
        ringbacks,
    }
}

/// One review of one billed enterprise's account at `now`: the price list's fees for
/// what it has configured, the month-end minimum of its numbers, then its lifecycle
/// (day fees, suspension, resumption, reclaim, warning), carried out in order and
/// alerted. The fees come first so that one taking the balance below a threshold is
/// judged by the same pass. A reclaimed account is charged nothing. Returns a line per
/// thing done.
pub fn review_account(
    store: &dyn CdrStore,
    ledger: &dyn LedgerStore,
    config: &Config,
    enterprise_id: &str,
    now: Timestamp,
    month_ends: &mut MonthEnds,
) -> Result<Vec<String>, StoreError> {
    let mut done = Vec::new();
    let Some(enterprise) = config.enterprise(enterprise_id) else {
        return Ok(done);
    };
    let Some(billing) = &enterprise.billing else {
        return Ok(done);
    };
    let policy = &billing.policy;
    let account = ledger.open_account(enterprise_id, now)?;
    if account.status != AccountStatus::Reclaimed {
        let due = fees_due(
            enterprise_id,
            policy,
            &billables(config, enterprise_id),
            account.opened_at,
            now,
        );
        for entry in due {
            let (reference, amount) = (entry.reference.clone(), entry.amount);
            if post_once(ledger, entry)? {
                info!(enterprise = enterprise_id, %reference, %amount, "fee posted");
                done.push(format!("{enterprise_id}: {reference} {amount}"));
            }
        }
        for number in config
            .numbers
            .iter()
            .filter(|n| n.enterprise == enterprise_id)
        {
            let last = month_ends.covered.get(&number.number).copied();
            for month in months_due(now, last, account.opened_at) {
                let spent =
                    ledger.spent(Spender::Number(&number.number), month.start(), month.end())?;
                if let Some(entry) = monthly_minimum(
                    enterprise_id,
                    &number.number,
                    month,
                    policy.monthly_minimum,
                    spent,
                ) {
                    let amount = entry.amount;
                    if post_once(ledger, entry)? {
                        done.push(format!(
                            "{enterprise_id}: {} {month} monthly minimum {amount}",
                            number.number
                        ));
                    }
                }
                month_ends.covered.insert(number.number.clone(), month);
            }
        }
    }
    let account = ledger.account(enterprise_id)?.unwrap_or(account);
    let last_day_fee = if account.status == AccountStatus::Suspended {
        ledger
            .ledger(enterprise_id, Some(account.status_since), None)?
            .iter()
            .filter(|e| e.kind == EntryKind::SuspensionDayFee)
            .filter_map(|e| day_fee_day(&e.reference))
            .max()
    } else {
        None
    };
    let outcome = review(&account, policy, now, last_day_fee);
    for action in outcome.actions {
        match action {
            LifecycleAction::PostDayFee { day, entry } => {
                if post_once(ledger, entry)? {
                    done.push(format!("{enterprise_id}: suspended-day fee for {day}"));
                }
            }
            LifecycleAction::Suspend => {
                ledger.set_status(enterprise_id, AccountStatus::Suspended, now)?;
                warn!(enterprise = enterprise_id, balance = %outcome.balance, "account suspended");
                alert(
                    store,
                    config,
                    enterprise_id,
                    "account_suspended",
                    outcome.balance,
                    now,
                )?;
                done.push(format!("{enterprise_id}: suspended"));
            }
            LifecycleAction::Resume => {
                ledger.set_status(enterprise_id, AccountStatus::Active, now)?;
                info!(enterprise = enterprise_id, balance = %outcome.balance, "account resumed");
                alert(
                    store,
                    config,
                    enterprise_id,
                    "account_resumed",
                    outcome.balance,
                    now,
                )?;
                done.push(format!("{enterprise_id}: resumed"));
            }
            LifecycleAction::Reclaim => {
                ledger.set_status(enterprise_id, AccountStatus::Reclaimed, now)?;
                warn!(enterprise = enterprise_id, balance = %outcome.balance, "account's numbers reclaimed");
                alert(
                    store,
                    config,
                    enterprise_id,
                    "numbers_reclaimed",
                    outcome.balance,
                    now,
                )?;
                done.push(format!("{enterprise_id}: numbers reclaimed"));
            }
            LifecycleAction::WarnLowBalance { balance } => {
                ledger.set_low_balance_warned(enterprise_id, true)?;
                info!(enterprise = enterprise_id, %balance, "low balance");
                alert(store, config, enterprise_id, "low_balance", balance, now)?;
                done.push(format!("{enterprise_id}: low-balance warning"));
            }
            LifecycleAction::ClearLowBalanceWarning => {
                ledger.set_low_balance_warned(enterprise_id, false)?;
            }
        }
    }
    Ok(done)
}

/// Posts an entry the lifecycle computed, once: true if it is new. An entry posted before
/// under the same reference at another amount (the price list changed since, or a month's
/// spend moved after its minimum was posted) stays as it was: what was charged then is
/// the charge, and failing here would stop the account's lifecycle at every pass.
fn post_once(ledger: &dyn LedgerStore, entry: NewEntry) -> Result<bool, StoreError> {
    let (reference, amount) = (entry.reference.clone(), entry.amount);
    match ledger.post(entry) {
        Ok(posted) => Ok(posted.is_new()),
        Err(StoreError::ConflictingEntry { .. }) => {
            debug!(%reference, %amount, "already posted at another amount; kept");
            Ok(false)
        }
        Err(err) => Err(err),
    }
}

/// Queues a webhook notice about the account, if the enterprise has a webhook.
fn alert(
    store: &dyn CdrStore,
    config: &Config,
    enterprise_id: &str,
    event: &str,
    balance: Money,
    now: Timestamp,
) -> Result<(), StoreError> {
    let Some(url) = config
        .enterprise(enterprise_id)
        .and_then(|e| e.alert_webhook.clone())
    else {
        return Ok(());
    };
    let payload = format!(
        "{{\"event\":\"{event}\",\"enterprise\":{},\"balance\":\"{balance}\",\"time\":\"{now}\"}}",
        json_string(enterprise_id),
    );
    let reference = format!("account/{enterprise_id}/{event}/{}", now.as_microsecond());
    store.queue_alert(
        &reference,
        NewAlert {
            enterprise: enterprise_id.to_owned(),
            url,
            payload,
        },
        now,
    )
}

/// Reviews every billed account at start and then every `[billing]
/// lifecycle_interval_s` of the running configuration, until `shutdown`.
pub async fn run_lifecycle(
    store: Arc<dyn CdrStore>,
    ledger: Arc<dyn LedgerStore>,
    jobs: Arc<dyn Exclusive>,
    config: Arc<ArcSwap<Config>>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut shutdown = shutdown;
    let month_ends = Arc::new(std::sync::Mutex::new(MonthEnds::default()));
    loop {
        let running = config.load_full();
        let interval = running.billing.lifecycle_interval;
        let (store, ledger, month_ends) = (store.clone(), ledger.clone(), month_ends.clone());
        let jobs = jobs.clone();
        let pass = tokio::task::spawn_blocking(move || {
            let mut month_ends = month_ends
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // One node reviews the accounts at a time (the store's lock for the job);
            // the others skip this pass.
            jobs.exclusively(Job::Lifecycle, &mut || {
                let now = Timestamp::now();
                for enterprise in running.enterprises.iter().filter(|e| e.billing.is_some()) {
                    match review_account(&*store, &*ledger, &running, &enterprise.id, now, &mut month_ends) {
                        Ok(done) => {
                            for line in done {
                                info!("billing: {line}");
                            }
                        }
                        Err(err) => {
                            error!(enterprise = %enterprise.id, %err, "account review failed; retried next pass")
                        }
                    }
                }
            })
        })
        .await;
        match pass {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => debug!("another node is reviewing the accounts; skipped this pass"),
            Ok(Err(err)) => warn!(%err, "cannot take the account review's lock; retried next pass"),
            Err(err) => error!(%err, "account review task failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(interval.max(Duration::from_secs(1))) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample configuration: acme's phones by first appearance in its groups (one
    /// disabled phone included), its two extensions, and its one ringback prompt once
    /// although a number, a menu node and an extension all name it.
    #[test]
    fn the_sample_enterprise_s_billables_come_from_its_groups_extensions_and_ringbacks() {
        let path =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/sihai.toml");
        let config = Config::load(&path).expect("the sample configuration loads");
        let acme = billables(&config, "acme");
        assert_eq!(
            &acme.phones[..5],
            [
                "13900000001",
                "13900000002",
                "13900000011",
                "13900000012",
                "01012345678"
            ]
        );
        assert!(acme.phones.contains(&"sip:8002@127.0.0.1:5080".to_owned()));
        assert_eq!(acme.extensions, ["8001", "8002"]);
        assert!(
            acme.ringbacks.iter().all(|p| p == "please-hold"),
            "{acme:?}"
        );
        assert!(acme.ringbacks.len() >= 3, "{acme:?}");
        let huaxia = billables(&config, "huaxia");
        assert!(huaxia.extensions.is_empty());
        assert!(
            huaxia
                .phones
                .contains(&"sip:8000@127.0.0.1:5080".to_owned())
        );
        assert!(!huaxia.phones.contains(&"13900000001".to_owned()));

        // What that costs acme under the sample price list: ¥150 for the recording and
        // ¥150 per extension; its 12 phones are within the 20 included.
        let policy = &config
            .enterprise("acme")
            .and_then(|e| e.billing.as_ref())
            .expect("acme is billed")
            .policy;
        let now = Timestamp::from_second(1_780_000_000).expect("an instant");
        let due = fees_due("acme", policy, &acme, now, now);
        let references: Vec<&str> = due.iter().map(|e| e.reference.as_str()).collect();
        assert_eq!(
            references,
            [
                "fee/ringback/please-hold",
                "fee/extension/2026/8001",
                "fee/extension/2026/8002"
            ],
            "{due:#?}"
        );
    }
}

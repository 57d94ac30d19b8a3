//! One call's billing, from admission to settlement: a sans-IO state machine.
//!
//! ```text
//!   admitting ──granted──► admitted ──answer──► billing ◄──────────┐
//!       │                     │                  │  renew_at        │ granted > 0
//!    refused               (ends)                ▼                  │
//!       ▼                     │               renewing ─────────────┘
//!   (refused call)            │                  │ granted 0: no more renewals
//!                             ▼                  ▼
//!                          settled ◄──── ends / cut_at (out of credit)
//! ```
//!
//! The daemon asks the store for a reservation when the call arrives ([`CallBilling::admit`]);
//! nothing rings until the store grants it. The first reservation holds what
//! `reservation_seconds` of talk would cost (or what is left, if less). Billing starts
//! when the caller's leg is answered — a voice menu answers at once, so menu time is
//! billed, as carriers bill it. From then on the call knows exactly how long the money it
//! holds lasts ([`Tariff::max_duration_for`]), so it sets two instants: `renew_at`, a
//! little before that, when it asks for another chunk, and `cut_at`, when the money it
//! holds runs out. A renewal that comes back with more moves `cut_at`; one that comes back
//! with nothing leaves it, and the call is cut at the exact moment its money ends.
//!
//! At the end, [`CallBilling::settle`] rates the call from the answer to the hang-up;
//! that cost goes into the CDR and the store posts it, once, with the CDR.
//!
//! Because a call only ever spends what it holds, calls sharing one balance never
//! spend more than it covers together: each holds its own part.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use sihai_rating::{Call, CallerRegion, Money, Tariff, billable_seconds, rate};
use sihai_records::{RecoveryInfo, Refusal, ReservationOutcome, ReservationRequest};

/// The longest a renewal is asked for ahead of the moment the money held runs out.
pub const MAX_RENEW_LEAD: Duration = Duration::from_secs(60);

/// How soon a renewal the store could not answer ([`Refusal::Unavailable`]) is asked
/// again, while the call still holds money.
pub const RENEW_RETRY: Duration = Duration::from_secs(2);

/// What one call needs to be billed.
#[derive(Debug, Clone)]
pub struct CallParams {
    pub call_id: String,
    pub enterprise: String,
    pub tariff: Arc<Tariff>,
    /// The available balance an account needs to admit the call (its minimum balance).
    pub floor: Money,
    /// Talk time one reservation chunk covers.
    pub reservation_seconds: u32,
    /// Who called what, and when: kept with the reservation for crash recovery.
    pub number: String,
    pub caller: String,
    pub caller_province: Option<String>,
    pub caller_city: Option<String>,
    pub setup_at: Timestamp,
}

/// Where the call's billing stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The admission request is with the store.
    Admitting,
    /// Admission refused: the call must not ring anyone.
    Refused(Refusal),
    /// Admitted and holding money; not answered yet, so nothing is billed.
    Admitted,
    /// Answered: time is billed from `answered_at`.
    Billing,
    /// Settled: the cost is final.
    Settled,
}

/// What a store reply means for the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The call may proceed (ring phones, run its menu).
    Admit,
    /// The call must be refused: out of credit, suspended or reclaimed.
    Refuse(Refusal),
    /// A renewal came back; the cut-off moved (or, granted nothing, stays).
    Renewed { granted: Money },
    /// A reply the call no longer waits for (it ended meanwhile).
    Ignored,
}

/// What a timer means for the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// Ask the store for another chunk.
    Renew(Box<ReservationRequest>),
    /// The money held has run out: end the call now.
    CutOff,
}

/// What the call cost, for its CDR and the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub billed_seconds: u32,
    pub cost: Money,
    pub tariff: String,
}

/// One call's billing state machine.
#[derive(Debug, Clone)]
pub struct CallBilling {
    params: CallParams,
    phase: Phase,
    /// Everything the store has granted the call so far.
    held: Money,
    answered_at: Option<Timestamp>,
    answered: Option<Instant>,
    /// When the money held runs out (only while billing).
    cut_at: Option<Instant>,
    /// When to ask for more; `None` while a renewal is out, or once one came back empty.
    renew_at: Option<Instant>,
    renewing: bool,
}

impl CallBilling {
    /// Starts a call's billing: the machine, and the admission request for the store.
    pub fn admit(params: CallParams) -> (CallBilling, ReservationRequest) {
        let want = cost_of(
            &params.tariff,
            params.setup_at,
            params.reservation_seconds,
            region(&params),
        );
        let billing = CallBilling {
            params,
            phase: Phase::Admitting,
            held: Money::ZERO,
            answered_at: None,
            answered: None,
            cut_at: None,
            renew_at: None,
            renewing: false,
        };
        let request = billing.request(want, Some(billing.params.floor));
        (billing, request)
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Everything held for the call so far.
    pub fn held(&self) -> Money {
        self.held
    }

    pub fn call_id(&self) -> &str {
        &self.params.call_id
    }

    pub fn enterprise(&self) -> &str {
        &self.params.enterprise
    }

    /// When the money held runs out, while the call is billed.
    pub fn cut_at(&self) -> Option<Instant> {
        self.cut_at
    }

    /// The store's reply to the last request.
    pub fn on_outcome(&mut self, outcome: ReservationOutcome, now: Instant) -> Verdict {
        match (self.phase, outcome) {
            (Phase::Admitting, ReservationOutcome::Granted { held, .. }) => {
                self.held = held;
                self.phase = Phase::Admitted;
                Verdict::Admit
            }
            (Phase::Admitting, ReservationOutcome::Refused(why)) => {
                self.phase = Phase::Refused(why);
                Verdict::Refuse(why)
            }
            (Phase::Billing, ReservationOutcome::Granted { granted, held }) if self.renewing => {
                self.renewing = false;
                self.held = held;
                self.plan_cut_off(now, !granted.is_zero());
                Verdict::Renewed { granted }
            }
            (Phase::Billing, ReservationOutcome::Refused(Refusal::Unavailable))
                if self.renewing =>
            {
                // The store could not be asked (its database is unreachable): the call
                // keeps what it holds and asks again shortly, until its money runs out.
                self.renewing = false;
                let again = now + RENEW_RETRY;
                self.renew_at = self.cut_at.filter(|cut| again < *cut).map(|_| again);
                Verdict::Ignored
            }
            (Phase::Billing, ReservationOutcome::Refused(_)) if self.renewing => {
                // A renewal is never refused by a store that follows the contract; treat
                // it as "nothing more" rather than cutting the call early.
                self.renewing = false;
                self.plan_cut_off(now, false);
                Verdict::Renewed {
                    granted: Money::ZERO,
                }
            }
            _ => Verdict::Ignored,
        }
    }

    /// The caller's leg was answered at `answered_at` (wall clock, for the bands) =
    /// `now` (monotonic, for the timers): billing starts. Returns whether it did (only
    /// the first answer of an admitted call does); the store should then record the
    /// answer time with the call's reservation.
    pub fn on_answer(&mut self, answered_at: Timestamp, now: Instant) -> bool {
        if self.phase != Phase::Admitted {
            return false;
        }
        self.phase = Phase::Billing;
        self.answered_at = Some(answered_at);
        self.answered = Some(now);
        self.plan_cut_off(now, true);
        true
    }

    /// The next instant [`on_timeout`](CallBilling::on_timeout) wants to run at.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase != Phase::Billing {
            return None;
        }
        match (self.renew_at, self.cut_at) {
            (Some(r), Some(c)) => Some(r.min(c)),
            (r, c) => r.or(c),
        }
    }

    /// Runs what is due at `now`.
    pub fn on_timeout(&mut self, now: Instant) -> Option<Due> {
        if self.phase != Phase::Billing {
            return None;
        }
        if self.cut_at.is_some_and(|c| c <= now) {
            self.cut_at = None;
            self.renew_at = None;
            return Some(Due::CutOff);
        }
        if self.renew_at.is_some_and(|r| r <= now) {
            self.renew_at = None;
            let (answered_at, answered) = (self.answered_at?, self.answered?);
            let talked = whole_seconds(now.saturating_duration_since(answered));
            let horizon = talked.saturating_add(self.params.reservation_seconds);
            let want = cost_of(
                &self.params.tariff,
                answered_at,
                horizon,
                region(&self.params),
            )
            .saturating_sub(self.held);
            if want <= Money::ZERO {
                // What is held already pays for the horizon (a capped tariff): nothing to
                // ask; look again when the horizon is reached.
                self.plan_cut_off(now, true);
                return None;
            }
            self.renewing = true;
            return Some(Due::Renew(Box::new(self.request(want, None))));
        }
        None
    }

    /// The call ended at `ended_at`: what it cost. Unanswered calls cost nothing.
    pub fn settle(&mut self, ended_at: Timestamp) -> Settlement {
        self.phase = Phase::Settled;
        self.cut_at = None;
        self.renew_at = None;
        let tariff = self.params.tariff.name().to_owned();
        let Some(answered_at) = self.answered_at else {
            return Settlement {
                billed_seconds: 0,
                cost: Money::ZERO,
                tariff,
            };
        };
        let rating = rate(
            &self.params.tariff,
            &Call {
                answered_at,
                seconds: billable_seconds(answered_at, ended_at),
                region: region(&self.params),
            },
        );
        Settlement {
            billed_seconds: rating.billed_seconds,
            cost: rating.cost,
            tariff,
        }
    }

    /// Sets `cut_at` from what is held, and `renew_at` a lead before it if `renew`.
    fn plan_cut_off(&mut self, now: Instant, renew: bool) {
        let (Some(answered_at), Some(answered)) = (self.answered_at, self.answered) else {
            return;
        };
        let covered =
            self.params
                .tariff
                .max_duration_for(self.held, answered_at, region(&self.params));
        let cut_at = answered + Duration::from_secs(u64::from(covered));
        self.cut_at = Some(cut_at);
        self.renew_at = renew.then(|| {
            let lead = (Duration::from_secs(u64::from(self.params.reservation_seconds)) / 5)
                .clamp(Duration::from_secs(1), MAX_RENEW_LEAD);
            cut_at.checked_sub(lead).map_or(now, |at| at.max(now))
        });
    }

    fn request(&self, want: Money, floor: Option<Money>) -> ReservationRequest {
        ReservationRequest {
            call_id: self.params.call_id.clone(),
            enterprise: self.params.enterprise.clone(),
            want,
            floor,
            recovery: self.recovery(),
        }
    }

    fn recovery(&self) -> RecoveryInfo {
        let p = &self.params;
        RecoveryInfo {
            number: p.number.clone(),
            caller: p.caller.clone(),
            caller_province: p.caller_province.clone(),
            caller_city: p.caller_city.clone(),
            tariff: p.tariff.name().to_owned(),
            setup_at: p.setup_at,
            answered_at: self.answered_at,
        }
    }
}

/// What `seconds` of talk from `from` cost.
fn cost_of(
    tariff: &Tariff,
    from: Timestamp,
    seconds: u32,
    region: Option<CallerRegion<'_>>,
) -> Money {
    rate(
        tariff,
        &Call {
            answered_at: from,
            seconds,
            region,
        },
    )
    .cost
}

fn region(params: &CallParams) -> Option<CallerRegion<'_>> {
    Some(CallerRegion {
        province: params.caller_province.as_deref()?,
        city: params.caller_city.as_deref().unwrap_or(""),
    })
}

fn whole_seconds(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sihai_rating::TariffSpec;

    fn money(s: &str) -> Money {
        s.parse().expect("money")
    }

    /// ¥0.60 per minute billed per second: ¥0.01 a second.
    fn per_second() -> Arc<Tariff> {
        let mut spec = TariffSpec::flat("per-second", money("0.60"));
        spec.increment = 1;
        Arc::new(Tariff::new(spec).expect("valid tariff"))
    }

    fn params(call: &str, tariff: Arc<Tariff>) -> CallParams {
        CallParams {
            call_id: call.into(),
            enterprise: "acme".into(),
            tariff,
            floor: money("0.05"),
            reservation_seconds: 60,
            number: "4001234567".into(),
            caller: "13800000000".into(),
            caller_province: Some("广东".into()),
            caller_city: Some("深圳".into()),
            setup_at: "2026-12-07T02:00:00Z".parse().expect("timestamp"),
        }
    }

    /// A balance shared by calls, granting as the store's contract says.
    struct Book {
        balance: Money,
        reserved: Money,
    }

    impl Book {
        fn reserve(&mut self, request: &ReservationRequest, held: Money) -> ReservationOutcome {
            let available = self.balance.saturating_sub(self.reserved);
            if let Some(floor) = request.floor
                && available < floor
            {
                return ReservationOutcome::Refused(Refusal::InsufficientBalance);
            }
            let granted = request.want.min(available.max(Money::ZERO));
            self.reserved = self.reserved.saturating_add(granted);
            ReservationOutcome::Granted {
                granted,
                held: held.saturating_add(granted),
            }
        }

        fn settle(&mut self, held: Money, cost: Money) {
            self.reserved = self.reserved.saturating_sub(held);
            self.balance = self.balance.saturating_sub(cost);
        }
    }

    /// Runs one answered call to its end (hang-up at `hangup_after`, or the cut-off),
    /// returning its seconds and settlement.
    fn run_call(
        book: &mut Book,
        call: &str,
        hangup_after: Duration,
    ) -> (Option<Duration>, Settlement) {
        let start = Instant::now();
        let p = params(call, per_second());
        let answered_at = p.setup_at;
        let (mut billing, request) = CallBilling::admit(p);
        let outcome = book.reserve(&request, billing.held());
        assert_eq!(billing.on_outcome(outcome, start), Verdict::Admit);
        billing.on_answer(answered_at, start);
        let mut cut = None;
        while let Some(at) = billing.poll_timeout() {
            if at >= start + hangup_after {
                break;
            }
            match billing.on_timeout(at) {
                Some(Due::Renew(request)) => {
                    let outcome = book.reserve(&request, billing.held());
                    billing.on_outcome(outcome, at);
                }
                Some(Due::CutOff) => {
                    cut = Some(at - start);
                    break;
                }
                None => {}
            }
        }
        let ended = cut.unwrap_or(hangup_after);
        let ended_at = answered_at + jiff::SignedDuration::try_from(ended).expect("duration");
        let settlement = billing.settle(ended_at);
        book.settle(billing.held(), settlement.cost);
        (cut, settlement)
    }

    #[test]
    fn a_call_is_cut_when_the_balance_it_can_hold_runs_out() {
        // ¥0.01 per second and ¥0.42 of balance: 42 seconds.
        let mut book = Book {
            balance: money("0.42"),
            reserved: Money::ZERO,
        };
        let (cut, settlement) = run_call(&mut book, "c1", Duration::from_secs(600));
        assert_eq!(cut, Some(Duration::from_secs(42)));
        assert_eq!(settlement.billed_seconds, 42);
        assert_eq!(settlement.cost, money("0.42"));
        assert_eq!(book.balance, Money::ZERO);
        assert_eq!(book.reserved, Money::ZERO);
    }

    #[test]
    fn a_call_renews_chunk_by_chunk_and_pays_only_its_talk_time() {
        let mut book = Book {
            balance: money("100"),
            reserved: Money::ZERO,
        };
        // 60-second chunks, a 200-second call: renewed three times, charged 200 s.
        let (cut, settlement) = run_call(&mut book, "c1", Duration::from_secs(200));
        assert_eq!(cut, None);
        assert_eq!(settlement.billed_seconds, 200);
        assert_eq!(settlement.cost, money("2.00"));
        assert_eq!(book.balance, money("98.00"));
        assert_eq!(book.reserved, Money::ZERO);
    }

    #[test]
    fn a_renewal_the_store_cannot_answer_is_asked_again_until_the_money_held_runs_out() {
        let start = Instant::now();
        let p = params("c1", per_second());
        let answered_at = p.setup_at;
        let (mut billing, _) = CallBilling::admit(p);
        // 60 s held (¥0.60 at ¥0.01 a second).
        billing.on_outcome(
            ReservationOutcome::Granted {
                granted: money("0.60"),
                held: money("0.60"),
            },
            start,
        );
        billing.on_answer(answered_at, start);
        let cut = start + Duration::from_secs(60);
        assert_eq!(billing.cut_at(), Some(cut));
        let mut asked = Vec::new();
        while let Some(at) = billing.poll_timeout() {
            match billing.on_timeout(at) {
                Some(Due::Renew(_)) => {
                    asked.push(at - start);
                    let verdict =
                        billing.on_outcome(ReservationOutcome::Refused(Refusal::Unavailable), at);
                    assert_eq!(verdict, Verdict::Ignored);
                    // Never cut early for the store's sake: the cut-off stays where the
                    // money held puts it.
                    assert_eq!(billing.cut_at(), Some(cut));
                }
                Some(Due::CutOff) => {
                    assert_eq!(at, cut);
                    break;
                }
                None => {}
            }
        }
        // First at the lead before the cut-off (60 s / 5 = 12 s), then every RENEW_RETRY
        // while it still falls before the cut-off.
        let expected: Vec<Duration> = (0..6)
            .map(|i| Duration::from_secs(48) + RENEW_RETRY * i)
            .collect();
        assert_eq!(asked, expected);

        // Once the store answers again, the renewal is granted and the cut-off moves.
        let (mut billing, _) = CallBilling::admit(params("c2", per_second()));
        billing.on_outcome(
            ReservationOutcome::Granted {
                granted: money("0.60"),
                held: money("0.60"),
            },
            start,
        );
        billing.on_answer(answered_at, start);
        let at = billing.poll_timeout().expect("renewal due");
        assert!(matches!(billing.on_timeout(at), Some(Due::Renew(_))));
        billing.on_outcome(ReservationOutcome::Refused(Refusal::Unavailable), at);
        let again = billing.poll_timeout().expect("asked again");
        assert_eq!(again, at + RENEW_RETRY);
        assert!(matches!(billing.on_timeout(again), Some(Due::Renew(_))));
        billing.on_outcome(
            ReservationOutcome::Granted {
                granted: money("0.60"),
                held: money("1.20"),
            },
            again,
        );
        assert_eq!(billing.cut_at(), Some(start + Duration::from_secs(120)));
    }

    #[test]
    fn below_the_floor_a_call_is_refused_and_costs_nothing() {
        let mut book = Book {
            balance: money("0.04"),
            reserved: Money::ZERO,
        };
        let (mut billing, request) = CallBilling::admit(params("c1", per_second()));
        assert_eq!(request.floor, Some(money("0.05")));
        let outcome = book.reserve(&request, Money::ZERO);
        assert_eq!(
            billing.on_outcome(outcome, Instant::now()),
            Verdict::Refuse(Refusal::InsufficientBalance)
        );
        assert_eq!(
            billing.phase(),
            Phase::Refused(Refusal::InsufficientBalance)
        );
        assert_eq!(billing.poll_timeout(), None);
    }

    #[test]
    fn an_unanswered_call_costs_nothing_and_sets_no_timer() {
        let (mut billing, _) = CallBilling::admit(params("c1", per_second()));
        let verdict = billing.on_outcome(
            ReservationOutcome::Granted {
                granted: money("0.60"),
                held: money("0.60"),
            },
            Instant::now(),
        );
        assert_eq!(verdict, Verdict::Admit);
        assert_eq!(billing.poll_timeout(), None);
        let settlement = billing.settle("2026-12-07T02:05:00Z".parse().expect("timestamp"));
        assert_eq!(settlement.cost, Money::ZERO);
        assert_eq!(settlement.billed_seconds, 0);
        assert_eq!(settlement.tariff, "per-second");
    }

    #[test]
    fn a_late_reply_for_an_ended_call_is_ignored() {
        let (mut billing, _) = CallBilling::admit(params("c1", per_second()));
        billing.settle("2026-12-07T02:00:01Z".parse().expect("timestamp"));
        let verdict = billing.on_outcome(
            ReservationOutcome::Granted {
                granted: money("1"),
                held: money("1"),
            },
            Instant::now(),
        );
        assert_eq!(verdict, Verdict::Ignored);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Calls answered together on one balance (each admitted, renewing in turn)
            /// never spend more than the balance held, and each is charged no more
            /// than it held.
            #[test]
            fn calls_sharing_a_balance_never_spend_more_than_it(
                balance_fen in 10i64..5_000,
                lengths in proptest::collection::vec(1u64..900, 1..6),
            ) {
                let start_balance = Money::from_fen(balance_fen).expect("in range");
                let mut book = Book { balance: start_balance, reserved: Money::ZERO };
                let start = Instant::now();
                let answered_at: Timestamp = "2026-12-07T02:00:00Z".parse().expect("ts");
                let tariff = per_second();
                let mut calls: Vec<(CallBilling, Duration, Option<Settlement>)> = Vec::new();
                for (i, len) in lengths.iter().enumerate() {
                    let mut p = params(&format!("c{i}"), tariff.clone());
                    p.floor = Money::ZERO;
                    let (mut billing, request) = CallBilling::admit(p);
                    let outcome = book.reserve(&request, Money::ZERO);
                    if billing.on_outcome(outcome, start) == Verdict::Admit {
                        billing.on_answer(answered_at, start);
                        calls.push((billing, Duration::from_secs(*len), None));
                    }
                }
                // Step every call's timers in time order until all have ended.
                loop {
                    let next = calls.iter().enumerate()
                        .filter(|(_, c)| c.2.is_none())
                        .map(|(i, c)| (c.0.poll_timeout().unwrap_or(start + c.1).min(start + c.1), i))
                        .min();
                    let Some((at, i)) = next else { break };
                    let (billing, len, done) = &mut calls[i];
                    let ended = if at >= start + *len {
                        Some(*len)
                    } else {
                        match billing.on_timeout(at) {
                            Some(Due::Renew(request)) => {
                                let outcome = book.reserve(&request, billing.held());
                                billing.on_outcome(outcome, at);
                                None
                            }
                            Some(Due::CutOff) => Some(at - start),
                            None => None,
                        }
                    };
                    if let Some(ended) = ended {
                        let ended_at = answered_at + jiff::SignedDuration::try_from(ended).expect("d");
                        let settlement = billing.settle(ended_at);
                        prop_assert!(settlement.cost <= billing.held(), "charged more than held");
                        book.settle(billing.held(), settlement.cost);
                        *done = Some(settlement);
                    }
                }
                prop_assert!(book.balance >= Money::ZERO, "spent {} of {}", start_balance.saturating_sub(book.balance), start_balance);
                prop_assert_eq!(book.reserved, Money::ZERO);
            }
        }
    }
}

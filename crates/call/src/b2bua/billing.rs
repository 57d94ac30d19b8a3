//! Prepaid billing's hooks in the B2BUA. The rules live in `sihai_billing`'s
//! [`CallBilling`]; this file only connects its events to a call's life:
//!
//! - a routed call to a billed number waits, with nothing ringing, until the store
//!   answers its admission request ([`BillingOp::Reserve`], answered through
//!   [`B2bua::on_reservation`]); refused, the caller hears the suspended announcement
//!   (or gets `480`), or `404` once the account's numbers are reclaimed;
//! - the caller's answer (by the voice menu or by a phone) starts billing, and is told
//!   to the store ([`BillingOp::Answered`]) so that a restart can charge the call;
//! - the call's timer asks for renewals and, when the money held runs out, ends the call
//!   with a BYE to both sides carrying a `Reason`, outcome `out_of_credit`;
//! - ending the call rates it; its cost goes into the CDR, which the store settles.

use std::sync::Arc;
use std::time::Instant;

use jiff::Timestamp;
use sihai_billing::{CallBilling, CallParams, Due, Verdict};
use sihai_config::AnnouncementCase;
use sihai_records::{
    HangupSide, Outcome, Refusal as Unfunded, ReservationOutcome, ReservationRequest,
};
use sihai_routing::{Route, RoutingTable};
use sihai_sip::builder::{MessageBuilder, reason_phrase};
use sihai_sip::{HeaderName, Message, Peer};
use sihai_transaction::{ServerKey, TransactionLayer};
use tracing::info;

use crate::media::Anchor;

use super::B2bua;
use super::call::CallId;
use super::invite::Refusal;
use super::record::refused_cdr;
use super::wire::new_token;

/// `[billing] reservation_minutes` when nobody set it: 5 minutes.
pub const DEFAULT_RESERVATION_SECONDS: u32 = 300;

/// The `Reason` (RFC 3326) of the BYEs that end a call whose money ran out: Q.850 cause
/// 16 (normal call clearing: the call ends on purpose, not on a fault), and a text
/// that says why.
pub const OUT_OF_CREDIT_REASON: &str = "Q.850;cause=16;text=\"Out of credit\"";

/// What a billed call asks of the store, in the order the calls asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillingOp {
    /// Reserve (more of) the call's balance; the store's answer goes to
    /// [`B2bua::on_reservation`] with the request's `call_id`.
    Reserve(ReservationRequest),
    /// The call was answered at `at`: kept with its reservation, so that a restart can
    /// charge it.
    Answered { call_id: String, at: Timestamp },
}

/// How a call still waiting for admission ends before the store answered.
pub(super) struct WaitingEnd {
    /// The final response to the caller's INVITE.
    pub(super) status: u16,
    /// Seconds for a `Retry-After` with it.
    pub(super) retry_after: Option<u32>,
    pub(super) outcome: Outcome,
    /// The CDR's hangup side and cause.
    pub(super) hangup: (HangupSide, &'static str),
}

/// A routed call to a billed number, waiting for the store to admit it.
pub(super) struct PendingAdmission {
    /// The call's id, taken when it was parked: its media is anchored under it.
    id: CallId,
    key: ServerKey,
    invite: Message,
    invite_id: (String, String, u32),
    source: Peer,
    route: Route,
    anchor: Option<Box<Anchor>>,
    table: Arc<RoutingTable>,
    setup_at: Timestamp,
    billing: CallBilling,
}

impl B2bua {
    /// Talk time one reservation chunk covers, for calls admitted from now on.
    pub fn set_reservation_seconds(&mut self, seconds: u32) {
        self.reservation_seconds = seconds.max(1);
    }

    /// The next request for the store.
    pub fn poll_billing(&mut self) -> Option<BillingOp> {
        self.billing_ops.pop_front()
    }

    /// Calls waiting for the store to admit them.
    pub fn calls_awaiting_admission(&self) -> usize {
        self.admitting.len()
    }

    /// Parks a routed call to a billed number (its media anchored, its place in the
    /// number's limits taken) until the store admits it, and asks the store. Gives the
    /// call back if its number is not billed.
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    pub(super) fn park_for_admission(
        &mut self,
        table: &Arc<RoutingTable>,
        key: ServerKey,
        invite: Message,
        invite_id: (String, String, u32),
        source: Peer,
        route: Route,
        anchor: Option<Box<Anchor>>,
        wall: Timestamp,
    ) -> Option<(
        ServerKey,
        Message,
        (String, String, u32),
        Route,
        Option<Box<Anchor>>,
    )> {
        let number = &route.number;
        let (Some(tariff), Some(floor)) = (number.tariff.clone(), number.enterprise.min_balance())
        else {
            return Some((key, invite, invite_id, route, anchor));
        };
        self.next_admission += 1;
        let call_id = format!("{}-b{}", new_token(), self.next_admission);
        let (billing, request) = CallBilling::admit(CallParams {
            call_id: call_id.clone(),
            enterprise: number.enterprise.id.clone(),
            tariff,
            floor,
            reservation_seconds: self.reservation_seconds,
            number: number.number.clone(),
            caller: route.caller.as_str().to_owned(),
            caller_province: route.region.as_ref().map(|r| r.province.clone()),
            caller_city: route.region.as_ref().map(|r| r.city.clone()),
            setup_at: wall,
        });
        // The anchor was made under the next call id: take it, so that no other call
        // gets it while this one waits.
        let id = self.next_id;
        self.next_id += 1;
        self.admitting_keys.insert(key.clone(), call_id.clone());
        self.admitting.insert(
            call_id,
            PendingAdmission {
                id,
                key,
                invite,
                invite_id,
                source,
                route,
                anchor,
                table: table.clone(),
                setup_at: wall,
                billing,
            },
        );
        self.billing_ops.push_back(BillingOp::Reserve(request));
        None
    }

    /// The store's answer to a [`BillingOp::Reserve`] for `call_id`.
    pub fn on_reservation(
        &mut self,
        tx: &mut TransactionLayer,
        call_id: &str,
        outcome: ReservationOutcome,
        now: Instant,
        wall: Timestamp,
    ) {
        if let Some(mut pending) = self.admitting.remove(call_id) {
            self.admitting_keys.remove(&pending.key);
            match pending.billing.on_outcome(outcome, now) {
                Verdict::Admit => {
                    let billing = Box::new(pending.billing);
                    self.start_call(
                        tx,
                        Some(pending.id),
                        &pending.table,
                        pending.key,
                        pending.invite,
                        pending.invite_id,
                        pending.source,
                        pending.route,
                        pending.anchor,
                        Some((call_id.to_owned(), billing)),
                        pending.setup_at,
                        now,
                        wall,
                    );
                }
                Verdict::Refuse(why) => self.refuse_unfunded(tx, pending, why, now, wall),
                Verdict::Renewed { .. } | Verdict::Ignored => {}
            }
            return;
        }
        let Some(&id) = self.billed.get(call_id) else {
            // The call ended meanwhile; its CDR released whatever it held.
            return;
        };
        if let Some(billing) = self
            .calls
            .get_mut(&id)
            .and_then(|call| call.billing.as_mut())
        {
            if let Verdict::Renewed { granted } = billing.on_outcome(outcome, now)
                && granted.is_zero()
            {
                info!(
                    call = id,
                    "balance exhausted: the call ends when what it holds runs out"
                );
            }
            // A renewal moves the cut-off; one the store could not answer is asked again.
            self.schedule(id);
        }
    }

    /// The caller's leg was answered (by the voice menu or a phone): billing starts.
    pub(super) fn billing_answered(&mut self, id: CallId, now: Instant, wall: Timestamp) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(billing) = call.billing.as_mut() else {
            return;
        };
        if billing.on_answer(wall, now) {
            self.billed.insert(call.record_id.clone(), id);
            self.billing_ops.push_back(BillingOp::Answered {
                call_id: call.record_id.clone(),
                at: wall,
            });
            self.schedule(id);
        }
    }

    /// Runs the call's billing timer if it is due. Returns true when it ended the call
    /// (its money ran out).
    pub(super) fn billing_timer(
        &mut self,
        tx: &mut TransactionLayer,
        id: CallId,
        now: Instant,
        wall: Timestamp,
    ) -> bool {
        let Some(call) = self.calls.get_mut(&id) else {
            return false;
        };
        let Some(billing) = call.billing.as_mut() else {
            return false;
        };
        if billing.poll_timeout().is_none_or(|at| at > now) {
            return false;
        }
        match billing.on_timeout(now) {
            Some(Due::Renew(request)) => {
                self.billing_ops.push_back(BillingOp::Reserve(*request));
                false
            }
            Some(Due::CutOff) => {
                info!(call = id, "out of credit: ending the call");
                call.outcome = Some(Outcome::OutOfCredit);
                call.hangup
                    .get_or_insert((HangupSide::System, "out_of_credit".into()));
                call.bye_reason = Some(OUT_OF_CREDIT_REASON);
                self.hang_up_other(tx, id, super::call::Side::Inbound, now);
                self.bye(tx, id, super::call::Side::Inbound, now);
                self.end_call(tx, id, now, wall);
                true
            }
            None => false,
        }
    }

    /// The caller's CANCEL for a call still waiting for admission: `487`, and its CDR,
    /// under the call's id, so that whatever the store reserved for it is released.
    /// Returns false if the INVITE is not waiting.
    pub(super) fn cancel_awaiting_admission(
        &mut self,
        tx: &mut TransactionLayer,
        key: &ServerKey,
        now: Instant,
        wall: Timestamp,
    ) -> bool {
        let Some(call_id) = self.admitting_keys.remove(key) else {
            return false;
        };
        info!(call = %call_id, "caller cancelled while the call waited for admission");
        let cancelled = WaitingEnd {
            status: 487,
            retry_after: None,
            outcome: Outcome::Cancelled,
            hangup: (HangupSide::Caller, "CANCEL"),
        };
        self.end_awaiting_admission(tx, &call_id, cancelled, now, wall);
        true
    }

    /// Ends a call still waiting for admission with `end.status` to the caller, and
    /// records it under the call's id, so that whatever the store reserved for it is
    /// released with its CDR.
    pub(super) fn end_awaiting_admission(
        &mut self,
        tx: &mut TransactionLayer,
        call_id: &str,
        end: WaitingEnd,
        now: Instant,
        wall: Timestamp,
    ) {
        let Some(pending) = self.admitting.remove(call_id) else {
            return;
        };
        self.admitting_keys.remove(&pending.key);
        self.release_parked(&pending);
        let mut resp = MessageBuilder::response_to(
            &pending.invite,
            end.status,
            reason_phrase(end.status),
            Some(&new_token()),
        )
        .header(HeaderName::Server, &self.config.user_agent);
        if let Some(seconds) = end.retry_after {
            resp = resp.header(HeaderName::RetryAfter, &seconds.to_string());
        }
        let _ = tx.respond(now, &pending.key, resp.build());
        let (side, cause) = end.hangup;
        let mut cdr = refused_cdr(
            pending.route.number.number.clone(),
            pending.route.number.enterprise.id.clone(),
            &pending.route.caller,
            pending.route.region.as_ref(),
            end.outcome,
            cause.into(),
            wall,
        );
        cdr.call_id = call_id.to_owned();
        cdr.setup_at = pending.setup_at;
        cdr.hangup_side = Some(side);
        self.records.push_back((cdr, None));
    }

    /// Refuses a call the store did not admit: the suspended announcement (or `480`)
    /// while the account is short of money or suspended, a bare `404` once its numbers
    /// are reclaimed, a bare `503` when the store could not be asked (the carrier
    /// retries, or tries another node).
    fn refuse_unfunded(
        &mut self,
        tx: &mut TransactionLayer,
        pending: PendingAdmission,
        why: Unfunded,
        now: Instant,
        wall: Timestamp,
    ) {
        let (status, outcome, cause) = match why {
            Unfunded::Reclaimed => (404, Outcome::Rejected, "reclaimed"),
            Unfunded::Suspended => (480, Outcome::OutOfCredit, "suspended"),
            Unfunded::InsufficientBalance | Unfunded::NoAccount => {
                (480, Outcome::OutOfCredit, "out_of_credit")
            }
            Unfunded::Unavailable => (503, Outcome::Failed, "store_unavailable"),
        };
        info!(number = %pending.route.number.number, status, cause, "call refused by its account");
        if let Some(limits) = self.limits.get_mut(&pending.route.number.number) {
            limits.release();
        }
        let PendingAdmission {
            key,
            invite,
            source,
            route,
            anchor,
            ..
        } = pending;
        // The announcement anchors the caller anew, under a call id of its own.
        if let (Some(plane), Some(anchor)) = (self.media.as_mut(), anchor.as_deref()) {
            plane.release(anchor);
        }
        if status == 480 {
            let refusal = Refusal {
                route: route.clone(),
                case: AnnouncementCase::Suspended,
                status,
                reason: reason_phrase(status),
                outcome,
                cause: cause.to_owned(),
                alerts: false,
            };
            if self.refuse_with_announcement(tx, refusal, &key, &invite, source, None, now, wall) {
                return;
            }
        }
        self.refuse(
            tx,
            &key,
            &invite,
            &route,
            status,
            outcome,
            cause.to_owned(),
            now,
            wall,
        );
    }

    /// Gives back what a parked call held: its relay ports and its place in the number's
    /// limits.
    fn release_parked(&mut self, pending: &PendingAdmission) {
        if let Some(limits) = self.limits.get_mut(&pending.route.number.number) {
            limits.release();
        }
        if let (Some(plane), Some(anchor)) = (self.media.as_mut(), pending.anchor.as_deref()) {
            plane.release(anchor);
        }
    }
}

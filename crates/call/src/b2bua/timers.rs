//! The call timer heap: one wake-up per call, the earliest of whatever it waits for
//! (the hunt, our 2xx's retransmissions, the maximum duration, the relay, the menu, an
//! announcement's deadline), and what each does when it comes.

use std::cmp::Reverse;
use std::time::Instant;

use jiff::Timestamp;
use sihai_records::HangupSide;
use sihai_transaction::{TransactionLayer, Transmit};
use tracing::{info, warn};

use super::B2bua;
use super::call::{CallId, Side};
use super::groups::with_group_state;

impl B2bua {
    /// Entries in the call timer heap, for tests and metrics.
    pub fn pending_call_timers(&self) -> usize {
        self.timers.len()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    pub fn handle_timeout(&mut self, tx: &mut TransactionLayer, now: Instant, wall: Timestamp) {
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if let Some(call) = self.calls.get_mut(&id)
                && call.scheduled.is_some_and(|s| s <= now)
            {
                call.scheduled = None;
            }
            self.on_call_timer(tx, id, now, wall);
            // Whatever the call waits for next (an earlier entry may have been the only
            // one in the heap).
            self.schedule(id);
        }
    }

    fn on_call_timer(
        &mut self,
        tx: &mut TransactionLayer,
        id: CallId,
        now: Instant,
        wall: Timestamp,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if let Some(anchor) = call.anchor.as_mut()
            && anchor.relay.poll_timeout().is_some_and(|at| at <= now)
        {
            anchor.relay.handle_timeout(now);
            self.after_media(tx, id, now, wall);
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call
            .announcement
            .as_ref()
            .is_some_and(|a| now >= a.deadline)
        {
            warn!(
                call = id,
                "announcement did not report its end; releasing the call"
            );
            self.release_announced(tx, id, now, wall);
            return;
        }
        if let Some(p) = &mut call.pending_2xx {
            if now >= p.give_up {
                // No ACK for our 2xx: the caller's side is gone (§13.3.1.4).
                warn!(call = id, "no ACK for 2xx; ending the call");
                call.pending_2xx = None;
                call.hangup
                    .get_or_insert((HangupSide::System, "no_ack".into()));
                self.hang_up_other(tx, id, Side::Inbound, now);
                self.bye(tx, id, Side::Inbound, now);
                self.end_call(tx, id, now, wall);
                return;
            }
            if now >= p.next {
                self.outbox.push_back(Transmit {
                    destination: p.destination,
                    payload: p.payload.clone(),
                });
                p.interval = (p.interval * 2).min(self.config.timers.t2);
                p.next = now + p.interval;
            }
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if let Some(menu) = call.menu.as_mut()
            && menu.walk.poll_timeout().is_some_and(|at| at <= now)
        {
            menu.walk.handle_timeout(now);
            self.run_menu(tx, id, now, wall);
        }
        if self.billing_timer(tx, id, now, wall) {
            return;
        }
        if self.crm_timer(tx, id, now, wall) {
            return;
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.max_call_at.is_some_and(|at| now >= at) {
            info!(call = id, "maximum call duration reached");
            call.hangup
                .get_or_insert((HangupSide::System, "max_duration".into()));
            // BYE to the phone (the side other than the caller) and to the caller.
            self.hang_up_other(tx, id, Side::Inbound, now);
            self.bye(tx, id, Side::Inbound, now);
            self.end_call(tx, id, now, wall);
            return;
        }
        with_group_state(&mut self.groups, &call.route.group, |state| {
            call.hunt.handle_timeout(state, now)
        });
        // Whatever the hunt cancels now, it cancels because time ran out: to the phone,
        // a call it did not answer.
        self.drive_cancelling_as(tx, id, now, wall, "no_answer");
    }

    /// Re-arms the call's next wake-up.
    pub(super) fn schedule(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let next = [
            call.hunt.poll_timeout(),
            call.pending_2xx.as_ref().map(|p| p.next.min(p.give_up)),
            call.max_call_at,
            call.anchor.as_ref().and_then(|a| a.relay.poll_timeout()),
            call.menu.as_ref().and_then(|m| m.walk.poll_timeout()),
            call.announcement.as_ref().map(|a| a.deadline),
            call.billing.as_ref().and_then(|b| b.poll_timeout()),
            call.crm_wait_until,
        ]
        .into_iter()
        .flatten()
        .min();
        if let Some(at) = next
            && call.scheduled.is_none_or(|already| at < already)
        {
            call.scheduled = Some(at);
            self.timers.push(Reverse((at, id)));
        }
    }
}

//! The node shutting down: what the core needs to know while calls drain (how many
//! are left, whether an INVITE belongs to a call already, which of our requests still
//! wait for an answer), and ending every call left when the drain is over, each as the
//! node's own hang-up: BYE to both legs of an answered call, a final `503` to a caller
//! still in setup and CANCEL to the phones ringing for it, and a CDR for every call,
//! which settles a billed one as any other end does.

use std::time::Instant;

use jiff::Timestamp;
use sihai_records::{HangupSide, Outcome};
use sihai_sip::builder::{MessageBuilder, reason_phrase};
use sihai_sip::{HeaderName, Message};
use sihai_transaction::TransactionLayer;
use tracing::info;

use super::B2bua;
use super::billing::WaitingEnd;
use super::call::{CallId, Side};
use super::groups::with_group_state;
use super::invite::invite_identity;

/// The `Reason` (RFC 3326) of the BYEs that end calls when the node shuts down: Q.850
/// cause 41, temporary failure (the call did nothing wrong; the node is going away, and
/// another node may take the next call), with a text that says so.
pub const SHUTDOWN_REASON: &str = "Q.850;cause=41;text=\"Node shutting down\"";

/// The CDR's hangup cause (side `system`) of a call the node ended on shutdown.
pub const SHUTDOWN_CAUSE: &str = "shutdown";

impl B2bua {
    /// Calls in progress, those still waiting for the store to admit them included.
    pub fn calls_left(&self) -> usize {
        self.calls.len() + self.admitting.len()
    }

    /// Requests we sent (INVITEs to phones, BYEs, CANCELs, relayed requests) that have
    /// not had their final response, nor timed out, yet.
    pub fn requests_in_flight(&self) -> usize {
        self.by_client_key.len()
    }

    /// Whether `invite` (no To tag) is a retransmission of the INVITE of a call in
    /// progress, which [`B2bua::on_invite`] absorbs, rather than a new call.
    pub fn is_call_in_progress(&self, invite: &Message) -> bool {
        invite_identity(invite).is_some_and(|id| self.inbound_invites.contains_key(&id))
    }

    /// Ends every call left, as the node's own hang-up (see the module's summary):
    /// `retry_after` (seconds) goes with each `503`. Returns how many calls it ended.
    pub fn end_all_calls(
        &mut self,
        tx: &mut TransactionLayer,
        retry_after: u32,
        now: Instant,
        wall: Timestamp,
    ) -> usize {
        let mut waiting: Vec<String> = self.admitting.keys().cloned().collect();
        waiting.sort_unstable();
        for call_id in &waiting {
            info!(call = %call_id, "call waiting for admission refused: shutting down");
            let refused = WaitingEnd {
                status: 503,
                retry_after: Some(retry_after),
                outcome: Outcome::Failed,
                hangup: (HangupSide::System, SHUTDOWN_CAUSE),
            };
            self.end_awaiting_admission(tx, call_id, refused, now, wall);
        }
        let retry_after = retry_after.to_string();
        let mut ids: Vec<CallId> = self.calls.keys().copied().collect();
        ids.sort_unstable();
        for &id in &ids {
            self.end_on_shutdown(tx, id, &retry_after, now, wall);
        }
        waiting.len() + ids.len()
    }

    fn end_on_shutdown(
        &mut self,
        tx: &mut TransactionLayer,
        id: CallId,
        retry_after: &str,
        now: Instant,
        wall: Timestamp,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.hangup = Some((HangupSide::System, SHUTDOWN_CAUSE.into()));
        call.bye_reason = Some(SHUTDOWN_REASON);
        if call.announcement.is_some() {
            // Cut short: the caller gets the status the announcement was explaining (or
            // a BYE, if a voice menu had answered), and the CDR keeps its outcome.
            self.release_announced(tx, id, now, wall);
            return;
        }
        if call.answered_leg.is_some() {
            self.hang_up_other(tx, id, Side::Inbound, now);
            self.bye(tx, id, Side::Inbound, now);
            self.end_call(tx, id, now, wall);
            return;
        }
        // Not answered by a phone: nobody is to blame but the node going away.
        call.outcome.get_or_insert(Outcome::Failed);
        with_group_state(&mut self.groups, &call.route.group, |state| {
            call.hunt.on_cancelled_by_caller(state, now)
        });
        let mut ringing = Vec::new();
        while let Some(action) = call.hunt.poll_action() {
            if let sihai_hunt::HuntAction::Cancel { phone } = action {
                ringing.push(phone);
            }
        }
        if call.inbound_dialog.is_some() {
            // A voice menu answered the caller: the dialog ends with a BYE.
            self.bye(tx, id, Side::Inbound, now);
        } else if !call.inbound_final_sent
            && let (Some(invite), Some(key)) = (&call.inbound_invite, &call.inbound_key)
        {
            let refusal = MessageBuilder::response_to(
                invite,
                503,
                reason_phrase(503),
                Some(&call.inbound_tag),
            )
            .header(HeaderName::RetryAfter, retry_after)
            .header(HeaderName::Server, &self.config.user_agent)
            .build();
            let _ = tx.respond(now, key, refusal);
            call.inbound_final_sent = true;
        }
        for phone in ringing {
            self.cancel_phone(tx, id, phone, now, "cancelled");
        }
        self.end_call(tx, id, now, wall);
    }
}

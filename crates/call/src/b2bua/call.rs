//! A call's own state: [`Call`] with its inbound leg's INVITE and dialog, its
//! outbound [`Leg`]s (one per phone tried, with their [`LegState`]), the [`Side`] a
//! message belongs to, and the 2xx retransmitted until the caller's ACK
//! ([`Pending2xx`]). What the other files of `b2bua` read and change.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use sihai_hunt::Hunt;
use sihai_records::{HangupSide, Outcome};
use sihai_routing::Route;
use sihai_sip::{Message, Peer};
use sihai_transaction::{ClientKey, ServerKey};

use crate::dialog::Dialog;
use crate::media::Anchor;

use super::announce::Announcement;
use super::menu::MenuCall;
use super::wire::new_token;

pub(super) type CallId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Side {
    Inbound,
    Leg(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LegState {
    Calling,
    Early,
    Answered,
    /// We sent CANCEL (or are about to BYE a late 2xx): whatever comes is not news.
    Cancelling,
    Ended,
}

#[derive(Debug)]
pub(super) struct Leg {
    pub(super) phone: usize,
    pub(super) label: String,
    /// The INVITE we sent, until its transaction is settled (a final response, or the
    /// 2xx that turned it into a dialog).
    pub(super) invite: Option<Message>,
    pub(super) key: Option<ClientKey>,
    pub(super) destination: Peer,
    pub(super) state: LegState,
    pub(super) dialog: Option<Dialog>,
    pub(super) result: Option<String>,
    /// We decided to cancel this leg before it sent any provisional response: the
    /// CANCEL waits for one (RFC 3261 §9.1).
    pub(super) cancel_deferred: bool,
}

/// A 2xx we must retransmit until the ACK comes (RFC 3261 §13.3.1.4): the transaction
/// layer sends it once and ends, the TU owns the rest.
#[derive(Debug)]
pub(super) struct Pending2xx {
    pub(super) payload: bytes::Bytes,
    pub(super) destination: Peer,
    pub(super) next: Instant,
    pub(super) interval: Duration,
    pub(super) give_up: Instant,
}

#[derive(Debug)]
pub(super) struct Call {
    pub(super) record_id: String,
    pub(super) route: Route,
    /// The caller's INVITE, its transaction and what identifies its retransmissions:
    /// kept while the INVITE is unsettled (no final response yet, or a 2xx not yet
    /// ACKed), then released so that a held call keeps only its dialogs.
    pub(super) inbound_key: Option<ServerKey>,
    pub(super) inbound_invite: Option<Message>,
    pub(super) inbound_identity: (String, String, u32),
    pub(super) inbound_source: Peer,
    pub(super) inbound_tag: String,
    /// Set when we answered the caller.
    pub(super) inbound_dialog: Option<Dialog>,
    pub(super) inbound_final_sent: bool,
    pub(super) legs: Vec<Leg>,
    pub(super) hunt: Hunt,
    pub(super) answered_leg: Option<usize>,
    pub(super) relayed_ringing: bool,
    pub(super) setup_at: Timestamp,
    pub(super) ring_at: Option<Timestamp>,
    pub(super) answer_at: Option<Timestamp>,
    pub(super) answered_instant: Option<Instant>,
    pub(super) pending_2xx: Option<Pending2xx>,
    pub(super) max_call_at: Option<Instant>,
    pub(super) hangup: Option<(HangupSide, String)>,
    pub(super) outcome: Option<Outcome>,
    /// Requests relayed to the other leg and not yet answered: if the call ends first,
    /// their originals still get a final response.
    pub(super) relays: Vec<ClientKey>,
    /// The call's media on our relay, when the relay is on and the caller offered SDP.
    pub(super) anchor: Option<Box<Anchor>>,
    /// The recording's name (relative to the recordings directory), once recording.
    pub(super) recording: Option<Arc<str>>,
    /// The earliest wake-up already in the timer heap for this call: rescheduling
    /// only pushes an earlier one, so a relay rescheduled on every RTP packet does not
    /// fill the heap with entries.
    pub(super) scheduled: Option<Instant>,
    /// The voice menu the caller was answered with, when the plan starts with one.
    pub(super) menu: Option<Box<MenuCall>>,
    /// The announcement explaining why the call cannot go through, once it started.
    pub(super) announcement: Option<Box<Announcement>>,
    /// The call counts against its number's limits (it was admitted), and gives its
    /// place back when it ends.
    pub(super) admitted: bool,
    /// Ending unanswered raises a missed-call alert (not for callers refused on purpose).
    pub(super) alerts_missed: bool,
    /// The call's prepaid billing, when its number is billed.
    pub(super) billing: Option<Box<sihai_billing::CallBilling>>,
    /// The `Reason` header (RFC 3326) of the BYEs we send to end the call ourselves.
    pub(super) bye_reason: Option<&'static str>,
    /// The caller as the enterprise's CRM knows them: the phones' INVITEs show it.
    pub(super) caller_identity: Option<Arc<super::crm::CallerIdentity>>,
    /// While set, the hunt waits (not started) for the CRM's answer until then.
    pub(super) crm_wait_until: Option<Instant>,
}

impl Call {
    /// A call for `invite`, arrived from `source`, with nothing sent back yet.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        id: CallId,
        route: Route,
        key: ServerKey,
        invite: Message,
        invite_id: (String, String, u32),
        source: Peer,
        hunt: Hunt,
        anchor: Option<Box<Anchor>>,
        wall: Timestamp,
    ) -> Call {
        Call {
            record_id: format!("{}-{id}", new_token()),
            route,
            inbound_key: Some(key),
            inbound_invite: Some(invite),
            inbound_identity: invite_id,
            inbound_source: source,
            inbound_tag: new_token(),
            inbound_dialog: None,
            inbound_final_sent: false,
            legs: Vec::new(),
            hunt,
            answered_leg: None,
            relayed_ringing: false,
            setup_at: wall,
            ring_at: None,
            answer_at: None,
            answered_instant: None,
            pending_2xx: None,
            max_call_at: None,
            hangup: None,
            outcome: None,
            relays: Vec::new(),
            anchor,
            recording: None,
            scheduled: None,
            menu: None,
            announcement: None,
            admitted: true,
            alerts_missed: true,
            billing: None,
            bye_reason: None,
            caller_identity: None,
            crm_wait_until: None,
        }
    }
}

//! The outbound legs: driving a call's hunt, ringing and cancelling phones, and what
//! the phones answer (provisional responses and ringing toward the caller, the 2xx that
//! bridges the call, failures), including a late 2xx to a call already over. Also
//! `on_response`, the entry point for every response to a request we sent, which passes
//! relayed requests' responses on to `in_dialog.rs`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use jiff::Timestamp;
use sihai_config::{AnnouncementCase, PhoneTarget};
use sihai_hunt::{HuntAction, HuntResult, PhoneOutcome};
use sihai_records::{HangupSide, Outcome};
use sihai_sip::builder::{MessageBuilder, reason_phrase};
use sihai_sip::{HeaderName, Message, Method, Peer, Transport};
use sihai_transaction::{ClientKey, TransactionLayer};
use tracing::{debug, info, warn};

use crate::dialog::Dialog;

use super::call::{Call, CallId, Leg, LegState, Side};
use super::groups::with_group_state;
use super::invite::inbound_2xx;
use super::relay::start_recording;
use super::wire::{
    contact_value, destination_of, host_port, local_for, new_token, sdp_body, with_body_of,
};
use super::{B2bua, ClientPurpose};

/// The CDR outcome of a hunt that failed with `status`.
fn hunt_outcome(status: u16) -> Outcome {
    match status {
        486 | 600 => Outcome::Busy,
        480 | 408 => Outcome::NoAnswer,
        487 => Outcome::Cancelled,
        603 => Outcome::Rejected,
        _ => Outcome::Failed,
    }
}

impl B2bua {
    /// Applies whatever the hunt wants now, and finishes the call if it is over.
    pub(super) fn drive(
        &mut self,
        tx: &mut TransactionLayer,
        id: CallId,
        now: Instant,
        wall: Timestamp,
    ) {
        self.drive_cancelling_as(tx, id, now, wall, "cancelled");
    }

    /// [`drive`](B2bua::drive), recording each phone the hunt cancels now with `result`
    /// in the CDR's attempts: `"cancelled"` when another phone answered or the caller
    /// gave up, `"no_answer"` when the phone's ring timeout (or the hunt's) ran out.
    pub(super) fn drive_cancelling_as(
        &mut self,
        tx: &mut TransactionLayer,
        id: CallId,
        now: Instant,
        wall: Timestamp,
        result: &str,
    ) {
        loop {
            let Some(call) = self.calls.get_mut(&id) else {
                return;
            };
            let Some(action) = call.hunt.poll_action() else {
                break;
            };
            match action {
                HuntAction::Ring { phone } => self.ring(tx, id, phone, now),
                HuntAction::Cancel { phone } => self.cancel_phone(tx, id, phone, now, result),
            }
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let failed = match call.hunt.result() {
            Some(HuntResult::Failed { status }) if call.answered_leg.is_none() => Some(status),
            _ => None,
        };
        if let Some(hunt_status) = failed
            && !call.inbound_final_sent
            && call.announcement.is_none()
        {
            let status = if call.outcome == Some(Outcome::Cancelled) {
                487
            } else {
                caller_status(hunt_status)
            };
            call.outcome.get_or_insert(hunt_outcome(hunt_status));
            call.hangup
                .get_or_insert((HangupSide::System, hunt_status.to_string()));
            if let Some(case) = failure_announcement(status)
                && self.announce(tx, id, case, status, reason_phrase(status), now, wall)
            {
                return;
            }
            let Some(call) = self.calls.get_mut(&id) else {
                return;
            };
            if let (Some(invite), Some(key)) = (&call.inbound_invite, &call.inbound_key) {
                let resp = MessageBuilder::response_to(
                    invite,
                    status,
                    reason_phrase(status),
                    Some(&call.inbound_tag),
                )
                .header(HeaderName::Server, &self.config.user_agent)
                .build();
                let _ = tx.respond(now, key, resp);
            }
            call.inbound_final_sent = true;
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if let Some(hunt_status) = failed
            && let Some(menu) = call.menu.as_mut()
            && menu.hunting
        {
            // The menu answered the caller, so nobody picking up ends the call with a BYE
            // (after the announcement for it, when there is one).
            menu.hunting = false;
            call.outcome.get_or_insert(hunt_outcome(hunt_status));
            call.hangup
                .get_or_insert((HangupSide::System, hunt_status.to_string()));
            let status = caller_status(hunt_status);
            if let Some(case) = failure_announcement(status)
                && self.announce(tx, id, case, status, reason_phrase(status), now, wall)
            {
                return;
            }
            self.bye(tx, id, Side::Inbound, now);
            self.end_call(tx, id, now, wall);
            return;
        }
        self.finish_if_done(tx, id, now, wall);
        self.schedule(id);
    }

    fn ring(&mut self, tx: &mut TransactionLayer, id: CallId, phone: usize, now: Instant) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(target) = call.route.group.phones.get(phone) else {
            return;
        };
        let (uri, label) = match &target.target {
            PhoneTarget::Number(n) => (call.route.trunk.phone_uri(n), n.clone()),
            PhoneTarget::Uri(u) => (u.clone(), u.clone()),
        };
        let Some(destination) = destination_of(&uri) else {
            warn!(call = id, %uri, "phone URI has no IP destination");
            with_group_state(&mut self.groups, &call.route.group, |state| {
                call.hunt
                    .on_outcome(state, phone, PhoneOutcome::Failed(503), now)
            });
            return;
        };
        let Some(local) = local_for(&self.config, destination.transport) else {
            warn!(call = id, transport = %destination.transport, "no listener for the phone's transport");
            with_group_state(&mut self.groups, &call.route.group, |state| {
                call.hunt
                    .on_outcome(state, phone, PhoneOutcome::Failed(503), now)
            });
            return;
        };
        // Phones ring only while the caller's INVITE is unsettled, so it is still here,
        // or after the menu answered it, which keeps it.
        let Some(inbound) = call
            .inbound_invite
            .as_ref()
            .or(call.menu.as_ref().map(|m| &m.invite))
        else {
            return;
        };
        let invite = build_leg_invite(
            call,
            inbound,
            &uri,
            local,
            destination.transport,
            &self.config.user_agent,
        );
        match tx.send_request(now, invite.clone(), destination) {
            Ok(key) => {
                debug!(call = id, phone = %label, %destination, "ringing phone");
                self.by_client_key
                    .insert(key.clone(), ClientPurpose::LegInvite(id, call.legs.len()));
                call.legs.push(Leg {
                    phone,
                    label,
                    invite: Some(invite),
                    key: Some(key),
                    destination,
                    state: LegState::Calling,
                    dialog: None,
                    result: None,
                    cancel_deferred: false,
                });
            }
            Err(err) => {
                warn!(call = id, %err, "cannot start the phone's INVITE");
                with_group_state(&mut self.groups, &call.route.group, |state| {
                    call.hunt
                        .on_outcome(state, phone, PhoneOutcome::Failed(503), now)
                });
            }
        }
    }

    pub(super) fn cancel_phone(
        &mut self,
        tx: &mut TransactionLayer,
        id: CallId,
        phone: usize,
        now: Instant,
        result: &str,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        for leg in call
            .legs
            .iter_mut()
            .filter(|l| l.phone == phone && matches!(l.state, LegState::Calling | LegState::Early))
        {
            let heard_back = leg.state == LegState::Early;
            leg.state = LegState::Cancelling;
            leg.result.get_or_insert_with(|| result.into());
            if heard_back {
                send_cancel(tx, &mut self.by_client_key, leg, now);
            } else {
                leg.cancel_deferred = true;
            }
        }
    }

    /// A response from a client transaction.
    pub fn on_response(
        &mut self,
        tx: &mut TransactionLayer,
        key: ClientKey,
        response: Message,
        now: Instant,
        wall: Timestamp,
    ) {
        let Some(purpose) = self.by_client_key.get(&key).cloned() else {
            return;
        };
        let status = response.status().unwrap_or(500);
        if status >= 200 {
            self.by_client_key.remove(&key);
        }
        match purpose {
            ClientPurpose::Ignore => {}
            ClientPurpose::LegInvite(id, leg) => {
                self.on_leg_response(tx, id, leg, response, status, now, wall)
            }
            ClientPurpose::Relay {
                call,
                from,
                original,
                request,
            } => {
                if status >= 200
                    && let Some(c) = self.calls.get_mut(&call)
                {
                    c.relays.retain(|k| *k != key);
                }
                self.relay_response(tx, call, from, &original, &request, &response, now)
            }
            ClientPurpose::Orphan {
                invite,
                destination,
                cancel_deferred,
            } => {
                if (200..300).contains(&status) {
                    self.ack_and_bye_orphan(tx, &invite, &response, destination, now);
                } else if cancel_deferred && (100..200).contains(&status) {
                    if let Some(ClientPurpose::Orphan {
                        cancel_deferred, ..
                    }) = self.by_client_key.get_mut(&key)
                    {
                        *cancel_deferred = false;
                    }
                    let cancel = MessageBuilder::cancel_for(&invite).build();
                    if let Ok(k) = tx.send_request(now, cancel, destination) {
                        self.by_client_key.insert(k, ClientPurpose::Ignore);
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_leg_response(
        &mut self,
        tx: &mut TransactionLayer,
        id: CallId,
        leg_index: usize,
        response: Message,
        status: u16,
        now: Instant,
        wall: Timestamp,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(leg) = call.legs.get_mut(leg_index) else {
            return;
        };
        let state = leg.state;
        match status {
            100..=199 if state == LegState::Cancelling => {
                // Now that the phone has answered something, a deferred CANCEL may go.
                if leg.cancel_deferred {
                    send_cancel(tx, &mut self.by_client_key, leg, now);
                }
            }
            100 => {
                if state == LegState::Calling {
                    leg.state = LegState::Early;
                }
            }
            101..=199 => {
                if state == LegState::Calling {
                    leg.state = LegState::Early;
                }
                call.ring_at.get_or_insert(wall);
                if !call.relayed_ringing
                    && !call.inbound_final_sent
                    && let (Some(invite), Some(key)) = (&call.inbound_invite, &call.inbound_key)
                {
                    // One ringing indication to the caller per call. Anchored, it is a
                    // 183 with the relay's answer and the caller hears our ringback;
                    // otherwise the phone's early media (183 with SDP) passes through.
                    let contact = contact_value(
                        local_for(&self.config, call.inbound_source.transport),
                        call.inbound_source.transport,
                    );
                    let resp = match call.anchor.as_mut() {
                        Some(anchor) => {
                            let phone_sdp = (call.route.number.plan.early_media
                                == sihai_config::EarlyMedia::Phone)
                                .then(|| sdp_body(&response))
                                .flatten();
                            let passed =
                                phone_sdp.is_some_and(|sdp| anchor.phone_early_media(&sdp, now));
                            if !passed {
                                let ringback = call
                                    .route
                                    .number
                                    .ringback
                                    .as_ref()
                                    .and_then(|name| self.prompts.get(name));
                                anchor.ringing(ringback, now);
                            }
                            MessageBuilder::response_to(
                                invite,
                                183,
                                "Session Progress",
                                Some(&call.inbound_tag),
                            )
                            .header(HeaderName::Contact, &contact)
                            .body("application/sdp", anchor.caller_sdp.as_bytes())
                        }
                        None => {
                            let b = MessageBuilder::response_to(
                                invite,
                                status,
                                response.reason().unwrap_or("Ringing"),
                                Some(&call.inbound_tag),
                            );
                            with_body_of(b.header(HeaderName::Contact, &contact), &response)
                        }
                    };
                    let _ = tx.respond(now, key, resp);
                    call.relayed_ringing = true;
                    let anchored = call.anchor.is_some();
                    if anchored {
                        self.after_media(tx, id, now, wall);
                    }
                }
            }
            200..=299 => {
                // Its INVITE transaction is over; the key (which shares the INVITE's
                // buffer) is not needed any more.
                leg.key = None;
                let Some(leg_invite) = leg.invite.take() else {
                    // A second 2xx for a leg already answered (another fork): its dialog
                    // is not ours to keep.
                    return;
                };
                let dialog = Dialog::as_uac(&leg_invite, &response, leg.destination);
                let cseq = leg_invite.cseq().map(|c| c.seq).unwrap_or(1);
                if state == LegState::Cancelling
                    || call.answered_leg.is_some()
                    || (call.inbound_final_sent && call.menu.is_none())
                {
                    // Lost the race (another phone answered, or the caller gave up):
                    // acknowledge and hang up this one.
                    leg.state = LegState::Ended;
                    if let Some(mut dialog) = dialog {
                        self.ack_leg(&dialog, cseq);
                        let bye = self.in_dialog(&mut dialog, Method::Bye);
                        if let Ok(k) = tx.send_request(now, bye, dialog.peer) {
                            self.by_client_key.insert(k, ClientPurpose::Ignore);
                        }
                    }
                    return;
                }
                let Some(leg_dialog) = dialog else {
                    warn!(call = id, "2xx without usable dialog identifiers");
                    return;
                };
                leg.state = LegState::Answered;
                leg.result = Some("answered".into());
                let phone = leg.phone;
                self.ack_leg(&leg_dialog, cseq);
                self.by_dialog.insert(
                    (leg_dialog.call_id.clone(), leg_dialog.local_tag.clone()),
                    (id, Side::Leg(leg_index)),
                );
                let Some(call) = self.calls.get_mut(&id) else {
                    return;
                };
                call.legs[leg_index].dialog = Some(leg_dialog);
                if call.answered_leg.is_none() {
                    self.talking += 1;
                }
                call.answered_leg = Some(leg_index);
                call.answer_at = Some(wall);
                call.ring_at.get_or_insert(wall);
                call.answered_instant = Some(now);
                call.max_call_at = Some(now + call.route.number.plan.max_call);
                // Billing starts with the caller's answer (unless a menu answered first).
                self.billing_answered(id, now, wall);
                let Some(call) = self.calls.get_mut(&id) else {
                    return;
                };
                with_group_state(&mut self.groups, &call.route.group, |state| {
                    call.hunt
                        .on_outcome(state, phone, PhoneOutcome::Answered, now)
                });

                if call.menu.is_some() {
                    // The menu answered the caller already: bridge the phone in.
                    if let Some(anchor) = call.anchor.as_mut() {
                        anchor.answered(sdp_body(&response).as_deref(), now);
                    }
                    start_recording(call, &self.zone, wall, now);
                    info!(call = id, phone = %call.legs[leg_index].label, "call answered");
                    self.after_media(tx, id, now, wall);
                    self.drive(tx, id, now, wall);
                    return;
                }
                // Answer the caller with the phone's session description. The caller's
                // INVITE is settled by this 2xx: what remains of it is its dialog.
                call.inbound_final_sent = true;
                let (Some(invite), Some(key)) =
                    (call.inbound_invite.take(), call.inbound_key.take())
                else {
                    return;
                };
                self.by_server_key.remove(&key);
                let b = inbound_2xx(
                    &self.config,
                    call,
                    &invite,
                    status,
                    response.reason().unwrap_or("OK"),
                );
                let ok = match call.anchor.as_mut() {
                    Some(anchor) => {
                        let answer = sdp_body(&response);
                        anchor.answered(answer.as_deref(), now);
                        let body = anchor.caller_sdp.clone();
                        start_recording(call, &self.zone, wall, now);
                        b.body("application/sdp", body.as_bytes())
                    }
                    None => with_body_of(b, &response),
                };
                self.confirm_inbound(tx, id, &invite, &key, ok, now);
                let Some(call) = self.calls.get_mut(&id) else {
                    return;
                };
                info!(call = id, phone = %call.legs[leg_index].label, "call answered");
                self.after_media(tx, id, now, wall);
                self.drive(tx, id, now, wall);
                // A held call keeps only what it needs until it ends.
                if let Some(call) = self.calls.get_mut(&id) {
                    call.legs.shrink_to_fit();
                    call.hunt.compact();
                }
            }
            _ => {
                leg.state = LegState::Ended;
                leg.invite = None;
                leg.key = None;
                leg.result.get_or_insert_with(|| status.to_string());
                if state == LegState::Cancelling {
                    return;
                }
                let phone = leg.phone;
                let outcome =
                    PhoneOutcome::from_final_status(status).unwrap_or(PhoneOutcome::Failed(status));
                with_group_state(&mut self.groups, &call.route.group, |state| {
                    call.hunt.on_outcome(state, phone, outcome, now)
                });
                self.drive(tx, id, now, wall);
            }
        }
    }

    /// A phone answered after its call ended (or after another phone won): ACK its 2xx
    /// so it stops retransmitting, then hang it up.
    fn ack_and_bye_orphan(
        &mut self,
        tx: &mut TransactionLayer,
        invite: &Message,
        response: &Message,
        destination: Peer,
        now: Instant,
    ) {
        let Some(mut dialog) = Dialog::as_uac(invite, response, destination) else {
            return;
        };
        let cseq = invite.cseq().map(|c| c.seq).unwrap_or(1);
        self.ack_leg(&dialog, cseq);
        let bye = self.in_dialog(&mut dialog, Method::Bye);
        if let Ok(k) = tx.send_request(now, bye, dialog.peer) {
            self.by_client_key.insert(k, ClientPurpose::Ignore);
        }
    }

    /// A timeout or transport error on one of our client transactions.
    pub fn on_client_failure(
        &mut self,
        tx: &mut TransactionLayer,
        key: ClientKey,
        timed_out: bool,
        now: Instant,
        wall: Timestamp,
    ) {
        let Some(ClientPurpose::LegInvite(id, leg_index)) = self.by_client_key.remove(&key) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(leg) = call.legs.get_mut(leg_index) else {
            return;
        };
        let was = leg.state;
        leg.state = LegState::Ended;
        leg.result.get_or_insert_with(|| {
            if timed_out {
                "timeout".into()
            } else {
                "transport_error".into()
            }
        });
        if was == LegState::Cancelling || was == LegState::Ended {
            return;
        }
        let phone = leg.phone;
        let outcome = if timed_out {
            PhoneOutcome::NoAnswer
        } else {
            PhoneOutcome::Failed(503)
        };
        with_group_state(&mut self.groups, &call.route.group, |state| {
            call.hunt.on_outcome(state, phone, outcome, now)
        });
        self.drive(tx, id, now, wall);
    }
}

fn send_cancel(
    tx: &mut TransactionLayer,
    by_client_key: &mut HashMap<ClientKey, ClientPurpose>,
    leg: &mut Leg,
    now: Instant,
) {
    leg.cancel_deferred = false;
    let Some(invite) = &leg.invite else {
        return;
    };
    let cancel = MessageBuilder::cancel_for(invite).build();
    if let Ok(key) = tx.send_request(now, cancel, leg.destination) {
        by_client_key.insert(key, ClientPurpose::Ignore);
    }
}

/// What the caller hears when no phone answered. Busy, cancelled and declined pass
/// through; any other failure (a phone's 404, a gateway's 503) becomes `480`, because
/// relaying it would tell the carrier the 400 number does not exist or invite it to
/// retry the call on another route.
fn caller_status(hunt_status: u16) -> u16 {
    match hunt_status {
        486 | 487 | 603 => hunt_status,
        _ => 480,
    }
}

/// The announcement for a hunt that failed with `caller_status` (as the caller would
/// get it): busy everywhere, or nobody answered. Cancelled and declined calls get none.
fn failure_announcement(caller_status: u16) -> Option<AnnouncementCase> {
    match caller_status {
        486 => Some(AnnouncementCase::Busy),
        480 => Some(AnnouncementCase::NoAnswer),
        _ => None,
    }
}

fn build_leg_invite(
    call: &Call,
    inbound: &Message,
    uri: &str,
    local: SocketAddr,
    transport: Transport,
    user_agent: &str,
) -> Message {
    let host = host_port(local);
    let local_host = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
    let caller = call.route.caller.as_str();
    let (from_user, privacy) = if call.route.caller.is_anonymous() {
        ("anonymous", true)
    } else {
        (caller, false)
    };
    // The CRM's name as the display name of From and P-Asserted-Identity (not for an
    // anonymous caller, who is never looked up).
    let display = call
        .caller_identity
        .as_ref()
        .and_then(|who| who.quoted_name())
        .map(|quoted| quoted + " ")
        .unwrap_or_default();
    let from = format!("{display}<sip:{from_user}@{local_host}>");
    let diversion = format!(
        "<sip:{}@{local_host}>;reason=unconditional",
        call.route.number.number
    );
    let max_forwards = inbound
        .max_forwards()
        .ok()
        .flatten()
        .map_or(70, |m| m.saturating_sub(1).max(1))
        .to_string();
    let mut b = MessageBuilder::request(Method::Invite, uri)
        .header(
            HeaderName::Via,
            &format!(
                "SIP/2.0/{} {host};branch=z9hG4bK{};rport",
                transport.as_str(),
                new_token()
            ),
        )
        .header(HeaderName::MaxForwards, &max_forwards)
        .header_parts(HeaderName::From, &[&from, ";tag=", &new_token()])
        .header_parts(HeaderName::To, &["<", uri, ">"])
        .header_parts(HeaderName::CallId, &[&new_token(), "@", local_host])
        .header(HeaderName::CSeq, "1 INVITE")
        .header(HeaderName::Contact, &contact_value(Some(local), transport))
        .header(HeaderName::Diversion, &diversion)
        .header(
            HeaderName::Allow,
            "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE",
        )
        .header(HeaderName::UserAgent, user_agent);
    if privacy {
        b = b.header(HeaderName::Privacy, "id");
    } else {
        b = b.header_parts(
            HeaderName::PAssertedIdentity,
            &[&display, "<sip:", caller, "@", local_host, ">"],
        );
    }
    if let Some(customer_id) = call
        .caller_identity
        .as_ref()
        .and_then(|who| who.customer_id())
    {
        b = b.header_named(super::crm::CUSTOMER_ID_HEADER, customer_id);
    }
    match &call.anchor {
        // Anchored: the phones get the relay's offer, never the caller's addresses.
        Some(anchor) => b.body("application/sdp", anchor.phone_sdp.as_bytes()),
        None => with_body_of(b, inbound),
    }
}

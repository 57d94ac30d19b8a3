//! Requests inside the dialogs we keep: BYE from either side, INFO keys for the voice
//! menu, re-INVITE and anything else relayed to the other leg with its response relayed
//! back, the ACK for our 2xx, a retransmitted 2xx from a phone, and the ACKs and BYEs we
//! send ourselves.

use std::time::Instant;

use jiff::Timestamp;
use sihai_records::HangupSide;
use sihai_sip::builder::{MessageBuilder, reason_phrase};
use sihai_sip::{HeaderName, Message, Method, Transport};
use sihai_transaction::{ServerKey, TransactionLayer, Transmit};
use tracing::{debug, warn};

use crate::dialog::Dialog;

use super::call::{Call, CallId, Side};
use super::wire::{contact_value, destination_of, sdp_body, with_body_of};
use super::{B2bua, ClientPurpose};

impl B2bua {
    /// Whether this request belongs to a dialog we keep (it has a To tag we issued).
    pub fn owns_dialog(&self, request: &Message) -> bool {
        dialog_key(request, DialogRole::Request).is_some_and(|k| self.by_dialog.contains_key(&k))
    }

    pub(super) fn ack_leg(&mut self, dialog: &Dialog, cseq: u32) {
        let via = self.via(dialog.peer.transport);
        let ack = dialog.ack(cseq, &via);
        let destination = destination_of(&dialog.remote_target).map_or(dialog.peer, |d| {
            if d.transport == dialog.peer.transport {
                d
            } else {
                dialog.peer
            }
        });
        self.outbox.push_back(Transmit {
            destination,
            payload: ack.wire(),
        });
    }

    /// A request carrying a To tag that belongs to one of our dialogs.
    pub fn on_in_dialog(
        &mut self,
        tx: &mut TransactionLayer,
        key: ServerKey,
        request: Message,
        now: Instant,
        wall: Timestamp,
    ) {
        let Some(dk) = dialog_key(&request, DialogRole::Request) else {
            return;
        };
        let Some(&(id, side)) = self.by_dialog.get(&dk) else {
            let resp = MessageBuilder::response_to(&request, 481, reason_phrase(481), None).build();
            let _ = tx.respond(now, &key, resp);
            return;
        };
        let method = request.method().unwrap_or(Method::Extension(""));
        if method == Method::Bye {
            let ok = MessageBuilder::response_to(&request, 200, "OK", None).build();
            let _ = tx.respond(now, &key, ok);
            let hangup_side = if side == Side::Inbound {
                HangupSide::Caller
            } else {
                HangupSide::Phone
            };
            if let Some(call) = self.calls.get_mut(&id) {
                call.hangup.get_or_insert((hangup_side, "BYE".into()));
            }
            self.abandon_menu_call(tx, id, now, wall);
            self.hang_up_other(tx, id, side, now);
            self.end_call(tx, id, now, wall);
            return;
        }
        if side == Side::Inbound
            && method == Method::Info
            && let Some(call) = self.calls.get_mut(&id)
            && call.answered_leg.is_none()
            && let Some(menu) = call.menu.as_mut()
        {
            // No phone to relay it to yet: a key for the menu (RFC 6086 INFO with
            // application/dtmf-relay or application/dtmf), or nothing we act on.
            let pressed = sihai_media::parse_info_body(
                request.content_type().unwrap_or_default(),
                &request.body()[..],
            );
            let ok = MessageBuilder::response_to(&request, 200, "OK", None).build();
            let _ = tx.respond(now, &key, ok);
            if let Some(digit) = pressed
                && !menu.hunting
            {
                debug!(call = id, %digit, "DTMF by INFO");
                menu.walk.on_digit(digit, now);
                self.run_menu(tx, id, now, wall);
            }
            return;
        }
        // Anything else is relayed to the other leg.
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let other = match side {
            Side::Inbound => call.answered_leg.map(Side::Leg),
            Side::Leg(_) => Some(Side::Inbound),
        };
        let transport = self.dialog_transport(id, other);
        let via = self.via(transport);
        let contact = contact_value(self.local_for(transport), transport);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let dialog = match other {
            Some(Side::Inbound) => call.inbound_dialog.as_mut(),
            Some(Side::Leg(i)) => call.legs.get_mut(i).and_then(|l| l.dialog.as_mut()),
            None => None,
        };
        let Some(dialog) = dialog else {
            let resp = MessageBuilder::response_to(&request, 481, reason_phrase(481), None).build();
            let _ = tx.respond(now, &key, resp);
            return;
        };
        let b = dialog.request(method, &via, &contact);
        let peer = dialog.peer;
        // An anchored call keeps its media on the relay: a re-offer (session refresh,
        // hold) reaches the other side as the relay's own description of that side.
        let relayed = match (&call.anchor, other, sdp_body(&request)) {
            (Some(anchor), Some(Side::Inbound), Some(_)) => {
                b.body("application/sdp", anchor.caller_sdp.as_bytes())
            }
            (Some(anchor), Some(Side::Leg(_)), Some(_)) => {
                b.body("application/sdp", anchor.phone_sdp.as_bytes())
            }
            _ => with_body_of(b, &request),
        };
        match tx.send_request(now, relayed, peer) {
            Ok(k) => {
                if let Some(call) = self.calls.get_mut(&id) {
                    call.relays.push(k.clone());
                }
                self.by_client_key.insert(
                    k,
                    ClientPurpose::Relay {
                        call: id,
                        from: side,
                        original: key,
                        request: Box::new(request),
                    },
                );
            }
            Err(err) => {
                warn!(call = id, %err, "cannot relay in-dialog request");
                let resp =
                    MessageBuilder::response_to(&request, 500, reason_phrase(500), None).build();
                let _ = tx.respond(now, &key, resp);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn relay_response(
        &mut self,
        tx: &mut TransactionLayer,
        id: CallId,
        from: Side,
        original: &ServerKey,
        request: &Message,
        response: &Message,
        now: Instant,
    ) {
        let status = response.status().unwrap_or(500);
        if status == 100 {
            return;
        }
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let transport = request_transport(call, from);
        // Anchored: the answer the requester sees is the relay's for its side.
        let anchored_body = call.anchor.as_ref().and_then(|anchor| {
            sdp_body(response).map(|_| match from {
                Side::Inbound => anchor.caller_sdp.clone(),
                Side::Leg(_) => anchor.phone_sdp.clone(),
            })
        });
        if request.method() == Some(Method::Invite) && (200..300).contains(&status) {
            // A relayed re-INVITE's 2xx: we ACK it on the far side ourselves and absorb
            // the ACK that the near side sends for our 2xx.
            let dialog = match from {
                Side::Inbound => call
                    .answered_leg
                    .and_then(|i| call.legs.get(i))
                    .and_then(|l| l.dialog.clone()),
                Side::Leg(_) => call.inbound_dialog.clone(),
            };
            if let Some(d) = dialog {
                let cseq = response.cseq().map(|c| c.seq).unwrap_or(1);
                self.ack_leg(&d, cseq);
            }
        }
        let b = MessageBuilder::response_to(
            request,
            status,
            response.reason().unwrap_or(reason_phrase(status)),
            None,
        );
        let b = match response.header(HeaderName::Contact) {
            Some(_) => b.header(HeaderName::Contact, &self.contact_for(transport)),
            None => b,
        };
        let answer = match anchored_body {
            Some(sdp) => b.body("application/sdp", sdp.as_bytes()),
            None => with_body_of(b, response),
        };
        let _ = tx.respond(now, original, answer);
    }

    /// An ACK outside any transaction: the ACK for a 2xx we sent.
    pub fn on_ack(&mut self, request: &Message) {
        let Some(dk) = dialog_key(request, DialogRole::Request) else {
            return;
        };
        if let Some(&(id, Side::Inbound)) = self.by_dialog.get(&dk)
            && let Some(call) = self.calls.get_mut(&id)
            && call.pending_2xx.take().is_some()
        {
            // The caller has our 2xx: its INVITE cannot be retransmitted any more.
            self.inbound_invites
                .remove(&std::mem::take(&mut call.inbound_identity));
        }
    }

    /// A response that matched no client transaction: a 2xx retransmitted because our
    /// ACK was lost. ACK it again.
    pub fn on_stray_response(&mut self, response: &Message) -> bool {
        if !response.status().is_some_and(|s| (200..300).contains(&s))
            || response.cseq().map(|c| c.method) != Ok(Method::Invite)
        {
            return false;
        }
        let Some(dk) = dialog_key(response, DialogRole::Response) else {
            return false;
        };
        let Some(&(id, Side::Leg(i))) = self.by_dialog.get(&dk) else {
            return false;
        };
        let Some(dialog) = self
            .calls
            .get(&id)
            .and_then(|c| c.legs.get(i))
            .and_then(|l| l.dialog.clone())
        else {
            return false;
        };
        let cseq = response.cseq().map(|c| c.seq).unwrap_or(1);
        self.ack_leg(&dialog, cseq);
        true
    }

    fn dialog_transport(&self, id: CallId, side: Option<Side>) -> Transport {
        let Some(call) = self.calls.get(&id) else {
            return Transport::Udp;
        };
        match side {
            Some(Side::Leg(i)) => call
                .legs
                .get(i)
                .map_or(Transport::Udp, |l| l.destination.transport),
            _ => call.inbound_source.transport,
        }
    }

    /// Sends BYE to the side opposite `side`: the caller if a phone hung up, the
    /// answering phone if the caller did.
    pub(super) fn hang_up_other(
        &mut self,
        tx: &mut TransactionLayer,
        id: CallId,
        side: Side,
        now: Instant,
    ) {
        let target = match side {
            Side::Inbound => self
                .calls
                .get(&id)
                .and_then(|c| c.answered_leg)
                .map(Side::Leg),
            Side::Leg(_) => Some(Side::Inbound),
        };
        if let Some(target) = target {
            self.bye(tx, id, target, now);
        }
    }

    /// Sends BYE inside the dialog of `target`.
    pub(super) fn bye(
        &mut self,
        tx: &mut TransactionLayer,
        id: CallId,
        target: Side,
        now: Instant,
    ) {
        let transport = self.dialog_transport(id, Some(target));
        let via = self.via(transport);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let reason = call.bye_reason;
        let dialog = match target {
            Side::Inbound => call.inbound_dialog.as_mut(),
            Side::Leg(i) => call.legs.get_mut(i).and_then(|l| l.dialog.as_mut()),
        };
        if let Some(dialog) = dialog {
            let mut bye = dialog.request(Method::Bye, &via, "");
            if let Some(reason) = reason {
                bye = bye.header(HeaderName::Reason, reason);
            }
            let bye = bye.build();
            let peer = dialog.peer;
            if let Ok(k) = tx.send_request(now, bye, peer) {
                self.by_client_key.insert(k, ClientPurpose::Ignore);
            }
        }
    }

    pub(super) fn in_dialog(&self, dialog: &mut Dialog, method: Method<'_>) -> Message {
        let via = self.via(dialog.peer.transport);
        dialog.request(method, &via, "").build()
    }
}

fn request_transport(call: &Call, side: Side) -> Transport {
    match side {
        Side::Inbound => call.inbound_source.transport,
        Side::Leg(i) => call
            .legs
            .get(i)
            .map_or(Transport::Udp, |l| l.destination.transport),
    }
}

enum DialogRole {
    /// A request to us: our tag is in To.
    Request,
    /// A response to our request: our tag is in From.
    Response,
}

fn dialog_key(msg: &Message, role: DialogRole) -> Option<(String, String)> {
    let tag = match role {
        DialogRole::Request => msg.to().ok()?.tag()?.to_string(),
        DialogRole::Response => msg.from().ok()?.tag()?.to_string(),
    };
    Some((msg.call_id().ok()?.to_string(), tag))
}

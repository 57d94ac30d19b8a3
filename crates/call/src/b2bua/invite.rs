//! The caller's INVITE, from its arrival to its final response: routing and screening
//! ([`Refusal`] and the CDR outcome of a rejection), anchoring the caller's media,
//! admission against the number's limits, refusals without an announcement, the 2xx
//! that answers the caller (by a phone or the voice menu), and the caller's CANCEL.

use std::sync::Arc;
use std::time::Instant;

use jiff::Timestamp;
use sihai_config::AnnouncementCase;
use sihai_records::{HangupSide, Outcome};
use sihai_routing::{CallRequest, Decision, RejectKind, Rejection, Route, RoutingTable, route};
use sihai_sip::builder::{MessageBuilder, reason_phrase};
use sihai_sip::{HeaderName, Message, NameAddr, Peer, Uri};
use sihai_transaction::{ServerKey, TransactionLayer};
use tracing::{debug, info};

use crate::dialog::Dialog;
use crate::media::Anchor;

use super::call::{Call, CallId, Pending2xx, Side};
use super::crm::CrmStart;
use super::groups::{new_hunt, with_group_state};
use super::record::{missed_call_alert, refused_cdr};
use super::wire::{contact_value, local_for, new_token, sdp_body};
use super::{B2bua, B2buaConfig};

/// A call refused before any phone rang, as its CDR and announcement need it.
#[derive(Debug)]
pub(super) struct Refusal {
    pub(super) route: Route,
    pub(super) case: AnnouncementCase,
    pub(super) status: u16,
    pub(super) reason: &'static str,
    pub(super) outcome: Outcome,
    /// The CDR's hangup cause.
    pub(super) cause: String,
    /// Whether the enterprise is told of the missed call.
    pub(super) alerts: bool,
}

impl Refusal {
    /// A routing rejection that an announcement may explain: the number is known (so
    /// the caller reached an enterprise) and the kind has an announcement case.
    fn of_rejection(rejection: &Rejection) -> Option<Refusal> {
        let case = rejection.kind.announcement()?;
        let number = rejection.number.as_ref()?;
        let trunk = rejection.trunk.clone()?;
        Some(Refusal {
            route: Route {
                trunk,
                number: number.clone(),
                caller: rejection.caller.clone(),
                region: rejection.region.clone(),
                group: number.plan.group.clone(),
                after_hours: rejection.kind == RejectKind::AfterHours,
            },
            case,
            status: rejection.status,
            reason: rejection.reason,
            outcome: rejection_outcome(rejection.kind),
            cause: rejection_cause(rejection),
            alerts: rejection.alerts(),
        })
    }
}

/// The CDR outcome of a routing rejection.
fn rejection_outcome(kind: RejectKind) -> Outcome {
    match kind {
        RejectKind::Blacklisted
        | RejectKind::NotWhitelisted
        | RejectKind::BlockedRegion
        | RejectKind::Anonymous => Outcome::Blacklisted,
        RejectKind::AfterHours => Outcome::AfterHours,
        _ => Outcome::Rejected,
    }
}

/// The CDR hangup cause of a routing rejection.
fn rejection_cause(rejection: &Rejection) -> String {
    if rejection.alerts() {
        "after_hours".to_string()
    } else {
        rejection.status.to_string()
    }
}

/// Our 2xx to the caller's INVITE, without its body.
pub(super) fn inbound_2xx(
    config: &B2buaConfig,
    call: &Call,
    invite: &Message,
    status: u16,
    reason: &str,
) -> MessageBuilder {
    let transport = call.inbound_source.transport;
    let contact = contact_value(local_for(config, transport), transport);
    MessageBuilder::response_to(invite, status, reason, Some(&call.inbound_tag))
        .header(HeaderName::Contact, &contact)
        .header(
            HeaderName::Allow,
            "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE",
        )
        .header(HeaderName::Server, &config.user_agent)
}

impl B2bua {
    /// A new INVITE (no To tag) from a trunk.
    // The arguments are the transaction event's fields plus the two clocks.
    #[allow(clippy::too_many_arguments)]
    pub fn on_invite(
        &mut self,
        tx: &mut TransactionLayer,
        table: &Arc<RoutingTable>,
        key: ServerKey,
        invite: Message,
        source: Peer,
        now: Instant,
        wall: Timestamp,
    ) {
        let Some(invite_id) = invite_identity(&invite) else {
            return;
        };
        if let Some(&call) = self.inbound_invites.get(&invite_id) {
            // Retransmission after our 2xx: the 2xx retransmission timer answers it.
            debug!(call, "absorbing retransmitted INVITE");
            return;
        }
        let trying = MessageBuilder::response_to(&invite, 100, "Trying", None).build();
        let _ = tx.respond(now, &key, trying);

        let request = CallRequest {
            source: source.addr.ip(),
            dialled: request_user(&invite).unwrap_or_default(),
            caller: caller_user(&invite).unwrap_or_default(),
            privacy: invite
                .values(HeaderName::Privacy)
                .any(|p| p.eq_ignore_ascii_case("id")),
        };
        let decision = route(table, self.regions, &request, wall, &self.zone);
        let route = match decision {
            Decision::Reject(rejection) => {
                info!(status = rejection.status, kind = ?rejection.kind, caller = %rejection.caller.as_str(), "call rejected");
                if let Some(refusal) = Refusal::of_rejection(&rejection)
                    && self.refuse_with_announcement(
                        tx, refusal, &key, &invite, source, None, now, wall,
                    )
                {
                    return;
                }
                self.reject(tx, &key, &invite, &rejection, now, wall);
                return;
            }
            Decision::Route(route) => route,
        };
        let number = route.number.clone();
        // The caller's offer is answered by the relay (488 if it carries nothing we can,
        // 503 if no ports are free); an INVITE without SDP (late offer) is not anchored.
        let mut anchor = None;
        if let Some(plane) = self.media.as_mut()
            && let Some(offer) = sdp_body(&invite)
        {
            match plane.anchor(self.next_id, &offer, now, rand::random()) {
                Ok(a) => anchor = Some(Box::new(a)),
                Err(error) => {
                    let status = error.status();
                    info!(number = %number.number, status, %error, "call refused: media");
                    let outcome = if status == 488 {
                        Outcome::Rejected
                    } else {
                        Outcome::Failed
                    };
                    self.refuse(
                        tx,
                        &key,
                        &invite,
                        &route,
                        status,
                        outcome,
                        status.to_string(),
                        now,
                        wall,
                    );
                    return;
                }
            }
        }
        let limits = self.limits.entry(number.number.clone()).or_default();
        if let Err(refusal) = limits.admit(number.max_concurrent, number.max_cps, now) {
            let status = refusal.status();
            info!(number = %number.number, status, "call refused by limits");
            let outcome = if status == 486 {
                Outcome::Busy
            } else {
                Outcome::Rejected
            };
            if status == 486 {
                // The number is as busy as it may be: the caller may be told so.
                let refusal = Refusal {
                    route: route.clone(),
                    case: AnnouncementCase::Busy,
                    status,
                    reason: reason_phrase(status),
                    outcome,
                    cause: status.to_string(),
                    alerts: false,
                };
                if self.refuse_with_announcement(
                    tx,
                    refusal,
                    &key,
                    &invite,
                    source,
                    anchor.take(),
                    now,
                    wall,
                ) {
                    return;
                }
            }
            if let (Some(plane), Some(anchor)) = (self.media.as_mut(), anchor.as_deref()) {
                plane.release(anchor);
            }
            self.refuse(
                tx,
                &key,
                &invite,
                &route,
                status,
                outcome,
                status.to_string(),
                now,
                wall,
            );
            return;
        }

        // A billed number's call waits, its media anchored and its place in the
        // number's limits taken, for the store to admit it; nothing rings meanwhile.
        let Some((key, invite, invite_id, route, anchor)) =
            self.park_for_admission(table, key, invite, invite_id, source, route, anchor, wall)
        else {
            return;
        };
        self.start_call(
            tx, None, table, key, invite, invite_id, source, route, anchor, None, wall, now, wall,
        );
    }

    /// Starts a routed call that may go ahead (admitted by the store, or not billed):
    /// its voice menu, or its hunt. `parked_as` is the id a call that waited for
    /// admission took (its media is anchored under it); `billed` carries the call's id and billing when the
    /// store admitted it; `setup_at` is when its INVITE came.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start_call(
        &mut self,
        tx: &mut TransactionLayer,
        parked_as: Option<CallId>,
        table: &Arc<RoutingTable>,
        key: ServerKey,
        invite: Message,
        invite_id: (String, String, u32),
        source: Peer,
        route: Route,
        anchor: Option<Box<Anchor>>,
        billed: Option<(String, Box<sihai_billing::CallBilling>)>,
        setup_at: Timestamp,
        now: Instant,
        wall: Timestamp,
    ) {
        let number = route.number.clone();
        // A plan that starts with a voice menu answers the caller first, which needs the
        // relay to play its prompts; the phones ring once the menu has chosen where.
        let menu = route.number.plan.menu.clone().filter(|_| anchor.is_some());
        if route.number.plan.menu.is_some() && menu.is_none() {
            debug!(number = %number.number, "voice menu skipped: the call's media is not on the relay");
        }
        let group = route.group.clone();
        let id = parked_as.unwrap_or_else(|| {
            let id = self.next_id;
            self.next_id += 1;
            id
        });
        // Asked now, even for a menu call (which does not wait for it: the answer comes
        // while the caller listens to the menu).
        let (identity, crm_wait_until) = match self.crm_start(&route, id, now) {
            CrmStart::None => (None, None),
            CrmStart::Cached(identity) => (identity, None),
            CrmStart::Ask(request, until) => {
                self.crm_lookups.push_back(request);
                (None, menu.is_none().then_some(until))
            }
        };
        let hunt = new_hunt(
            &mut self.groups,
            &group,
            number.plan.hunt_timeout,
            now,
            menu.is_none() && crm_wait_until.is_none(),
        );

        info!(call = id, number = %number.number, caller = %route.caller.as_str(), group = %group.name, after_hours = route.after_hours, "call routed");
        let mut call = Call::new(
            id,
            route,
            key.clone(),
            invite,
            invite_id.clone(),
            source,
            hunt,
            anchor,
            setup_at,
        );
        call.caller_identity = identity;
        call.crm_wait_until = crm_wait_until;
        if let Some((call_id, billing)) = billed {
            // The record keeps the id the store knows the reservation by.
            call.record_id = call_id;
            call.billing = Some(billing);
        }
        self.by_server_key.insert(key, id);
        self.inbound_invites.insert(invite_id, id);
        self.calls.insert(id, Box::new(call));
        match menu {
            Some(tree) => self.start_menu(tx, id, tree, table.clone(), now, wall),
            // The phones ring when the CRM answers or the wait runs out.
            None if crm_wait_until.is_some() => self.schedule(id),
            None => self.drive(tx, id, now, wall),
        }
    }

    /// Sends our 2xx for the caller's INVITE (already taken out of the call with its
    /// key): the caller's dialog begins, and over UDP the 2xx is retransmitted until the
    /// ACK comes (RFC 3261 §13.3.1.4).
    pub(super) fn confirm_inbound(
        &mut self,
        tx: &mut TransactionLayer,
        id: CallId,
        invite: &Message,
        key: &ServerKey,
        ok: Message,
        now: Instant,
    ) {
        let payload = ok.wire();
        let _ = tx.respond(now, key, ok);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if let Some(d) = Dialog::as_uas(invite, &call.inbound_tag, call.inbound_source) {
            self.by_dialog.insert(
                (d.call_id.clone(), d.local_tag.clone()),
                (id, Side::Inbound),
            );
            call.inbound_dialog = Some(d);
        }
        let destination = invite
            .top_via()
            .map(|v| v.response_target(call.inbound_source))
            .unwrap_or(call.inbound_source);
        if call.inbound_source.transport.is_reliable() {
            // No 2xx retransmissions over a stream: nothing more to absorb.
            self.inbound_invites.remove(&call.inbound_identity);
        } else {
            let t1 = self.config.timers.t1;
            call.pending_2xx = Some(Pending2xx {
                payload,
                destination,
                next: now + t1,
                interval: t1,
                give_up: now + t1 * 64,
            });
        }
    }

    /// Answers a routed INVITE with a final `status` before any phone rang, and records
    /// the call with `outcome`.
    #[allow(clippy::too_many_arguments)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn refuse(
        &mut self,
        tx: &mut TransactionLayer,
        key: &ServerKey,
        invite: &Message,
        route: &Route,
        status: u16,
        outcome: Outcome,
        cause: String,
        now: Instant,
        wall: Timestamp,
    ) {
        let tag = new_token();
        let resp = MessageBuilder::response_to(invite, status, reason_phrase(status), Some(&tag))
            .header(HeaderName::Server, &self.config.user_agent)
            .build();
        let _ = tx.respond(now, key, resp);
        self.records.push_back((
            refused_cdr(
                route.number.number.clone(),
                route.number.enterprise.id.clone(),
                &route.caller,
                route.region.as_ref(),
                outcome,
                cause,
                wall,
            ),
            None,
        ));
    }

    fn reject(
        &mut self,
        tx: &mut TransactionLayer,
        key: &ServerKey,
        invite: &Message,
        rejection: &Rejection,
        now: Instant,
        wall: Timestamp,
    ) {
        let tag = new_token();
        let resp =
            MessageBuilder::response_to(invite, rejection.status, rejection.reason, Some(&tag))
                .header(HeaderName::Server, &self.config.user_agent)
                .build();
        let _ = tx.respond(now, key, resp);
        if rejection.kind == RejectKind::UntrustedSource {
            // Not a call for any enterprise: counted and logged, no CDR.
            return;
        }
        let outcome = rejection_outcome(rejection.kind);
        let number = rejection.number.as_ref().map_or_else(
            || request_user(invite).unwrap_or_default().to_string(),
            |n| n.number.clone(),
        );
        let enterprise = rejection
            .number
            .as_ref()
            .map(|n| n.enterprise.id.clone())
            .unwrap_or_default();
        let cause = rejection_cause(rejection);
        let cdr = refused_cdr(
            number,
            enterprise,
            &rejection.caller,
            rejection.region.as_ref(),
            outcome,
            cause,
            wall,
        );
        let alert = if rejection.alerts() {
            rejection
                .number
                .as_ref()
                .and_then(|n| missed_call_alert(&cdr, &n.enterprise))
        } else {
            None
        };
        self.records.push_back((cdr, alert));
    }

    /// The caller cancelled its INVITE (the layer already answered the CANCEL).
    pub fn on_cancel(
        &mut self,
        tx: &mut TransactionLayer,
        invite: &ServerKey,
        now: Instant,
        wall: Timestamp,
    ) {
        let Some(&id) = self.by_server_key.get(invite) else {
            self.cancel_awaiting_admission(tx, invite, now, wall);
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.answered_leg.is_some() || call.inbound_final_sent {
            return;
        }
        if call.announcement.is_some() {
            // The outcome stays what the announcement was explaining.
            info!(call = id, "caller cancelled during the announcement");
            call.hangup = Some((HangupSide::Caller, "CANCEL".into()));
            if let Some(a) = call.announcement.as_mut() {
                a.status = 487;
                a.reason = reason_phrase(487);
            }
            self.release_announced(tx, id, now, wall);
            return;
        }
        info!(call = id, "caller cancelled");
        call.outcome = Some(Outcome::Cancelled);
        call.hangup = Some((HangupSide::Caller, "CANCEL".into()));
        with_group_state(&mut self.groups, &call.route.group, |state| {
            call.hunt.on_cancelled_by_caller(state, now)
        });
        self.drive(tx, id, now, wall);
    }
}

fn request_user(invite: &Message) -> Option<&str> {
    let uri = Uri::parse(invite.request_uri()?).ok()?;
    uri.user.map(|u| u.split(';').next().unwrap_or(u))
}

/// The caller's number: P-Asserted-Identity (what a carrier vouches for) or From.
fn caller_user(invite: &Message) -> Option<&str> {
    let from_pai = invite.values(HeaderName::PAssertedIdentity).find_map(|v| {
        let addr = NameAddr::parse(v).ok()?;
        let uri = Uri::parse(addr.uri).ok()?;
        uri.user
    });
    let user = from_pai.or_else(|| {
        let from = invite.from().ok()?;
        Uri::parse(from.uri).ok()?.user
    })?;
    Some(user.split(';').next().unwrap_or(user))
}

/// What makes an inbound INVITE the same INVITE again. RFC 2543 peers send no From tag,
/// which is then simply empty.
pub(super) fn invite_identity(invite: &Message) -> Option<(String, String, u32)> {
    let from_tag = invite.from().ok()?.tag().unwrap_or_default().to_string();
    Some((
        invite.call_id().ok()?.to_string(),
        from_tag,
        invite.cseq().ok()?.seq,
    ))
}

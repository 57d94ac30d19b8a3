//! Announcements: a call refused (or a hunt that failed) plays its number's prompt for
//! the case to the caller as early media, as many times as configured, then the call is
//! released with its final status (or a BYE when a voice menu had answered it).

use std::time::{Duration, Instant};

use jiff::Timestamp;
use sihai_config::AnnouncementCase;
use sihai_records::HangupSide;
use sihai_sip::builder::MessageBuilder;
use sihai_sip::{HeaderName, Message, Peer};
use sihai_transaction::{ServerKey, TransactionLayer};
use tracing::{debug, info, warn};

use crate::media::Anchor;

use super::B2bua;
use super::call::{Call, CallId, Side};
use super::groups::new_hunt;
use super::invite::{Refusal, invite_identity};
use super::wire::{contact_value, local_for, sdp_body};

/// An announcement playing to the caller (after hours, busy, no answer, suspended,
/// refused) before the call is released: with its final status while the caller's
/// INVITE is unanswered (early media), with a BYE when a voice menu answered it.
#[derive(Debug)]
pub(super) struct Announcement {
    /// The `[[prompt]]` name, for the CDR.
    pub(super) name: String,
    prompt: sihai_media::Prompt,
    /// Times it is still to play after the current one.
    plays_left: u32,
    /// The final response to the caller's INVITE once it has played.
    pub(super) status: u16,
    pub(super) reason: &'static str,
    /// If the relay never reports the prompt's end (it always should), the call is
    /// released at this instant all the same.
    pub(super) deadline: Instant,
}

/// A refused caller is anchored for an announcement only while at least
/// 1/`ANNOUNCEMENT_FREE_PORTS_DIVISOR` of the relay's port pairs are free.
const ANNOUNCEMENT_FREE_PORTS_DIVISOR: usize = 4;

/// How long past a prompt's own length its end may be reported before the call is
/// released anyway: the relay's ticks run late under load, never by seconds.
const ANNOUNCEMENT_SLACK: Duration = Duration::from_secs(2);

impl B2bua {
    /// Refuses a call after playing its number's announcement for the refusal's case,
    /// if there is one to play (the relay is on, the caller offered SDP, the prompt is
    /// loaded): the call is anchored (on `anchor` when it already is), answered with
    /// early media and released with the refusal's status once the announcement has
    /// played. `false` when there is nothing to play; `anchor`, if given, is then back
    /// in the pool and the caller is still to be answered.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn refuse_with_announcement(
        &mut self,
        tx: &mut TransactionLayer,
        refusal: Refusal,
        key: &ServerKey,
        invite: &Message,
        source: Peer,
        anchor: Option<Box<Anchor>>,
        now: Instant,
        wall: Timestamp,
    ) -> bool {
        let playable = refusal
            .route
            .number
            .announcements
            .get(refusal.case)
            .is_some_and(|name| self.prompts.contains_key(name));
        let anchor = match anchor {
            Some(anchor) if playable => Some(anchor),
            Some(anchor) => {
                if let Some(plane) = self.media.as_mut() {
                    plane.release(&anchor);
                }
                None
            }
            None if playable => match (self.media.as_mut(), sdp_body(invite)) {
                // Messages come after calls: with less than a quarter of the ports
                // free, a caller who cannot be put through gets the bare status, and
                // a flood of refused callers cannot starve the calls that can.
                (Some(plane), Some(_))
                    if plane.available() * ANNOUNCEMENT_FREE_PORTS_DIVISOR < plane.capacity() =>
                {
                    debug!("announcement skipped: the relay's ports are scarce");
                    None
                }
                (Some(plane), Some(offer)) => {
                    match plane.anchor(self.next_id, &offer, now, rand::random()) {
                        Ok(anchor) => Some(Box::new(anchor)),
                        Err(error) => {
                            // The caller still learns why, from the status alone.
                            debug!(%error, "announcement skipped: the caller's media cannot be anchored");
                            None
                        }
                    }
                }
                _ => None,
            },
            None => None,
        };
        let Some(anchor) = anchor else {
            return false;
        };
        let Some(invite_id) = invite_identity(invite) else {
            if let Some(plane) = self.media.as_mut() {
                plane.release(&anchor);
            }
            return false;
        };
        let id = self.next_id;
        self.next_id += 1;
        // No phone rings: the hunt is never started.
        let hunt = new_hunt(
            &mut self.groups,
            &refusal.route.group,
            refusal.route.number.plan.hunt_timeout,
            now,
            false,
        );
        let mut call = Call::new(
            id,
            refusal.route,
            key.clone(),
            invite.clone(),
            invite_id.clone(),
            source,
            hunt,
            Some(anchor),
            wall,
        );
        call.admitted = false;
        call.alerts_missed = refusal.alerts;
        call.outcome = Some(refusal.outcome);
        call.hangup = Some((HangupSide::System, refusal.cause));
        self.by_server_key.insert(key.clone(), id);
        self.inbound_invites.insert(invite_id, id);
        self.calls.insert(id, Box::new(call));
        if !self.announce(
            tx,
            id,
            refusal.case,
            refusal.status,
            refusal.reason,
            now,
            wall,
        ) {
            // Checked above, so this does not happen; if it did, the bare status goes.
            self.release_bare(tx, id, refusal.status, refusal.reason, now, wall);
        }
        true
    }

    /// Plays the number's announcement for `case` to the caller of call `id`, which
    /// is anchored, then releases the call with `status` (or, answered by a voice menu,
    /// with a BYE). `false` when there is no announcement to play.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn announce(
        &mut self,
        tx: &mut TransactionLayer,
        id: CallId,
        case: AnnouncementCase,
        status: u16,
        reason: &'static str,
        now: Instant,
        wall: Timestamp,
    ) -> bool {
        let Some(call) = self.calls.get_mut(&id) else {
            return false;
        };
        let Some(name) = call.route.number.announcements.get(case) else {
            return false;
        };
        let Some(anchor) = call.anchor.as_mut() else {
            return false;
        };
        let Some(prompt) = self.prompts.get(name) else {
            // `sihai check` knows the name; the file did not load.
            warn!(call = id, prompt = %name, "announcement not loaded; the bare status goes");
            return false;
        };
        let plays = call.route.number.announcement_plays.max(1);
        info!(call = id, prompt = %name, plays, status, "announcing");
        anchor.relay.play(
            sihai_relay::Source::Prompt {
                prompt: prompt.clone(),
                repeat: false,
            },
            now,
        );
        call.announcement = Some(Box::new(Announcement {
            name: name.to_owned(),
            prompt: prompt.clone(),
            plays_left: plays - 1,
            status,
            reason,
            deadline: now + prompt.duration() + ANNOUNCEMENT_SLACK,
        }));
        // Early media: the caller hears it on the relay's SDP, answered by nothing (a
        // 183 went already if phones rang).
        if !call.inbound_final_sent
            && !call.relayed_ringing
            && let (Some(invite), Some(key)) = (&call.inbound_invite, &call.inbound_key)
        {
            let contact = contact_value(
                local_for(&self.config, call.inbound_source.transport),
                call.inbound_source.transport,
            );
            let progress = MessageBuilder::response_to(
                invite,
                183,
                "Session Progress",
                Some(&call.inbound_tag),
            )
            .header(HeaderName::Contact, &contact)
            .header(HeaderName::Server, &self.config.user_agent)
            .body("application/sdp", anchor.caller_sdp.as_bytes());
            let _ = tx.respond(now, key, progress);
            call.relayed_ringing = true;
        }
        self.after_media(tx, id, now, wall);
        true
    }

    /// The announcement reached its end: again, or release the call.
    pub(super) fn announcement_played(
        &mut self,
        tx: &mut TransactionLayer,
        id: CallId,
        now: Instant,
        wall: Timestamp,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let (Some(announcement), Some(anchor)) = (call.announcement.as_mut(), call.anchor.as_mut())
        else {
            self.release_announced(tx, id, now, wall);
            return;
        };
        if announcement.plays_left == 0 {
            self.release_announced(tx, id, now, wall);
            return;
        }
        announcement.plays_left -= 1;
        announcement.deadline = now + announcement.prompt.duration() + ANNOUNCEMENT_SLACK;
        anchor.relay.play(
            sihai_relay::Source::Prompt {
                prompt: announcement.prompt.clone(),
                repeat: false,
            },
            now,
        );
        self.after_media(tx, id, now, wall);
    }

    /// Ends a call whose announcement has played (or was cut short): the caller's
    /// INVITE gets the announcement's final status, or a caller a menu answered gets
    /// a BYE. The CDR keeps the outcome the announcement explained.
    pub(super) fn release_announced(
        &mut self,
        tx: &mut TransactionLayer,
        id: CallId,
        now: Instant,
        wall: Timestamp,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some((status, reason)) = call.announcement.as_ref().map(|a| (a.status, a.reason))
        else {
            return;
        };
        if call.inbound_final_sent {
            self.bye(tx, id, Side::Inbound, now);
            self.end_call(tx, id, now, wall);
        } else {
            self.release_bare(tx, id, status, reason, now, wall);
        }
    }

    /// Answers the unanswered caller's INVITE with `status` and ends the call.
    fn release_bare(
        &mut self,
        tx: &mut TransactionLayer,
        id: CallId,
        status: u16,
        reason: &str,
        now: Instant,
        wall: Timestamp,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if let (Some(invite), Some(key)) = (&call.inbound_invite, &call.inbound_key) {
            let resp = MessageBuilder::response_to(invite, status, reason, Some(&call.inbound_tag))
                .header(HeaderName::Server, &self.config.user_agent)
                .build();
            let _ = tx.respond(now, key, resp);
        }
        call.inbound_final_sent = true;
        self.end_call(tx, id, now, wall);
    }
}

//! The voice menu: answering the caller for it, playing its prompts on the relay one
//! after another, acting on its choice (a group, an extension, hanging up), and a caller
//! who leaves before any phone answered.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use jiff::Timestamp;
use sihai_ivr::{IvrAction, MenuWalk};
use sihai_records::{HangupSide, Outcome};
use sihai_routing::RoutingTable;
use sihai_sip::Message;
use sihai_transaction::TransactionLayer;
use tracing::{info, warn};

use super::B2bua;
use super::call::{CallId, Side};
use super::groups::{new_hunt, with_group_state};
use super::invite::inbound_2xx;

/// A call answered by its plan's voice menu: the walk through the menu, the prompts it
/// asked for, and what hunting needs once the menu has decided.
#[derive(Debug)]
pub(super) struct MenuCall {
    pub(super) walk: MenuWalk,
    /// Prompts asked for and not started yet: the relay plays one source at a time.
    queue: VecDeque<sihai_ivr::PromptName>,
    /// A prompt of the walk's is playing on the relay.
    pub(super) playing: bool,
    /// The routing snapshot the call was routed with: where the menu's groups and
    /// extensions are looked up.
    table: Arc<RoutingTable>,
    /// The caller's INVITE, answered by the menu, that the phones' INVITEs are built
    /// from once the menu chose where the call goes.
    pub(super) invite: Message,
    /// The menu has chosen and phones are being hunted.
    pub(super) hunting: bool,
}

impl B2bua {
    /// Answers the caller with the relay's SDP and starts the menu's welcome.
    pub(super) fn start_menu(
        &mut self,
        tx: &mut TransactionLayer,
        id: CallId,
        tree: Arc<sihai_ivr::MenuTree>,
        table: Arc<RoutingTable>,
        now: Instant,
        wall: Timestamp,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        // Only anchored calls get here (the menu plays on the relay); check before taking
        // the INVITE out of the call, so that nothing is lost if that ever changes.
        if call.anchor.is_none() {
            return;
        }
        let (Some(invite), Some(key), Some(anchor)) = (
            call.inbound_invite.take(),
            call.inbound_key.take(),
            call.anchor.as_ref(),
        ) else {
            return;
        };
        self.by_server_key.remove(&key);
        call.inbound_final_sent = true;
        let ok = inbound_2xx(&self.config, call, &invite, 200, "OK")
            .body("application/sdp", anchor.caller_sdp.as_bytes());
        call.menu = Some(Box::new(MenuCall {
            walk: MenuWalk::start(tree, now),
            queue: VecDeque::new(),
            playing: false,
            table,
            invite: invite.clone(),
            hunting: false,
        }));
        info!(call = id, "answered by the voice menu");
        self.confirm_inbound(tx, id, &invite, &key, ok, now);
        // The caller is answered: menu time is billed, as carriers bill it.
        self.billing_answered(id, now, wall);
        self.run_menu(tx, id, now, wall);
    }

    /// Carries out what the menu asks for: prompts one after another on the relay, and
    /// the call's route once it has decided.
    pub(super) fn run_menu(
        &mut self,
        tx: &mut TransactionLayer,
        id: CallId,
        now: Instant,
        wall: Timestamp,
    ) {
        loop {
            let Some(call) = self.calls.get_mut(&id) else {
                return;
            };
            let Some(menu) = call.menu.as_mut() else {
                return;
            };
            let mut chosen = None;
            while let Some(action) = menu.walk.poll_action() {
                match action {
                    IvrAction::Play(name) => menu.queue.push_back(name),
                    IvrAction::StopPlayback => {
                        menu.queue.clear();
                        if std::mem::take(&mut menu.playing)
                            && let Some(anchor) = call.anchor.as_mut()
                        {
                            anchor.relay.play(sihai_relay::Source::Silence, now);
                        }
                    }
                    IvrAction::Done(outcome) => chosen = Some(outcome),
                }
            }
            if let Some(outcome) = chosen {
                info!(
                    call = id,
                    path = menu.walk.path(),
                    ?outcome,
                    "voice menu chose"
                );
                menu.queue.clear();
                menu.playing = false;
                self.menu_chose(tx, id, outcome, now, wall);
                return;
            }
            if menu.playing {
                break;
            }
            let Some(name) = menu.queue.pop_front() else {
                break;
            };
            match (self.prompts.get(&*name), call.anchor.as_mut()) {
                (Some(prompt), Some(anchor)) => {
                    let prompt = prompt.clone();
                    anchor.relay.play(
                        sihai_relay::Source::Prompt {
                            prompt,
                            repeat: false,
                        },
                        now,
                    );
                    menu.playing = true;
                    break;
                }
                _ => {
                    // `sihai check` reports unknown prompts; a file that failed to load
                    // is skipped rather than leaving the caller in silence.
                    warn!(call = id, prompt = %name, "menu prompt not loaded; skipped");
                    menu.walk.on_prompt_finished(now);
                }
            }
        }
        self.after_media(tx, id, now, wall);
    }

    /// The menu decided: ring the chosen group or extension with its ringback, or hang up.
    fn menu_chose(
        &mut self,
        tx: &mut TransactionLayer,
        id: CallId,
        outcome: sihai_ivr::Outcome,
        now: Instant,
        wall: Timestamp,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(menu) = call.menu.as_mut() else {
            return;
        };
        let enterprise = &call.route.number.enterprise.id;
        let (group, ringback) = match outcome {
            sihai_ivr::Outcome::Group { group, ringback } => {
                let found = menu.table.group(enterprise, &group).cloned();
                if found.is_none() {
                    warn!(call = id, %group, "menu group not in the configuration; the plan's group answers");
                }
                (found, ringback.map(|r| r.to_string()))
            }
            sihai_ivr::Outcome::Extension { number, ringback } => {
                match menu.table.extension(enterprise, &number) {
                    Some(extension) => (
                        Some(extension.group.clone()),
                        extension
                            .ringback
                            .clone()
                            .or_else(|| ringback.map(|r| r.to_string())),
                    ),
                    None => {
                        // The switchboard (总机) takes calls for extensions that do not exist.
                        info!(call = id, extension = %number, "no such extension; the plan's group answers");
                        (None, ringback.map(|r| r.to_string()))
                    }
                }
            }
            sihai_ivr::Outcome::Hangup => {
                call.outcome.get_or_insert(Outcome::Cancelled);
                call.hangup
                    .get_or_insert((HangupSide::System, "menu_hangup".into()));
                self.bye(tx, id, Side::Inbound, now);
                self.end_call(tx, id, now, wall);
                return;
            }
        };
        menu.hunting = true;
        let group = group.unwrap_or_else(|| call.route.group.clone());
        // What the caller hears while phones ring: the extension's or the menu node's
        // ringback, else the number's, else the ringing tone.
        let ringback = ringback
            .or_else(|| call.route.number.ringback.clone())
            .and_then(|name| self.prompts.get(&name));
        if let Some(anchor) = call.anchor.as_mut() {
            anchor.ringing(ringback, now);
        }
        call.hunt = new_hunt(
            &mut self.groups,
            &group,
            call.route.number.plan.hunt_timeout,
            now,
            true,
        );
        call.route.group = group;
        self.after_media(tx, id, now, wall);
        self.drive(tx, id, now, wall);
    }

    /// The caller left a call the menu answered (BYE, or media timeout) before any
    /// phone did: phones still ringing are cancelled.
    pub(super) fn abandon_menu_call(
        &mut self,
        tx: &mut TransactionLayer,
        id: CallId,
        now: Instant,
        wall: Timestamp,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.answered_leg.is_some() {
            return;
        }
        let Some(menu) = call.menu.as_mut() else {
            return;
        };
        call.outcome.get_or_insert(Outcome::Cancelled);
        if std::mem::take(&mut menu.hunting) {
            with_group_state(&mut self.groups, &call.route.group, |state| {
                call.hunt.on_cancelled_by_caller(state, now)
            });
            self.drive(tx, id, now, wall);
        }
    }
}

//! The calls in progress and everything that moves them: new INVITEs, responses from
//! phones, CANCEL and BYE from either side, in-dialog requests, and timers.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use sihai_config::{AnnouncementCase, PhoneTarget};
use sihai_hunt::{
    GroupState, Hunt, HuntAction, HuntResult, KeyedGroupState, PhoneOutcome, Strategy,
};
use sihai_records::{Cdr, HangupSide, NewAlert, Outcome, PhoneAttempt};
use sihai_region::RegionTable;
use sihai_routing::admission::NumberLimits;
use sihai_routing::route::CallerRegion;
use sihai_routing::{
    CallRequest, Caller, Decision, RejectKind, Rejection, Route, RoutingTable, route,
};
use sihai_sip::builder::{MessageBuilder, reason_phrase};
use sihai_sip::{HeaderName, Message, Method, NameAddr, Peer, Scheme, Transport, Uri};
use sihai_transaction::{ClientKey, ServerKey, TimerConfig, TransactionLayer, Transmit};
use tracing::{debug, info, warn};

use sihai_ivr::{IvrAction, MenuWalk};

use crate::dialog::Dialog;
use crate::media::{Anchor, MediaPlane, MediaSettings, PortEvent};

mod call;

use call::{Call, CallId, Leg, LegState, Pending2xx, Side};

/// What the B2BUA needs to know about its own endpoint.
#[derive(Debug, Clone)]
pub struct B2buaConfig {
    pub timers: TimerConfig,
    pub user_agent: String,
    /// Where we listen, per transport: our Via and Contact.
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
}

/// An announcement playing to the caller (after hours, busy, no answer, suspended,
/// refused) before the call is released: with its final status while the caller's
/// INVITE is unanswered (early media), with a BYE when a voice menu answered it.
#[derive(Debug)]
struct Announcement {
    /// The `[[prompt]]` name, for the CDR.
    name: String,
    prompt: sihai_media::Prompt,
    /// Times it is still to play after the current one.
    plays_left: u32,
    /// The final response to the caller's INVITE once it has played.
    status: u16,
    reason: &'static str,
    /// If the relay never reports the prompt's end (it always should), the call is
    /// released at this instant all the same.
    deadline: Instant,
}

/// A call refused before any phone rang, as its CDR and announcement need it.
#[derive(Debug)]
struct Refusal {
    route: Route,
    case: AnnouncementCase,
    status: u16,
    reason: &'static str,
    outcome: Outcome,
    /// The CDR's hangup cause.
    cause: String,
    /// Whether the enterprise is told of the missed call.
    alerts: bool,
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

/// A refused caller is anchored for an announcement only while at least
/// 1/`ANNOUNCEMENT_FREE_PORTS_DIVISOR` of the relay's port pairs are free.
const ANNOUNCEMENT_FREE_PORTS_DIVISOR: usize = 4;

/// How long past a prompt's own length its end may be reported before the call is
/// released anyway: the relay's ticks run late under load, never by seconds.
const ANNOUNCEMENT_SLACK: Duration = Duration::from_secs(2);

/// A call answered by its plan's voice menu: the walk through the menu, the prompts it
/// asked for, and what hunting needs once the menu has decided.
#[derive(Debug)]
struct MenuCall {
    walk: MenuWalk,
    /// Prompts asked for and not started yet: the relay plays one source at a time.
    queue: VecDeque<sihai_ivr::PromptName>,
    /// A prompt of the walk's is playing on the relay.
    playing: bool,
    /// The routing snapshot the call was routed with: where the menu's groups and
    /// extensions are looked up.
    table: Arc<RoutingTable>,
    /// The caller's INVITE, answered by the menu, that the phones' INVITEs are built
    /// from once the menu chose where the call goes.
    invite: Message,
    /// The menu has chosen and phones are being hunted.
    hunting: bool,
}

/// A hunt group as the B2BUA keeps it across calls.
#[derive(Debug)]
struct GroupEntry {
    /// The configuration the phone list was built from (identity tells a reload).
    config: Arc<sihai_routing::Group>,
    phones: Arc<[sihai_hunt::Phone]>,
    /// Channel counts, idle times and round-robin position, by phone identity so that
    /// they follow the phones across a reload whatever the new list's shape.
    state: KeyedGroupState<PhoneTarget>,
}

impl GroupEntry {
    fn new(group: &Arc<sihai_routing::Group>) -> GroupEntry {
        GroupEntry {
            config: group.clone(),
            state: KeyedGroupState::new(phone_keys(group)),
            phones: hunt_phones(group),
        }
    }

    /// The group as a reload left it: the hunt's phones rebuilt, the counters carried
    /// over phone by phone.
    fn relist(&mut self, group: &Arc<sihai_routing::Group>) {
        self.state.relist(&phone_keys(group));
        self.phones = hunt_phones(group);
        self.config = group.clone();
    }
}

fn phone_keys(group: &sihai_routing::Group) -> Vec<PhoneTarget> {
    group.phones.iter().map(|p| p.target.clone()).collect()
}

fn hunt_phones(group: &sihai_routing::Group) -> Arc<[sihai_hunt::Phone]> {
    group
        .phones
        .iter()
        .map(|p| sihai_hunt::Phone {
            ring_timeout: p.ring_timeout,
            capacity: p.capacity,
            weight: p.weight,
            enabled: p.enabled,
        })
        .collect()
}

/// Runs `f` (a step of a hunt over `group`'s phone list) on the group's shared
/// counters. A call whose hunt started on another version of the group (before a
/// reload) indexes its phones into that version's list: its steps are translated to
/// the same phones, by identity, in the current state.
fn with_group_state<R>(
    groups: &mut HashMap<String, GroupEntry>,
    group: &Arc<sihai_routing::Group>,
    f: impl FnOnce(&mut GroupState) -> R,
) -> R {
    // Looked up before inserting: the entry exists on every step but the first, and
    // `entry()` would allocate the name each time.
    if !groups.contains_key(&group.name) {
        groups.insert(group.name.clone(), GroupEntry::new(group));
    }
    let Some(entry) = groups.get_mut(&group.name) else {
        unreachable!("inserted above")
    };
    if Arc::ptr_eq(&entry.config, group) {
        f(entry.state.current())
    } else {
        entry
            .state
            .with_list(group.phones.iter().map(|p| &p.target), f)
    }
}

/// A hunt of `group`'s phones, started unless the call waits for its menu first. A
/// reload that replaced the group carries its counters over by phone identity, so that
/// calls still up from before keep their phones' channels.
fn new_hunt(
    groups: &mut HashMap<String, GroupEntry>,
    group: &Arc<sihai_routing::Group>,
    timeout: Duration,
    now: Instant,
    start: bool,
) -> Hunt {
    let entry = groups
        .entry(group.name.clone())
        .or_insert_with(|| GroupEntry::new(group));
    if !Arc::ptr_eq(&entry.config, group) {
        entry.relist(group);
    }
    let mut hunt = Hunt::new(
        strategy(group.strategy),
        entry.phones.clone(),
        timeout,
        now,
        rand::random(),
    );
    if start {
        hunt.start(entry.state.current(), now);
    }
    hunt
}

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

/// Our 2xx to the caller's INVITE, without its body.
fn inbound_2xx(
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

/// Starts recording an answered call when its number records calls.
fn start_recording(call: &mut Call, zone: &TimeZone, wall: Timestamp, now: Instant) {
    if !call.route.number.record {
        return;
    }
    let Some(anchor) = call.anchor.as_mut() else {
        return;
    };
    anchor.relay.set_recording(true, now);
    let day = zone.to_datetime(wall).date();
    call.recording = Some(Arc::from(format!(
        "{}/{day}/{}.wav",
        call.route.number.enterprise.id, call.record_id
    )));
}

/// What a client transaction we started was for.
#[derive(Debug, Clone)]
enum ClientPurpose {
    /// An INVITE to a phone.
    LegInvite(CallId, usize),
    /// A request relayed from the other side: answer the original with the response.
    Relay {
        call: CallId,
        from: Side,
        original: ServerKey,
        request: Box<Message>,
    },
    /// An INVITE to a phone whose call has ended: a late 2xx gets ACK and BYE, and a
    /// CANCEL deferred until the phone's first provisional response goes with it.
    Orphan {
        invite: Box<Message>,
        destination: Peer,
        cancel_deferred: bool,
    },
    /// BYE or CANCEL: the response only confirms.
    Ignore,
}

pub struct B2bua {
    config: B2buaConfig,
    regions: &'static RegionTable,
    zone: TimeZone,
    next_id: CallId,
    /// Boxed: a map sized for tens of thousands of calls keeps its empty slots small.
    calls: HashMap<CallId, Box<Call>>,
    by_server_key: HashMap<ServerKey, CallId>,
    by_client_key: HashMap<ClientKey, ClientPurpose>,
    /// (Call-ID, our tag) → call and side, for in-dialog requests, ACKs and stray 2xx.
    by_dialog: HashMap<(String, String), (CallId, Side)>,
    /// (Call-ID, caller's From tag, CSeq) of live inbound INVITEs: a retransmission
    /// arriving after our 2xx ended the transaction is not a new call.
    inbound_invites: HashMap<(String, String, u32), CallId>,
    /// Per hunt group: its phones as the hunt sees them and the counters shared by
    /// every call to it.
    groups: HashMap<String, GroupEntry>,
    limits: HashMap<String, NumberLimits>,
    timers: BinaryHeap<Reverse<(Instant, CallId)>>,
    outbox: VecDeque<Transmit>,
    records: VecDeque<(Cdr, Option<NewAlert>)>,
    /// The RTP relay's ports and queues; `None` passes SDP through end to end.
    media: Option<MediaPlane<CallId>>,
    /// Audio loaded from the configuration's `[[prompt]]`s, by name.
    prompts: Arc<HashMap<String, sihai_media::Prompt>>,
    recorded: VecDeque<crate::media::RecordingOutput>,
}

impl B2bua {
    pub fn new(config: B2buaConfig, regions: &'static RegionTable, zone: TimeZone) -> B2bua {
        B2bua {
            config,
            regions,
            zone,
            next_id: 1,
            calls: HashMap::new(),
            by_server_key: HashMap::new(),
            by_client_key: HashMap::new(),
            by_dialog: HashMap::new(),
            inbound_invites: HashMap::new(),
            groups: HashMap::new(),
            limits: HashMap::new(),
            timers: BinaryHeap::new(),
            outbox: VecDeque::new(),
            records: VecDeque::new(),
            media: None,
            prompts: Arc::default(),
            recorded: VecDeque::new(),
        }
    }

    /// Recorded audio to write, and recordings to close.
    pub fn poll_recording(&mut self) -> Option<crate::media::RecordingOutput> {
        self.recorded.pop_front()
    }

    /// The prompts calls may play, by `[[prompt]]` name; replaced whole on reload.
    pub fn set_prompts(&mut self, prompts: Arc<HashMap<String, sihai_media::Prompt>>) {
        self.prompts = prompts;
    }

    /// Anchors the media of every call with an SDP offer on the relay.
    pub fn enable_media(&mut self, settings: MediaSettings) -> Result<(), sihai_media::PoolError> {
        self.media = Some(MediaPlane::new(settings)?);
        Ok(())
    }

    /// Settings a reload may change, for what starts from now on: the `User-Agent` /
    /// `Server` product token and the media timeout of calls anchored after (calls in
    /// progress keep theirs).
    pub fn reconfigure(&mut self, user_agent: &str, media_timeout: Duration) {
        if self.config.user_agent != user_agent {
            self.config.user_agent = user_agent.to_owned();
        }
        if let Some(media) = self.media.as_mut() {
            media.set_media_timeout(media_timeout);
        }
    }

    /// Port pairs free for new calls, when the relay is on.
    pub fn media_ports_available(&self) -> Option<usize> {
        self.media.as_ref().map(MediaPlane::available)
    }

    /// A datagram that arrived on relay port `port` from `source`.
    pub fn handle_media(
        &mut self,
        tx: &mut TransactionLayer,
        port: u16,
        source: SocketAddr,
        packet: &[u8],
        now: Instant,
        wall: Timestamp,
    ) {
        let Some(id) = self.media.as_ref().and_then(|m| m.call_of(port)) else {
            return;
        };
        if let Some(anchor) = self.calls.get_mut(&id).and_then(|c| c.anchor.as_mut()) {
            anchor.handle_packet(now, port, source, packet);
        }
        self.after_media(tx, id, now, wall);
    }

    /// RTP to send: from which of our ports, to where.
    pub fn poll_media_transmit(&mut self) -> Option<sihai_relay::MediaTransmit> {
        self.media.as_mut()?.poll_transmit()
    }

    /// Hands a sent packet's buffer back to the relay of the call that owns `from_port`,
    /// so steady-state forwarding allocates nothing.
    pub fn recycle_media(&mut self, from_port: u16, buffer: Vec<u8>) {
        let Some(id) = self.media.as_ref().and_then(|m| m.call_of(from_port)) else {
            return;
        };
        if let Some(anchor) = self.calls.get_mut(&id).and_then(|c| c.anchor.as_mut()) {
            anchor.relay.recycle(buffer);
        }
    }

    /// Relay ports to open or close.
    pub fn poll_port_event(&mut self) -> Option<PortEvent> {
        self.media.as_mut()?.poll_port_event()
    }

    /// Collects what a call's relay produced and acts on its events.
    fn after_media(
        &mut self,
        tx: &mut TransactionLayer,
        id: CallId,
        now: Instant,
        wall: Timestamp,
    ) {
        let (Some(plane), Some(call)) = (self.media.as_mut(), self.calls.get_mut(&id)) else {
            return;
        };
        let Some(anchor) = call.anchor.as_mut() else {
            return;
        };
        plane.collect(anchor);
        if let Some(name) = &call.recording {
            take_recorded(anchor, name, &mut self.recorded);
        }
        let mut timed_out = false;
        // For the menu, in order: a key (`Some`) or the end of a prompt (`None`).
        let mut menu_inputs = Vec::new();
        while let Some(event) = anchor.relay.poll_event() {
            match event {
                sihai_relay::MediaEvent::MediaTimeout { leg } => {
                    info!(call = id, %leg, "media timeout");
                    timed_out = true;
                }
                sihai_relay::MediaEvent::Dtmf { key, leg } => {
                    debug!(call = id, %leg, %key, "DTMF");
                    if leg == sihai_relay::Leg::Caller {
                        menu_inputs.push(Some(key));
                    }
                }
                sihai_relay::MediaEvent::PlaybackFinished => menu_inputs.push(None),
            }
        }
        if call.announcement.is_some() {
            // Keys are not for anyone, and a caller silent during a short, bounded
            // announcement is no reason to cut it.
            if menu_inputs.iter().any(Option::is_none) {
                self.announcement_played(tx, id, now, wall);
            } else {
                self.schedule(id);
            }
            return;
        }
        if timed_out && call.answered_leg.is_none() && call.menu.is_some() {
            call.hangup
                .get_or_insert((HangupSide::System, "media_timeout".into()));
            self.abandon_menu_call(tx, id, now, wall);
            self.bye(tx, id, Side::Inbound, now);
            self.end_call(tx, id, now, wall);
            return;
        }
        if let Some(menu) = call.menu.as_mut()
            && !menu.hunting
            && !menu_inputs.is_empty()
        {
            for input in menu_inputs {
                match input {
                    Some(key) => menu.walk.on_digit(key, now),
                    None => {
                        if std::mem::take(&mut menu.playing) {
                            menu.walk.on_prompt_finished(now);
                        }
                    }
                }
            }
            self.run_menu(tx, id, now, wall);
            return;
        }
        if timed_out && call.answered_leg.is_some() {
            call.hangup
                .get_or_insert((HangupSide::System, "media_timeout".into()));
            self.hang_up_other(tx, id, Side::Inbound, now);
            self.bye(tx, id, Side::Inbound, now);
            self.end_call(tx, id, now, wall);
            return;
        }
        self.schedule(id);
    }

    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// Entries in the call timer heap, for tests and metrics.
    pub fn pending_call_timers(&self) -> usize {
        self.timers.len()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop_front()
    }

    /// A finished call's record, and the missed-call alert that goes with it.
    pub fn poll_record(&mut self) -> Option<(Cdr, Option<NewAlert>)> {
        self.records.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Whether this request belongs to a dialog we keep (it has a To tag we issued).
    pub fn owns_dialog(&self, request: &Message) -> bool {
        dialog_key(request, DialogRole::Request).is_some_and(|k| self.by_dialog.contains_key(&k))
    }

    // ---------------------------------------------------------------- new calls

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
                    self.refuse(tx, &key, &invite, &route, status, outcome, now, wall);
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
            self.refuse(tx, &key, &invite, &route, status, outcome, now, wall);
            return;
        }

        // A plan that starts with a voice menu answers the caller first, which needs the
        // relay to play its prompts; the phones ring once the menu has chosen where.
        let menu = route.number.plan.menu.clone().filter(|_| anchor.is_some());
        if route.number.plan.menu.is_some() && menu.is_none() {
            debug!(number = %number.number, "voice menu skipped: the call's media is not on the relay");
        }
        let group = route.group.clone();
        let hunt = new_hunt(
            &mut self.groups,
            &group,
            number.plan.hunt_timeout,
            now,
            menu.is_none(),
        );

        let id = self.next_id;
        self.next_id += 1;
        info!(call = id, number = %number.number, caller = %route.caller.as_str(), group = %group.name, after_hours = route.after_hours, "call routed");
        let call = Call::new(
            id,
            route,
            key.clone(),
            invite,
            invite_id.clone(),
            source,
            hunt,
            anchor,
            wall,
        );
        self.by_server_key.insert(key, id);
        self.inbound_invites.insert(invite_id, id);
        self.calls.insert(id, Box::new(call));
        match menu {
            Some(tree) => self.start_menu(tx, id, tree, table.clone(), now, wall),
            None => self.drive(tx, id, now, wall),
        }
    }

    // ---------------------------------------------------------------- voice menu

    /// Answers the caller with the relay's SDP and starts the menu's welcome.
    fn start_menu(
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
        self.run_menu(tx, id, now, wall);
    }

    /// Carries out what the menu asks for: prompts one after another on the relay, and
    /// the call's route once it has decided.
    fn run_menu(&mut self, tx: &mut TransactionLayer, id: CallId, now: Instant, wall: Timestamp) {
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
    fn abandon_menu_call(
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

    /// Sends our 2xx for the caller's INVITE (already taken out of the call with its
    /// key): the caller's dialog begins, and over UDP the 2xx is retransmitted until the
    /// ACK comes (RFC 3261 §13.3.1.4).
    fn confirm_inbound(
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
    fn refuse(
        &mut self,
        tx: &mut TransactionLayer,
        key: &ServerKey,
        invite: &Message,
        route: &Route,
        status: u16,
        outcome: Outcome,
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
                status.to_string(),
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

    // ---------------------------------------------------------------- announcements

    /// Refuses a call after playing its number's announcement for the refusal's case,
    /// if there is one to play (the relay is on, the caller offered SDP, the prompt is
    /// loaded): the call is anchored (on `anchor` when it already is), answered with
    /// early media and released with the refusal's status once the announcement has
    /// played. `false` when there is nothing to play; `anchor`, if given, is then back
    /// in the pool and the caller is still to be answered.
    #[allow(clippy::too_many_arguments)]
    fn refuse_with_announcement(
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
    fn announce(
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
    fn announcement_played(
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
    fn release_announced(
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

    // ---------------------------------------------------------------- hunting

    /// Applies whatever the hunt wants now, and finishes the call if it is over.
    fn drive(&mut self, tx: &mut TransactionLayer, id: CallId, now: Instant, wall: Timestamp) {
        self.drive_cancelling_as(tx, id, now, wall, "cancelled");
    }

    /// [`drive`](B2bua::drive), recording each phone the hunt cancels now with `result`
    /// in the CDR's attempts: `"cancelled"` when another phone answered or the caller
    /// gave up, `"no_answer"` when the phone's ring timeout (or the hunt's) ran out.
    fn drive_cancelling_as(
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

    fn cancel_phone(
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

    fn local_for(&self, transport: Transport) -> Option<SocketAddr> {
        local_for(&self.config, transport)
    }

    // ---------------------------------------------------------------- responses

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
                call.answered_leg = Some(leg_index);
                call.answer_at = Some(wall);
                call.ring_at.get_or_insert(wall);
                call.answered_instant = Some(now);
                call.max_call_at = Some(now + call.route.number.plan.max_call);
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

    fn ack_leg(&mut self, dialog: &Dialog, cseq: u32) {
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

    // ---------------------------------------------------------------- caller CANCEL

    /// The caller cancelled its INVITE (the layer already answered the CANCEL).
    pub fn on_cancel(
        &mut self,
        tx: &mut TransactionLayer,
        invite: &ServerKey,
        now: Instant,
        wall: Timestamp,
    ) {
        let Some(&id) = self.by_server_key.get(invite) else {
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

    // ---------------------------------------------------------------- in-dialog

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
    fn relay_response(
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
    fn hang_up_other(&mut self, tx: &mut TransactionLayer, id: CallId, side: Side, now: Instant) {
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
    fn bye(&mut self, tx: &mut TransactionLayer, id: CallId, target: Side, now: Instant) {
        let transport = self.dialog_transport(id, Some(target));
        let via = self.via(transport);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let dialog = match target {
            Side::Inbound => call.inbound_dialog.as_mut(),
            Side::Leg(i) => call.legs.get_mut(i).and_then(|l| l.dialog.as_mut()),
        };
        if let Some(dialog) = dialog {
            let bye = dialog.request(Method::Bye, &via, "").build();
            let peer = dialog.peer;
            if let Ok(k) = tx.send_request(now, bye, peer) {
                self.by_client_key.insert(k, ClientPurpose::Ignore);
            }
        }
    }

    fn in_dialog(&self, dialog: &mut Dialog, method: Method<'_>) -> Message {
        let via = self.via(dialog.peer.transport);
        dialog.request(method, &via, "").build()
    }

    // ---------------------------------------------------------------- timers

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
    fn schedule(&mut self, id: CallId) {
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

    // ---------------------------------------------------------------- ending

    fn finish_if_done(
        &mut self,
        tx: &mut TransactionLayer,
        id: CallId,
        now: Instant,
        wall: Timestamp,
    ) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let hunting_over = call.hunt.result().is_some();
        // An announcement ends the call itself once it has played.
        let unanswered_and_final = call.answered_leg.is_none()
            && call.inbound_final_sent
            && hunting_over
            && call.announcement.is_none();
        if unanswered_and_final {
            self.end_call(tx, id, now, wall);
        }
    }

    fn end_call(&mut self, tx: &mut TransactionLayer, id: CallId, now: Instant, wall: Timestamp) {
        let Some(mut call) = self.calls.remove(&id) else {
            return;
        };
        if let (Some(name), Some(anchor)) = (&call.recording, call.anchor.as_mut()) {
            // The last frames the relay tapped go before the end of the file.
            take_recorded(anchor, name, &mut self.recorded);
        }
        if let (Some(plane), Some(anchor)) = (self.media.as_mut(), call.anchor.take()) {
            plane.release(&anchor);
        }
        if let Some(key) = call.inbound_key.take() {
            self.by_server_key.remove(&key);
        }
        self.inbound_invites.remove(&call.inbound_identity);
        if let Some(d) = &call.inbound_dialog {
            self.by_dialog
                .remove(&(d.call_id.clone(), d.local_tag.clone()));
        }
        for leg in &call.legs {
            if let Some(d) = &leg.dialog {
                self.by_dialog
                    .remove(&(d.call_id.clone(), d.local_tag.clone()));
            }
            if let Some(k) = &leg.key
                && let Some(invite) = &leg.invite
                && self.by_client_key.contains_key(k)
            {
                // Its INVITE transaction is still open: a late 2xx must be ACKed and hung up.
                self.by_client_key.insert(
                    k.clone(),
                    ClientPurpose::Orphan {
                        invite: Box::new(invite.clone()),
                        destination: leg.destination,
                        cancel_deferred: leg.cancel_deferred,
                    },
                );
            }
        }
        for key in call.relays.drain(..) {
            if let Some(ClientPurpose::Relay {
                original, request, ..
            }) = self.by_client_key.remove(&key)
            {
                let resp =
                    MessageBuilder::response_to(&request, 481, reason_phrase(481), None).build();
                let _ = tx.respond(now, &original, resp);
            }
        }
        if call.admitted
            && let Some(limits) = self.limits.get_mut(&call.route.number.number)
        {
            limits.release();
        }
        if let Some(i) = call.answered_leg
            && let Some(leg) = call.legs.get(i)
        {
            with_group_state(&mut self.groups, &call.route.group, |state| {
                Hunt::release(state, leg.phone, now)
            });
        }
        let talk_seconds = call
            .answered_instant
            .map_or(0, |at| now.saturating_duration_since(at).as_secs() as u32);
        let outcome = if call.answered_leg.is_some() {
            Outcome::Answered
        } else {
            call.outcome.unwrap_or(Outcome::Failed)
        };
        let rung = call.legs.iter().map(|l| PhoneAttempt {
            phone: l.label.clone(),
            result: l.result.clone().unwrap_or_else(|| "no_answer".into()),
        });
        // Phones passed over because all their channels were taken count as tried too:
        // per-phone analytics should show that the phone was busy, not idle.
        let skipped = call
            .hunt
            .skipped()
            .iter()
            .filter_map(|&i| call.route.group.phones.get(i))
            .map(|p| PhoneAttempt {
                phone: p.label().to_string(),
                result: "at_capacity".into(),
            });
        let attempts = rung.chain(skipped).collect();
        let (hangup_side, hangup_cause) = call
            .hangup
            .take()
            .map_or((None, None), |(s, c)| (Some(s), Some(c)));
        let cdr = Cdr {
            call_id: call.record_id.clone(),
            number: call.route.number.number.clone(),
            enterprise: call.route.number.enterprise.id.clone(),
            caller: call.route.caller.as_str().to_string(),
            caller_province: call.route.region.as_ref().map(|r| r.province.clone()),
            caller_city: call.route.region.as_ref().map(|r| r.city.clone()),
            answered_by: call
                .answered_leg
                .and_then(|i| call.legs.get(i))
                .map(|l| l.label.clone()),
            attempts,
            setup_at: call.setup_at,
            ring_at: call.ring_at,
            answer_at: call.answer_at,
            end_at: wall,
            talk_seconds,
            outcome,
            hangup_side,
            hangup_cause,
            recording: call.recording.as_deref().map(str::to_owned),
            menu_path: call.menu.as_ref().map(|m| m.walk.path().to_owned()),
            announcement: call.announcement.as_ref().map(|a| a.name.clone()),
            billed_seconds: 0,
            cost: None,
            tariff: None,
        };
        if let Some(name) = call.recording.take() {
            self.recorded
                .push_back(crate::media::RecordingOutput::Finished { name });
        }
        let alert = if outcome == Outcome::Answered || !call.alerts_missed {
            None
        } else {
            missed_call_alert(&cdr, &call.route.number.enterprise)
        };
        info!(
            call = id,
            outcome = outcome.as_str(),
            talk_seconds,
            "call ended"
        );
        self.records.push_back((cdr, alert));
    }

    // ---------------------------------------------------------------- identity

    fn via(&self, transport: Transport) -> String {
        let local = self
            .local_for(transport)
            .or(self.config.udp)
            .or(self.config.tcp);
        let host = local.map_or_else(|| "127.0.0.1:5060".to_string(), host_port);
        format!(
            "SIP/2.0/{} {host};branch=z9hG4bK{};rport",
            transport.as_str(),
            new_token()
        )
    }

    fn contact_for(&self, transport: Transport) -> String {
        contact_value(self.local_for(transport), transport)
    }
}

// ---------------------------------------------------------------------- helpers

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

fn local_for(config: &B2buaConfig, transport: Transport) -> Option<SocketAddr> {
    match transport {
        Transport::Udp => config.udp,
        Transport::Tcp => config.tcp,
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

fn strategy(s: sihai_config::HuntStrategy) -> Strategy {
    use sihai_config::HuntStrategy as H;
    match s {
        H::Sequential => Strategy::Sequential,
        H::RoundRobin => Strategy::RoundRobin,
        H::Random => Strategy::Random,
        H::Simultaneous => Strategy::Simultaneous,
        H::Weighted => Strategy::Weighted,
        H::LongestIdle => Strategy::LongestIdle,
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

fn new_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn host_port(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(ip) => format!("{ip}:{}", addr.port()),
        IpAddr::V6(ip) => format!("[{ip}]:{}", addr.port()),
    }
}

fn contact_value(local: Option<SocketAddr>, transport: Transport) -> String {
    let host = local.map_or_else(|| "127.0.0.1:5060".to_string(), host_port);
    match transport {
        Transport::Udp => format!("<sip:sihai@{host}>"),
        Transport::Tcp => format!("<sip:sihai@{host};transport=tcp>"),
    }
}

/// The phone's address: IP literal host, port (default 5060), transport parameter.
fn destination_of(uri: &str) -> Option<Peer> {
    let parsed = Uri::parse(uri).ok()?;
    if !matches!(parsed.scheme, Scheme::Sip) {
        return None;
    }
    let ip: IpAddr = parsed
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    let transport = match parsed.param("transport").flatten() {
        Some(t) if t.eq_ignore_ascii_case("tcp") => Transport::Tcp,
        Some(t) if !t.eq_ignore_ascii_case("udp") => return None,
        _ => Transport::Udp,
    };
    Some(Peer::new(
        transport,
        SocketAddr::new(ip, parsed.port.unwrap_or(5060)),
    ))
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
fn invite_identity(invite: &Message) -> Option<(String, String, u32)> {
    let from_tag = invite.from().ok()?.tag().unwrap_or_default().to_string();
    Some((
        invite.call_id().ok()?.to_string(),
        from_tag,
        invite.cseq().ok()?.seq,
    ))
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

/// Moves the audio the relay tapped for recording `name` into `out`.
fn take_recorded(
    anchor: &mut Anchor,
    name: &Arc<str>,
    out: &mut VecDeque<crate::media::RecordingOutput>,
) {
    while let Some(frame) = anchor.relay.poll_recorded() {
        out.push_back(crate::media::RecordingOutput::Frame {
            name: name.clone(),
            caller: frame.caller,
            phone: frame.phone,
        });
    }
}

/// The SDP body of `msg`, if it has one (`application/sdp`, valid UTF-8, not empty).
fn sdp_body(msg: &Message) -> Option<String> {
    let is_sdp = msg.content_type().is_some_and(|ct| {
        ct.trim()
            .get(..15)
            .is_some_and(|media_type| media_type.eq_ignore_ascii_case("application/sdp"))
    });
    if !is_sdp {
        return None;
    }
    let body = String::from_utf8(msg.body().to_vec()).ok()?;
    (!body.trim().is_empty()).then_some(body)
}

/// Finishes `b` with the body (and Content-Type) of `source`, if it has one.
fn with_body_of(b: MessageBuilder, source: &Message) -> Message {
    let body = source.body();
    match (body.is_empty(), source.content_type()) {
        (false, Some(ct)) => b.body(ct, &body),
        _ => b.build(),
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
    let from = format!("<sip:{from_user}@{local_host}>");
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
            &["<sip:", caller, "@", local_host, ">"],
        );
    }
    match &call.anchor {
        // Anchored: the phones get the relay's offer, never the caller's addresses.
        Some(anchor) => b.body("application/sdp", anchor.phone_sdp.as_bytes()),
        None => with_body_of(b, inbound),
    }
}

/// The record of a call refused before any phone rang.
fn refused_cdr(
    number: String,
    enterprise: String,
    caller: &Caller,
    region: Option<&CallerRegion>,
    outcome: Outcome,
    cause: String,
    wall: Timestamp,
) -> Cdr {
    Cdr {
        call_id: format!("{}-r", new_token()),
        number,
        enterprise,
        caller: caller.as_str().to_string(),
        caller_province: region.map(|r| r.province.clone()),
        caller_city: region.map(|r| r.city.clone()),
        answered_by: None,
        attempts: Vec::new(),
        setup_at: wall,
        ring_at: None,
        answer_at: None,
        end_at: wall,
        talk_seconds: 0,
        outcome,
        hangup_side: Some(HangupSide::System),
        hangup_cause: Some(cause),
        recording: None,
        menu_path: None,
        announcement: None,
        billed_seconds: 0,
        cost: None,
        tariff: None,
    }
}

/// The JSON webhook body for a missed call, if the enterprise has a webhook.
fn missed_call_alert(cdr: &Cdr, enterprise: &sihai_routing::model::Enterprise) -> Option<NewAlert> {
    let url = enterprise.alert_webhook.clone()?;
    let payload = format!(
        "{{\"event\":\"missed_call\",\"enterprise\":{},\"number\":{},\"caller\":{},\"time\":{},\"outcome\":{},\"call_id\":{}}}",
        json_string(&enterprise.id),
        json_string(&cdr.number),
        json_string(&cdr.caller),
        json_string(&cdr.setup_at.to_string()),
        json_string(cdr.outcome.as_str()),
        json_string(&cdr.call_id)
    );
    Some(NewAlert {
        enterprise: enterprise.id.clone(),
        url,
        payload,
    })
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

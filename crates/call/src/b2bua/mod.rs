//! The calls in progress and everything that moves them: new INVITEs, responses from
//! phones, CANCEL and BYE from either side, in-dialog requests, and timers.
//!
//! [`B2bua`] is one struct whose `impl` is spread over one file per concern; a file's
//! `pub(super)` items are what the others use.
//!
//! - `mod.rs`: [`B2buaConfig`], the [`B2bua`] struct with its indexes (by server key,
//!   client key, dialog and INVITE identity), what each client transaction we started is
//!   for (`ClientPurpose`), construction and reload settings.
//! - `call.rs`: a call's state: `Call`, its legs, the 2xx awaiting the caller's ACK.
//! - `invite.rs`: a new INVITE from a trunk: routing, screening, media anchoring,
//!   admission, refusals, the 2xx that answers the caller, the caller's CANCEL.
//! - `groups.rs`: hunt groups kept across calls: phone lists, shared counters, reloads.
//! - `hunt.rs`: the phones: ringing, cancelling, and their responses (ringing, answer,
//!   failure); what happens when a phone answers is `on_leg_response` there.
//! - `menu.rs`: the voice menu, from answering the caller to its choice.
//! - `announce.rs`: announcements played before a call is released, and releasing it.
//! - `in_dialog.rs`: BYE, re-INVITE, INFO and other in-dialog requests; ACK and BYE we
//!   send.
//! - `relay.rs`: the call's media on the RTP relay, recordings, the relay's events.
//! - `timers.rs`: the call timer heap and what each call's wake-up does.
//! - `crm.rs`: the caller's name from the enterprise's CRM (来电弹屏): the lookup a
//!   call waits for before ringing, its timeout and the cache of answers.
//! - `billing.rs`: prepaid billing's hooks: admission before anything rings, the answer
//!   that starts billing, renewals and the cut-off, and the store's replies.
//! - `record.rs`: ending a call: teardown, its CDR and missed-call alert.
//! - `shutdown.rs`: the node draining and ending every call left when it stops.
//! - `wire.rs`: our Via and Contact, tokens, phone addresses, SDP bodies.

mod announce;
mod billing;
mod call;
mod crm;
mod groups;
mod hunt;
mod in_dialog;
mod invite;
mod menu;
mod record;
mod relay;
mod shutdown;
mod timers;
mod wire;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::tz::TimeZone;
use sihai_records::{Cdr, NewAlert};
use sihai_region::RegionTable;
use sihai_routing::admission::NumberLimits;
use sihai_sip::{Message, Peer};
use sihai_transaction::{ClientKey, ServerKey, TimerConfig, Transmit};

use crate::media::MediaPlane;

pub use billing::BillingOp;
use billing::PendingAdmission;
use call::{Call, CallId, Side};
pub use crm::{
    CRM_CACHE_CAPACITY, CRM_CACHE_TTL, CUSTOMER_ID_HEADER, CallerIdentity, CrmAnswer, CrmCounts,
    CrmLookupRequest,
};
use groups::GroupEntry;
pub use shutdown::{SHUTDOWN_CAUSE, SHUTDOWN_REASON};

/// What the B2BUA needs to know about its own endpoint.
#[derive(Debug, Clone)]
pub struct B2buaConfig {
    pub timers: TimerConfig,
    pub user_agent: String,
    /// Where we listen, per transport: our Via and Contact.
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
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
    /// What billed calls ask of the store (reservations, answers), in order.
    billing_ops: VecDeque<BillingOp>,
    /// Routed calls of billed numbers waiting for the store to admit them, by their
    /// record id; nothing rings for them yet.
    admitting: HashMap<String, PendingAdmission>,
    /// The same, by the caller's INVITE transaction: a CANCEL may come meanwhile.
    admitting_keys: HashMap<ServerKey, String>,
    /// Answered billed calls by record id, for the store's replies to their renewals.
    billed: HashMap<String, CallId>,
    /// Talk time one reservation chunk covers (`[billing] reservation_minutes`).
    reservation_seconds: u32,
    next_admission: u64,
    /// Calls bridged to the phone that answered and not yet ended (for the metrics).
    talking: usize,
    /// CRM lookups for the daemon to do, in order.
    crm_lookups: VecDeque<CrmLookupRequest>,
    /// Lookups asked and not answered, by lookup id (the asking call's id).
    crm_outstanding: HashMap<u64, crm::Outstanding>,
    crm_cache: crm::CrmCache,
    /// How the CRM lookups came out, for the metrics.
    crm_counts: crm::CrmCounts,
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
            billing_ops: VecDeque::new(),
            admitting: HashMap::new(),
            admitting_keys: HashMap::new(),
            billed: HashMap::new(),
            reservation_seconds: billing::DEFAULT_RESERVATION_SECONDS,
            next_admission: 0,
            talking: 0,
            crm_lookups: VecDeque::new(),
            crm_outstanding: HashMap::new(),
            crm_cache: crm::CrmCache::default(),
            crm_counts: crm::CrmCounts::default(),
        }
    }

    /// The prompts calls may play, by `[[prompt]]` name; replaced whole on reload.
    pub fn set_prompts(&mut self, prompts: Arc<HashMap<String, sihai_media::Prompt>>) {
        self.prompts = prompts;
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

    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// Calls bridged to the phone that answered, not ended yet.
    pub fn calls_talking(&self) -> usize {
        self.talking
    }

    /// Calls holding a prepaid reservation or waiting for the store to grant one.
    pub fn calls_holding_reservations(&self) -> usize {
        self.billed.len() + self.admitting.len()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop_front()
    }
}

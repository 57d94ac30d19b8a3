//! The transaction layer: owns every transaction, matches each message to one
//! (§17.1.3, §17.2.3), runs their timers from one queue, and collects what they want
//! sent and said.
//!
//! Transactions live in a slab and are found through two hash maps (server keys,
//! client keys), so matching is a hash lookup and a timer names its transaction by
//! slot without holding a key. Every input runs in the same order: match, hand to the
//! state machine, remove the transaction if it terminated, drop stale timers, so that
//! [`TransactionLayer::poll_timeout`] is always the earliest timer that will really
//! fire.
//!
//! Lingering transactions: a non-INVITE transaction that has its final response over
//! UDP has nothing left to do but absorb retransmissions, the server for 64*T1 (Timer
//! J, 32 s: answer each with the final response again), the client for T4 (Timer K,
//! 5 s: drop them). Every BYE leaves one of each, so at thousands of calls per second
//! they are most of the layer. They leave the slab for a compact form: the map entry
//! under a key copied out of the request (so the request's buffer is freed), the
//! response bytes for a server, and a place in a FIFO per timer, whose deadlines come in
//! order because every entry waits the same time. Expiry pops the front: no heap, no
//! 392-byte slot, no parsed message kept for 32 s.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use sihai_sip::builder::{MessageBuilder, reason_phrase};
use sihai_sip::{Message, Method, Peer};
use tracing::debug;

use crate::client_invite::ClientInvite;
use crate::client_non_invite::ClientNonInvite;
use crate::context::{Ctx, Env, Outputs};
use crate::error::TransactionError;
use crate::key::{ClientKey, ServerKey, ToTag, TransactionKey};
use crate::server_invite::{self, ServerInvite};
use crate::server_non_invite::ServerNonInvite;
use crate::timer::{Armed, Timer, TxId};
use crate::{Event, SipCounters, TimerConfig, Transmit};

/// Owns every transaction. Single-threaded by design: wrap it, don't share it.
#[derive(Debug)]
pub struct TransactionLayer {
    config: TimerConfig,
    slab: Slab,
    servers: HashMap<ServerKey, ServerSlot>,
    clients: HashMap<ClientKey, ClientSlot>,
    /// Deadlines of lingering transactions, earliest first (see the module's doc).
    server_expiries: VecDeque<(Instant, ServerKey)>,
    client_expiries: VecDeque<(Instant, ClientKey)>,
    lingering: usize,
    /// Live and lingering transactions per remote peer, so that a transport error for a
    /// peer we have nothing with (the common case under an ICMP flood) costs one
    /// lookup, not a scan.
    peers: HashMap<Peer, usize>,
    out: Outputs,
    /// What was sent and received, by method and class, for the metrics endpoint.
    counters: Arc<SipCounters>,
}

/// Where a server key leads.
#[derive(Debug)]
enum ServerSlot {
    Live(TxId),
    /// Completed over UDP: each retransmitted request gets `response` again until
    /// `until` (Timer J).
    Lingering {
        response: Bytes,
        reply_to: Peer,
        until: Instant,
    },
}

/// Where a client key leads.
#[derive(Debug)]
enum ClientSlot {
    Live(TxId),
    /// Completed over UDP: retransmitted final responses are absorbed until `until`
    /// (Timer K).
    Lingering {
        destination: Peer,
        until: Instant,
    },
}

impl ServerSlot {
    fn live(&self) -> Option<TxId> {
        match self {
            ServerSlot::Live(id) => Some(*id),
            ServerSlot::Lingering { .. } => None,
        }
    }
}

impl ClientSlot {
    fn live(&self) -> Option<TxId> {
        match self {
            ClientSlot::Live(id) => Some(*id),
            ClientSlot::Lingering { .. } => None,
        }
    }
}

#[derive(Debug)]
struct Tx {
    machine: Machine,
    armed: Armed,
    /// Where this transaction sends: the request's destination, or the responses'.
    peer: Peer,
}

/// Named after the four machines of §17.
#[derive(Debug)]
#[expect(
    clippy::enum_variant_names,
    reason = "the RFC's names for the four machines"
)]
enum Machine {
    ServerInvite(ServerKey, ServerInvite),
    ServerNonInvite(ServerKey, ServerNonInvite),
    ClientInvite(ClientKey, ClientInvite),
    ClientNonInvite(ClientKey, ClientNonInvite),
}

impl Machine {
    fn key(&self) -> TransactionKey {
        match self {
            Machine::ServerInvite(k, _) | Machine::ServerNonInvite(k, _) => {
                TransactionKey::Server(k.clone())
            }
            Machine::ClientInvite(k, _) | Machine::ClientNonInvite(k, _) => {
                TransactionKey::Client(k.clone())
            }
        }
    }

    fn is_terminated(&self) -> bool {
        match self {
            Machine::ServerInvite(_, m) => m.is_terminated(),
            Machine::ServerNonInvite(_, m) => m.is_terminated(),
            Machine::ClientInvite(_, m) => m.is_terminated(),
            Machine::ClientNonInvite(_, m) => m.is_terminated(),
        }
    }
}

impl Tx {
    /// The machine and what it may act on, borrowed apart.
    fn split<'a>(
        &'a mut self,
        now: Instant,
        id: TxId,
        config: &'a TimerConfig,
        out: &'a mut Outputs,
    ) -> (&'a mut Machine, Env<'a>) {
        (
            &mut self.machine,
            Env {
                now,
                config,
                id,
                armed: &mut self.armed,
                out,
            },
        )
    }
}

/// What kind of server-side handling a request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestKind {
    Ack,
    Cancel,
    Invite,
    NonInvite,
}

impl TransactionLayer {
    /// A layer with the given timer values. T1 below 1 ms is raised to 1 ms and T2 to at
    /// least T1: a zero retransmission interval would fire forever at one instant.
    pub fn new(timers: TimerConfig) -> Self {
        TransactionLayer {
            config: timers.sanitized(),
            slab: Slab::default(),
            servers: HashMap::new(),
            clients: HashMap::new(),
            server_expiries: VecDeque::new(),
            client_expiries: VecDeque::new(),
            lingering: 0,
            peers: HashMap::new(),
            out: Outputs::default(),
            counters: Arc::default(),
        }
    }

    /// Counts this layer's requests sent, responses received and responses sent
    /// (first transmissions, not retransmissions) into `counters`, shared with whoever
    /// reports them.
    pub fn set_counters(&mut self, counters: Arc<SipCounters>) {
        self.counters = counters;
    }

    /// A message arrived from `source` at `now`. The caller has parsed and validated it
    /// (`sihai_sip::validate`); anything still unusable for matching (no Via, no CSeq) is
    /// dropped here, or passed up as stray if it is a response.
    pub fn handle_received(&mut self, now: Instant, msg: Message, source: Peer) {
        if msg.is_request() {
            self.receive_request(now, msg, source);
        } else {
            self.receive_response(now, msg, source);
        }
        self.prune_timers();
    }

    /// The TU answers the request of server transaction `key`. Refused once the
    /// transaction sent a final response, or when it is gone (terminated, timed out).
    pub fn respond(
        &mut self,
        now: Instant,
        key: &ServerKey,
        response: Message,
    ) -> Result<(), TransactionError> {
        let Some(status) = response.status() else {
            return Err(TransactionError::NotAResponse);
        };
        let id = match self.servers.get(key) {
            Some(ServerSlot::Live(id)) => *id,
            Some(ServerSlot::Lingering { .. }) => {
                return Err(TransactionError::InvalidState {
                    key: Box::new(key.clone()),
                    status,
                    state: "Completed",
                });
            }
            None => return Err(TransactionError::NoSuchTransaction(Box::new(key.clone()))),
        };
        let result = self.tu_response(now, id, response);
        self.reap(now, id);
        self.prune_timers();
        result.map_err(|state| TransactionError::InvalidState {
            key: Box::new(key.clone()),
            status,
            state,
        })
    }

    /// The TU starts a client transaction: `request` is sent to `destination` now and
    /// retransmitted as its transport requires. The request must carry its own top Via
    /// with an RFC 3261 branch (the TU generates branches) and a CSeq naming its method.
    /// A CANCEL also starts the §9.1 guard on the INVITE it cancels. ACK is refused: it
    /// has no transaction (the layer sends the ACK for non-2xx itself).
    pub fn send_request(
        &mut self,
        now: Instant,
        request: Message,
        destination: Peer,
    ) -> Result<ClientKey, TransactionError> {
        let (key, kind) = {
            let method = request.method().ok_or(TransactionError::NotARequest)?;
            if method == Method::Ack {
                return Err(TransactionError::AckIsNotATransaction);
            }
            let via = request.top_via().map_err(TransactionError::Via)?;
            let Some(branch) = via.branch().filter(|_| via.has_rfc3261_branch()) else {
                return Err(TransactionError::NotRfc3261Branch {
                    branch: via.branch().map(str::to_owned),
                });
            };
            let cseq = request.cseq().map_err(TransactionError::CSeq)?;
            if cseq.method != method {
                return Err(TransactionError::CSeqMismatch {
                    method: method.as_str().to_owned(),
                    cseq: cseq.method.as_str().to_owned(),
                });
            }
            let kind = match method {
                Method::Invite => RequestKind::Invite,
                Method::Cancel => RequestKind::Cancel,
                _ => RequestKind::NonInvite,
            };
            (ClientKey::new(&request, branch, method), kind)
        };
        if self.clients.contains_key(&key) {
            return Err(TransactionError::Duplicate(Box::new(key)));
        }
        let machine = if kind == RequestKind::Invite {
            Machine::ClientInvite(key.clone(), ClientInvite::new(request, destination))
        } else {
            Machine::ClientNonInvite(key.clone(), ClientNonInvite::new(request, destination))
        };
        let id = self.insert(machine, destination);
        self.start_client(now, id);
        if kind == RequestKind::Cancel
            && let Some(invite) = self
                .clients
                .get(&key.invite_of_cancel())
                .and_then(ClientSlot::live)
        {
            self.cancel_sent(now, invite);
        }
        self.counters.request_sent(key.method());
        self.reap(now, id);
        self.prune_timers();
        Ok(key)
    }

    /// Fires every timer due at or before `now`, earliest first.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire_lingering(now);
        while let Some((at, id, timer, head)) = self.out.timers.peek() {
            if at > now {
                break;
            }
            self.out.timers.pop(head);
            let Some(tx) = self.slab.get_mut(id) else {
                continue;
            };
            if tx.armed.get(timer) != Some(at) {
                continue;
            }
            tx.armed.clear(timer);
            let (machine, env) = tx.split(now, id, &self.config, &mut self.out);
            match machine {
                Machine::ServerInvite(key, m) => m.on_timer(&mut Ctx { key, env }, timer),
                // Its only timer, J, is run by the layer (lingering).
                Machine::ServerNonInvite(..) => {}
                Machine::ClientInvite(key, m) => m.on_timer(&mut Ctx { key, env }, timer),
                Machine::ClientNonInvite(key, m) => m.on_timer(&mut Ctx { key, env }, timer),
            }
            self.reap(now, id);
        }
        self.prune_timers();
    }

    /// The transport could not deliver to `destination` (§17.1.4, §17.2.4; e.g. a TCP
    /// connect failed, or ICMP said unreachable): every transaction sending there
    /// reports [`Event::TransportError`] and terminates. `now` is unused: failure ends
    /// a transaction whatever its timers say.
    pub fn handle_transport_error(&mut self, _now: Instant, destination: Peer) {
        if !self.peers.contains_key(&destination) {
            return;
        }
        let failed: Vec<TxId> = self
            .slab
            .iter()
            .filter(|(_, tx)| tx.peer == destination)
            .map(|(id, _)| id)
            .collect();
        for id in failed {
            if let Some(tx) = self.slab.get(id) {
                let key = tx.machine.key();
                debug!(%key, %destination, "transport error");
                self.out.events.push_back(Event::TransportError { key });
            }
            self.remove(id);
        }
        if self.peers.contains_key(&destination) {
            self.lingering_transport_error(destination);
        }
        self.prune_timers();
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.events.pop_front()
    }

    /// The earliest instant at which [`TransactionLayer::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.out.timers.peek().map(|(at, ..)| at),
            self.server_expiries.front().map(|(at, _)| *at),
            self.client_expiries.front().map(|(at, _)| *at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Transactions not yet terminated, lingering ones included.
    pub fn len(&self) -> usize {
        self.slab.live + self.lingering
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `request` belongs to a server transaction held here: a retransmission
    /// (answered from the transaction, live or lingering), or the ACK of an INVITE's
    /// non-2xx final response. Lets a caller that sheds load spare what costs nothing
    /// new.
    pub fn matches_server_transaction(&self, request: &Message) -> bool {
        let Some(method) = request.method() else {
            return false;
        };
        if method == Method::Ack {
            return self.invite_for_ack(request).is_some();
        }
        let Ok(via) = request.top_via() else {
            return false;
        };
        ServerKey::new(request, &via, method, ToTag::AsRequest)
            .is_some_and(|key| self.servers.contains_key(&key))
    }

    fn receive_request(&mut self, now: Instant, request: Message, source: Peer) {
        let (kind, key, reply_to) = {
            let Some(method) = request.method() else {
                return;
            };
            let via = match request.top_via() {
                Ok(via) => via,
                Err(err) => {
                    debug!(%source, %err, "dropping request: no usable top Via");
                    return;
                }
            };
            let kind = match method {
                Method::Ack => RequestKind::Ack,
                Method::Cancel => RequestKind::Cancel,
                Method::Invite => RequestKind::Invite,
                _ => RequestKind::NonInvite,
            };
            if kind == RequestKind::Ack {
                // Matched against INVITEs below; an ACK never has a key of its own.
                (kind, None, source)
            } else {
                let Some(key) = ServerKey::new(&request, &via, method, ToTag::AsRequest) else {
                    debug!(%source, "dropping request: cannot identify its transaction (Call-ID, CSeq, From, To)");
                    return;
                };
                (kind, Some(key), via.response_target(source))
            }
        };
        let Some(key) = key else {
            self.receive_ack(now, request, source);
            return;
        };
        // A retransmission: answered from the transaction, never shown to the TU again.
        match self.servers.get(&key) {
            Some(ServerSlot::Live(id)) => {
                let id = *id;
                self.retransmission(now, id);
                self.reap(now, id);
                return;
            }
            Some(ServerSlot::Lingering {
                response, reply_to, ..
            }) => {
                self.out.transmits.push_back(Transmit {
                    destination: *reply_to,
                    payload: response.clone(),
                });
                return;
            }
            None => {}
        }
        if kind == RequestKind::Cancel {
            self.receive_cancel(now, request, key, reply_to);
            return;
        }
        let machine = if kind == RequestKind::Invite {
            Machine::ServerInvite(key.clone(), ServerInvite::new(reply_to))
        } else {
            Machine::ServerNonInvite(key.clone(), ServerNonInvite::new(reply_to))
        };
        self.insert(machine, reply_to);
        self.out.events.push_back(Event::Request {
            key,
            request,
            source,
        });
    }

    /// An ACK either belongs to an INVITE server transaction that sent a non-2xx final
    /// (absorbed there) or to a 2xx and so to the TU's dialog.
    fn receive_ack(&mut self, now: Instant, request: Message, source: Peer) {
        let Some(id) = self.invite_for_ack(&request) else {
            self.out
                .events
                .push_back(Event::StrayAck { request, source });
            return;
        };
        let Some(tx) = self.slab.get_mut(id) else {
            return;
        };
        let (machine, env) = tx.split(now, id, &self.config, &mut self.out);
        if let Machine::ServerInvite(key, m) = machine
            && !m.on_ack(&mut Ctx { key, env })
        {
            debug!(%source, %key, "dropping ACK for an INVITE with no final response yet");
        }
        self.reap(now, id);
    }

    fn invite_for_ack(&self, ack: &Message) -> Option<TxId> {
        let via = ack.top_via().ok()?;
        let key = ServerKey::new(ack, &via, Method::Invite, ToTag::AsRequest)?;
        if !key.is_legacy() {
            return self.servers.get(&key).and_then(ServerSlot::live);
        }
        // RFC 2543 (§17.2.3): everything but the To tag as for the INVITE, and the To
        // tag that of our final response. An out-of-dialog INVITE had no To tag.
        let ack_tag = ack.to().ok().and_then(|to| to.tag());
        let out_of_dialog = ServerKey::new(ack, &via, Method::Invite, ToTag::Absent)?;
        [out_of_dialog, key].iter().filter_map(|k| self.servers.get(k).and_then(ServerSlot::live)).find(|&id| {
            matches!(
                self.slab.get(id).map(|tx| &tx.machine),
                Some(Machine::ServerInvite(_, m)) if m.final_to_tag().is_some_and(|tag| tag == ack_tag)
            )
        })
    }

    /// §9.2: the CANCEL gets its own non-INVITE server transaction, answered here with
    /// `200` if it matches an INVITE server transaction and `481` if not; the TU hears
    /// of it only when that INVITE still waits for its final response.
    fn receive_cancel(&mut self, now: Instant, cancel: Message, key: ServerKey, reply_to: Peer) {
        let invite_key = key.as_invite();
        let invite = self
            .servers
            .get(&invite_key)
            .and_then(ServerSlot::live)
            .and_then(|id| match self.slab.get(id).map(|tx| &tx.machine) {
                Some(Machine::ServerInvite(_, m)) => Some((
                    m.to_tag().map(str::to_owned),
                    m.state() == server_invite::State::Proceeding,
                )),
                _ => None,
            });
        let (status, tag, pending) = match invite {
            // Same To tag as the INVITE's responses, when the TU already chose one.
            Some((tag, pending)) => (200, tag, pending),
            None => (481, None, false),
        };
        let tag = tag.unwrap_or_else(new_tag);
        let response =
            MessageBuilder::response_to(&cancel, status, reason_phrase(status), Some(&tag)).build();
        let id = self.insert(
            Machine::ServerNonInvite(key, ServerNonInvite::new(reply_to)),
            reply_to,
        );
        // A fresh transaction in Trying takes any response.
        let _ = self.tu_response(now, id, response);
        if pending {
            self.out
                .events
                .push_back(Event::Cancelled { invite: invite_key });
        }
        self.reap(now, id);
    }

    fn receive_response(&mut self, now: Instant, response: Message, source: Peer) {
        let slot = ClientKey::for_response(&response).map(|key| self.clients.get(&key));
        let id = match slot {
            Some(Some(ClientSlot::Live(id))) => *id,
            // A retransmitted final response; the TU has it already.
            Some(Some(ClientSlot::Lingering { .. })) => return,
            Some(None) | None => {
                self.out
                    .events
                    .push_back(Event::StrayResponse { response, source });
                return;
            }
        };
        let Some(tx) = self.slab.get_mut(id) else {
            return;
        };
        let status = response.status().unwrap_or(0);
        let (machine, env) = tx.split(now, id, &self.config, &mut self.out);
        match machine {
            Machine::ClientInvite(key, m) => {
                self.counters.reply_received(key.method(), status);
                m.on_response(&mut Ctx { key, env }, response);
            }
            Machine::ClientNonInvite(key, m) => {
                self.counters.reply_received(key.method(), status);
                m.on_response(&mut Ctx { key, env }, response);
            }
            Machine::ServerInvite(..) | Machine::ServerNonInvite(..) => {}
        }
        self.reap(now, id);
    }

    fn retransmission(&mut self, now: Instant, id: TxId) {
        let Some(tx) = self.slab.get_mut(id) else {
            return;
        };
        let (machine, env) = tx.split(now, id, &self.config, &mut self.out);
        match machine {
            Machine::ServerInvite(key, m) => m.on_retransmission(&mut Ctx { key, env }),
            Machine::ServerNonInvite(key, m) => m.on_retransmission(&mut Ctx { key, env }),
            Machine::ClientInvite(..) | Machine::ClientNonInvite(..) => {}
        }
    }

    /// Hands a response to a server machine; `Err` names the state that refused it.
    fn tu_response(
        &mut self,
        now: Instant,
        id: TxId,
        response: Message,
    ) -> Result<(), &'static str> {
        let Some(tx) = self.slab.get_mut(id) else {
            return Err("Terminated");
        };
        let status = response.status().unwrap_or(0);
        let (machine, env) = tx.split(now, id, &self.config, &mut self.out);
        let (method, sent) = match machine {
            Machine::ServerInvite(key, m) => (
                key.method(),
                m.on_tu_response(&mut Ctx { key, env }, response)
                    .map_err(|s| s.name()),
            ),
            Machine::ServerNonInvite(key, m) => (
                key.method(),
                m.on_tu_response(&mut Ctx { key, env }, response)
                    .map_err(|s| s.name()),
            ),
            Machine::ClientInvite(..) | Machine::ClientNonInvite(..) => {
                return Err("a client transaction");
            }
        };
        if sent.is_ok() {
            self.counters.reply_sent(method, status);
        }
        sent
    }

    fn start_client(&mut self, now: Instant, id: TxId) {
        let Some(tx) = self.slab.get_mut(id) else {
            return;
        };
        let (machine, env) = tx.split(now, id, &self.config, &mut self.out);
        match machine {
            Machine::ClientInvite(key, m) => m.start(&mut Ctx { key, env }),
            Machine::ClientNonInvite(key, m) => m.start(&mut Ctx { key, env }),
            Machine::ServerInvite(..) | Machine::ServerNonInvite(..) => {}
        }
    }

    fn cancel_sent(&mut self, now: Instant, id: TxId) {
        let Some(tx) = self.slab.get_mut(id) else {
            return;
        };
        let (machine, env) = tx.split(now, id, &self.config, &mut self.out);
        if let Machine::ClientInvite(key, m) = machine {
            m.on_cancel_sent(&mut Ctx { key, env });
        }
    }

    fn insert(&mut self, machine: Machine, peer: Peer) -> TxId {
        let key = machine.key();
        let id = self.slab.insert(Tx {
            machine,
            armed: Armed::default(),
            peer,
        });
        match key {
            TransactionKey::Server(k) => {
                self.servers.insert(k, ServerSlot::Live(id));
            }
            TransactionKey::Client(k) => {
                self.clients.insert(k, ClientSlot::Live(id));
            }
        }
        *self.peers.entry(peer).or_default() += 1;
        id
    }

    /// Removes the transaction if its machine reached Terminated, or moves it to the
    /// lingering form if all it has left is to wait out Timer J or K.
    fn reap(&mut self, now: Instant, id: TxId) {
        let Some(tx) = self.slab.get(id) else {
            return;
        };
        let lingers = match &tx.machine {
            m if m.is_terminated() => {
                self.remove(id);
                return;
            }
            Machine::ServerNonInvite(_, m) => m.is_completed(),
            Machine::ClientNonInvite(_, m) => m.is_completed(),
            Machine::ServerInvite(..) | Machine::ClientInvite(..) => false,
        };
        if lingers {
            self.linger(now, id);
        }
    }

    /// Moves a Completed non-INVITE transaction out of the slab into its compact form.
    /// Its peer count stays: it still sends (a server) and can still fail.
    fn linger(&mut self, now: Instant, id: TxId) {
        let non_invite = |tx: &Tx| {
            matches!(
                tx.machine,
                Machine::ServerNonInvite(..) | Machine::ClientNonInvite(..)
            )
        };
        if !self.slab.get(id).is_some_and(non_invite) {
            return;
        }
        let Some(Tx { machine, peer, .. }) = self.slab.remove(id) else {
            return;
        };
        match machine {
            Machine::ServerNonInvite(key, m) => {
                self.servers.remove(&key);
                let (Some(response), Some(until)) =
                    (m.into_last_response(), now.checked_add(self.config.t1x64()))
                else {
                    // Nothing to answer with, or a Timer J beyond time: nothing to wait for.
                    return self.end_unlingered(peer, key.into());
                };
                let key = key.detached();
                let slot = ServerSlot::Lingering {
                    response,
                    reply_to: peer,
                    until,
                };
                self.servers.insert(key.clone(), slot);
                self.server_expiries.push_back((until, key));
            }
            Machine::ClientNonInvite(key, _) => {
                self.clients.remove(&key);
                let Some(until) = now.checked_add(self.config.t4) else {
                    return self.end_unlingered(peer, key.into());
                };
                let key = key.detached();
                let slot = ClientSlot::Lingering {
                    destination: peer,
                    until,
                };
                self.clients.insert(key.clone(), slot);
                self.client_expiries.push_back((until, key));
            }
            // Excluded above, before the slab gave the transaction up.
            Machine::ServerInvite(..) | Machine::ClientInvite(..) => return,
        }
        self.lingering += 1;
    }

    /// A transaction taken out of the slab to linger that has nothing to linger for.
    fn end_unlingered(&mut self, peer: Peer, key: TransactionKey) {
        self.release_peer(peer);
        self.out.events.push_back(Event::Terminated { key });
    }

    /// Ends the lingering transactions whose Timer J or K is due.
    fn expire_lingering(&mut self, now: Instant) {
        let (events, peers) = (&mut self.out.events, &mut self.peers);
        let ended = expire(
            &mut self.server_expiries,
            &mut self.servers,
            now,
            events,
            peers,
        ) + expire(
            &mut self.client_expiries,
            &mut self.clients,
            now,
            events,
            peers,
        );
        self.lingering -= ended;
    }

    /// §17.1.4, §17.2.4 for lingering transactions: a scan, as for live ones, paid only
    /// when the failed peer has some.
    fn lingering_transport_error(&mut self, destination: Peer) {
        let servers = lingering_with(&self.servers, destination);
        let clients = lingering_with(&self.clients, destination);
        let keys = servers
            .into_iter()
            .map(|key| {
                self.servers.remove(&key);
                TransactionKey::Server(key)
            })
            .chain(clients.into_iter().map(|key| {
                self.clients.remove(&key);
                TransactionKey::Client(key)
            }))
            .collect::<Vec<_>>();
        for key in keys {
            debug!(%key, %destination, "transport error");
            self.lingering -= 1;
            self.release_peer(destination);
            self.out
                .events
                .push_back(Event::TransportError { key: key.clone() });
            self.out.events.push_back(Event::Terminated { key });
        }
    }

    fn release_peer(&mut self, peer: Peer) {
        release_peer(&mut self.peers, peer);
    }

    fn remove(&mut self, id: TxId) {
        let Some(tx) = self.slab.remove(id) else {
            return;
        };
        let key = tx.machine.key();
        match &key {
            TransactionKey::Server(k) => {
                if self.servers.get(k).and_then(ServerSlot::live) == Some(id) {
                    self.servers.remove(k);
                }
            }
            TransactionKey::Client(k) => {
                if self.clients.get(k).and_then(ClientSlot::live) == Some(id) {
                    self.clients.remove(k);
                }
            }
        }
        self.release_peer(tx.peer);
        self.out.events.push_back(Event::Terminated { key });
    }

    /// Pops stale entries off the top of the timer queue, so that `poll_timeout` is
    /// exact; and when stale entries outnumber live ones by far (many transactions
    /// ended early), sweeps them all at once.
    fn prune_timers(&mut self) {
        let slab = &self.slab;
        let live = |at: Instant, id: TxId, timer: Timer| {
            slab.get(id)
                .is_some_and(|tx| tx.armed.get(timer) == Some(at))
        };
        while let Some((at, id, timer, head)) = self.out.timers.peek() {
            if live(at, id, timer) {
                break;
            }
            self.out.timers.pop(head);
        }
        if self.out.timers.len() > 1024 && self.out.timers.len() > 8 * slab.live {
            self.out.timers.retain(live);
        }
    }
}

/// What [`expire`] needs of a map slot: whether it lingers, until when, with whom.
trait Lingering {
    fn lingering(&self) -> Option<(Instant, Peer)>;
}

impl Lingering for ServerSlot {
    fn lingering(&self) -> Option<(Instant, Peer)> {
        match self {
            ServerSlot::Lingering {
                until, reply_to, ..
            } => Some((*until, *reply_to)),
            ServerSlot::Live(_) => None,
        }
    }
}

impl Lingering for ClientSlot {
    fn lingering(&self) -> Option<(Instant, Peer)> {
        match self {
            ClientSlot::Lingering { until, destination } => Some((*until, *destination)),
            ClientSlot::Live(_) => None,
        }
    }
}

/// Pops the due deadlines off `queue` and ends their transactions in `slots`; returns
/// how many ended. A deadline whose slot holds another one (or nothing) belonged to a
/// transaction a transport error ended early.
fn expire<K, S>(
    queue: &mut VecDeque<(Instant, K)>,
    slots: &mut HashMap<K, S>,
    now: Instant,
    events: &mut VecDeque<Event>,
    peers: &mut HashMap<Peer, usize>,
) -> usize
where
    K: std::hash::Hash + Eq + Into<TransactionKey>,
    S: Lingering,
{
    let mut ended = 0;
    while queue.front().is_some_and(|(at, _)| *at <= now) {
        let Some((at, key)) = queue.pop_front() else {
            break;
        };
        if let Entry::Occupied(slot) = slots.entry(key)
            && let Some((until, peer)) = slot.get().lingering()
            && until == at
        {
            let (key, _) = slot.remove_entry();
            release_peer(peers, peer);
            events.push_back(Event::Terminated { key: key.into() });
            ended += 1;
        }
    }
    ended
}

/// The keys of the transactions in `slots` lingering with `peer`.
fn lingering_with<K: Clone, S: Lingering>(slots: &HashMap<K, S>, peer: Peer) -> Vec<K> {
    slots
        .iter()
        .filter(|(_, slot)| slot.lingering().is_some_and(|(_, p)| p == peer))
        .map(|(key, _)| key.clone())
        .collect()
}

fn release_peer(peers: &mut HashMap<Peer, usize>, peer: Peer) {
    if let Some(count) = peers.get_mut(&peer) {
        *count -= 1;
        if *count == 0 {
            peers.remove(&peer);
        }
    }
}

/// A To tag for the layer's own answers to CANCEL: 64 random bits (§19.3 asks for 32).
fn new_tag() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Slots reused through a free list; a generation per slot tells a timer whether the
/// transaction it was armed for is still the occupant.
#[derive(Debug, Default)]
struct Slab {
    slots: Vec<Slot>,
    free: Vec<usize>,
    live: usize,
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    tx: Option<Tx>,
}

impl Slab {
    fn insert(&mut self, tx: Tx) -> TxId {
        self.live += 1;
        match self.free.pop() {
            Some(index) => {
                let slot = &mut self.slots[index];
                slot.tx = Some(tx);
                TxId {
                    index,
                    generation: slot.generation,
                }
            }
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    tx: Some(tx),
                });
                TxId {
                    index: self.slots.len() - 1,
                    generation: 0,
                }
            }
        }
    }

    fn get(&self, id: TxId) -> Option<&Tx> {
        self.slots
            .get(id.index)
            .filter(|s| s.generation == id.generation)?
            .tx
            .as_ref()
    }

    fn get_mut(&mut self, id: TxId) -> Option<&mut Tx> {
        self.slots
            .get_mut(id.index)
            .filter(|s| s.generation == id.generation)?
            .tx
            .as_mut()
    }

    fn remove(&mut self, id: TxId) -> Option<Tx> {
        let slot = self
            .slots
            .get_mut(id.index)
            .filter(|s| s.generation == id.generation)?;
        let tx = slot.tx.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        self.live -= 1;
        Some(tx)
    }

    fn iter(&self) -> impl Iterator<Item = (TxId, &Tx)> {
        self.slots.iter().enumerate().filter_map(|(index, slot)| {
            slot.tx.as_ref().map(|tx| {
                (
                    TxId {
                        index,
                        generation: slot.generation,
                    },
                    tx,
                )
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use bytes::Bytes;
    use sihai_sip::Transport;

    fn options(i: usize) -> Message {
        let text = format!(
            "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bK{i}\r\n\
             From: <sip:c@d>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: {i}\r\nCSeq: 1 OPTIONS\r\n\r\n"
        );
        Message::parse(Bytes::from(text)).unwrap()
    }

    #[test]
    fn timers_of_transactions_that_ended_early_are_swept() {
        let mut layer = TransactionLayer::new(TimerConfig::default());
        let now = Instant::now();
        let udp = |a: &str| Peer::new(Transport::Udp, a.parse().unwrap());
        // A live transaction whose Timer E heads the queue, so that popping stale entries
        // off the top cannot reach the ones behind it.
        layer
            .send_request(now, options(0), udp("198.51.100.30:5060"))
            .unwrap();
        let failing = udp("198.51.100.20:5060");
        for i in 1..3000 {
            layer.send_request(now, options(i), failing).unwrap();
            // E and F armed; the transport fails at once and both go stale.
            layer.handle_transport_error(now, failing);
        }
        assert_eq!(layer.len(), 1);
        assert_eq!(layer.poll_timeout(), Some(now + Duration::from_millis(500)));
        assert!(
            layer.out.timers.len() <= 1024,
            "{} timers kept",
            layer.out.timers.len()
        );
        layer.handle_timeout(now + Duration::from_secs(40));
        assert_eq!(layer.len(), 0);
        assert_eq!(layer.out.timers.len(), 0);
    }
}

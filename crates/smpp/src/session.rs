//! The transmitter session: connect, bind, submit, keep the link alive, and start over
//! with a growing delay when any of it fails. The I/O edge opens and closes the socket
//! when told ([`Event::Connect`], [`Event::Close`]) and reports what happened; every
//! decision and every timer is here, on the caller's [`Instant`].

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::error::{PduError, SubmitError};
use crate::pdu::{self, Bind, Body, DATA_CODING_UCS2, Pdu, ShortMessage, esm_class, status};
use crate::rate::TokenBucket;
use crate::receipt::{DeliveryReceipt, parse_receipt};
use crate::text::split_ucs2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    pub system_id: String,
    pub password: String,
    pub system_type: String,
    /// TON/NPI of the ESME address in bind_transmitter (usually 0/0 with an empty range).
    pub addr_ton: u8,
    pub addr_npi: u8,
    pub address_range: String,
    /// The sender every SMS shows: the operator assigns it (a 106 short code, say).
    pub source_addr: String,
    pub source_addr_ton: u8,
    pub source_addr_npi: u8,
    pub dest_addr_ton: u8,
    pub dest_addr_npi: u8,
    /// Ask the SMSC for delivery receipts (registered_delivery = 1).
    pub request_receipts: bool,
    pub enquire_link_interval: Duration,
    /// How long a connect, bind, submit_sm, enquire_link or unbind may wait for its
    /// answer.
    pub response_timeout: Duration,
    pub reconnect_initial: Duration,
    pub reconnect_max: Duration,
    /// submit_sm PDUs per second (each part of a long message counts); 0 = unlimited.
    pub messages_per_second: u32,
    /// submit_sm PDUs awaiting their response at once (the SMPP window).
    pub max_in_flight: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            system_id: String::new(),
            password: String::new(),
            system_type: String::new(),
            addr_ton: 0,
            addr_npi: 0,
            address_range: String::new(),
            source_addr: String::new(),
            source_addr_ton: 0,
            source_addr_npi: 0,
            // International, E.164: 8613800138000.
            dest_addr_ton: 1,
            dest_addr_npi: 1,
            request_receipts: true,
            enquire_link_interval: Duration::from_secs(30),
            response_timeout: Duration::from_secs(10),
            reconnect_initial: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
            messages_per_second: 10,
            max_in_flight: 10,
        }
    }
}

/// The caller's id for one SMS (the outbox row), carried through to its outcome.
pub type MessageKey = u64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingSms {
    pub key: MessageKey,
    pub destination: String,
    pub text: String,
}

/// Why a message was not confirmed. `Timeout` and `ConnectionLost` leave it unknown
/// whether the SMSC took it; `NotSent` means no part of it left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitFailure {
    Rejected { status: u32 },
    Timeout,
    ConnectionLost,
    NotSent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    ConnectTimeout,
    BindRejected {
        status: u32,
    },
    BindTimeout,
    EnquireLinkTimeout,
    /// The SMSC sent unbind; it was answered.
    PeerUnbound,
    /// The byte stream cannot be cut into PDUs any more.
    MalformedStream(PduError),
    /// [`Session::unbind`] finished (or gave up waiting for unbind_resp).
    Unbound,
    /// The edge connected when no connection was wanted.
    NotWanted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Open a TCP connection to the SMSC, then call [`Session::handle_connected`] or
    /// [`Session::handle_disconnected`].
    Connect,
    /// Close the connection, after writing what [`Session::poll_transmit`] still gives
    /// (an unbind_resp, say). Unless the session was unbound on request, it asks for
    /// [`Event::Connect`] again after its backoff.
    Close {
        reason: CloseReason,
    },
    Bound {
        smsc_system_id: String,
    },
    /// Every part of the message was accepted; the SMSC's ids, one per part in order.
    Submitted {
        key: MessageKey,
        message_ids: Vec<String>,
    },
    SubmitFailed {
        key: MessageKey,
        failure: SubmitFailure,
    },
    /// A delivery receipt, already answered with deliver_sm_resp.
    Receipt(DeliveryReceipt),
    /// A PDU that could not be read; the session answered or ignored it and goes on.
    ProtocolError(PduError),
}

/// Where the session is, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    WaitingToConnect,
    Connecting,
    Binding,
    Bound,
    Unbinding,
    Closed,
}

#[derive(Debug)]
enum State {
    WaitingToConnect { at: Instant },
    Connecting { deadline: Instant },
    Binding { sequence: u32, deadline: Instant },
    Bound,
    Unbinding { deadline: Instant },
    Closed,
}

#[derive(Debug)]
struct QueuedPart {
    key: MessageKey,
    /// Encoded with sequence number 0; the real one is written in when it is sent.
    pdu: Vec<u8>,
}

#[derive(Debug)]
struct InFlight {
    key: MessageKey,
    part: usize,
    deadline: Instant,
}

#[derive(Debug)]
struct Progress {
    message_ids: Vec<Option<String>>,
}

pub struct Session {
    config: SessionConfig,
    state: State,
    backoff: Duration,
    next_sequence: u32,
    next_reference: u8,
    received: Vec<u8>,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    queue: VecDeque<QueuedPart>,
    in_flight: HashMap<u32, InFlight>,
    progress: HashMap<MessageKey, Progress>,
    enquire_link_due: Instant,
    enquire_link_pending: Option<(u32, Instant)>,
    bucket: TokenBucket,
    rate_wake: Option<Instant>,
}

impl Session {
    /// A session that asks to connect at once (the first [`Session::poll_event`] after
    /// [`Session::handle_timeout`] at `now`).
    pub fn new(config: SessionConfig, now: Instant) -> Session {
        let bucket = TokenBucket::new(config.messages_per_second, now);
        Session {
            backoff: config.reconnect_initial,
            state: State::WaitingToConnect { at: now },
            next_sequence: 1,
            next_reference: 0,
            received: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            queue: VecDeque::new(),
            in_flight: HashMap::new(),
            progress: HashMap::new(),
            enquire_link_due: now,
            enquire_link_pending: None,
            bucket,
            rate_wake: None,
            config,
        }
    }

    pub fn state(&self) -> SessionState {
        match self.state {
            State::WaitingToConnect { .. } => SessionState::WaitingToConnect,
            State::Connecting { .. } => SessionState::Connecting,
            State::Binding { .. } => SessionState::Binding,
            State::Bound => SessionState::Bound,
            State::Unbinding { .. } => SessionState::Unbinding,
            State::Closed => SessionState::Closed,
        }
    }

    /// Messages accepted by [`Session::submit`] and not yet confirmed or failed.
    pub fn pending_messages(&self) -> usize {
        self.progress.len()
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next instant [`Session::handle_timeout`] must be called at.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let state_deadline = match self.state {
            State::WaitingToConnect { at } => Some(at),
            State::Connecting { deadline }
            | State::Binding { deadline, .. }
            | State::Unbinding { deadline } => Some(deadline),
            State::Bound => Some(match self.enquire_link_pending {
                Some((_, deadline)) => deadline,
                None => self.enquire_link_due,
            }),
            State::Closed => None,
        };
        let submit_deadline = self.in_flight.values().map(|part| part.deadline).min();
        [state_deadline, submit_deadline, self.rate_wake]
            .into_iter()
            .flatten()
            .min()
    }

    /// Queues an SMS; it is sent, split into parts if long, as soon as the session is
    /// bound and the rate limit and window allow. Its outcome comes as
    /// [`Event::Submitted`] or [`Event::SubmitFailed`].
    pub fn submit(&mut self, sms: OutgoingSms, now: Instant) -> Result<(), SubmitError> {
        if matches!(self.state, State::Closed | State::Unbinding { .. }) {
            return Err(SubmitError::Closed);
        }
        if self.progress.contains_key(&sms.key) {
            return Err(SubmitError::DuplicateKey(sms.key));
        }
        let reference = self.next_reference;
        let parts = split_ucs2(&sms.text, reference)?;
        let mut encoded = Vec::with_capacity(parts.len());
        for part in &parts {
            let message = ShortMessage {
                source_addr_ton: self.config.source_addr_ton,
                source_addr_npi: self.config.source_addr_npi,
                source_addr: self.config.source_addr.clone(),
                dest_addr_ton: self.config.dest_addr_ton,
                dest_addr_npi: self.config.dest_addr_npi,
                destination_addr: sms.destination.clone(),
                esm_class: if part.has_udh { esm_class::UDHI } else { 0 },
                registered_delivery: u8::from(self.config.request_receipts),
                data_coding: DATA_CODING_UCS2,
                short_message: part.short_message.clone(),
                ..ShortMessage::default()
            };
            encoded.push(Pdu::new(0, Body::SubmitSm(message)).encode()?);
        }
        if parts.len() > 1 {
            self.next_reference = self.next_reference.wrapping_add(1);
        }
        self.progress.insert(
            sms.key,
            Progress {
                message_ids: vec![None; encoded.len()],
            },
        );
        self.queue.extend(
            encoded
                .into_iter()
                .map(|pdu| QueuedPart { key: sms.key, pdu }),
        );
        self.pump(now);
        Ok(())
    }

    /// The connection the last [`Event::Connect`] asked for is open.
    pub fn handle_connected(&mut self, now: Instant) {
        if !matches!(self.state, State::Connecting { .. }) {
            self.events.push_back(Event::Close {
                reason: CloseReason::NotWanted,
            });
            return;
        }
        let sequence = self.take_sequence();
        let bind = Bind {
            system_id: self.config.system_id.clone(),
            password: self.config.password.clone(),
            system_type: self.config.system_type.clone(),
            interface_version: 0x34,
            addr_ton: self.config.addr_ton,
            addr_npi: self.config.addr_npi,
            address_range: self.config.address_range.clone(),
        };
        match Pdu::new(sequence, Body::BindTransmitter(bind)).encode() {
            Ok(bytes) => {
                self.transmits.push_back(bytes);
                self.state = State::Binding {
                    sequence,
                    deadline: now + self.config.response_timeout,
                };
            }
            // Credentials too long for their fields: no SMSC can accept them, so say
            // why and retry on the backoff (a configuration reload may fix them).
            Err(error) => {
                self.events.push_back(Event::ProtocolError(error.clone()));
                self.lose_link(now, Some(CloseReason::MalformedStream(error)));
            }
        }
    }

    /// The connection failed to open, or closed (by the peer or an I/O error).
    pub fn handle_disconnected(&mut self, now: Instant) {
        match self.state {
            State::WaitingToConnect { .. } | State::Closed => {}
            State::Unbinding { .. } => self.close_for_good(None),
            _ => self.lose_link(now, None),
        }
    }

    /// Bytes read from the connection.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        if !self.is_connected() {
            return;
        }
        self.received.extend_from_slice(bytes);
        loop {
            let length = match pdu::frame_length(&self.received) {
                Ok(Some(length)) => length,
                Ok(None) => break,
                Err(error) => {
                    self.lose_link(now, Some(CloseReason::MalformedStream(error)));
                    return;
                }
            };
            if self.received.len() < length {
                break;
            }
            let frame: Vec<u8> = self.received.drain(..length).collect();
            self.handle_frame(&frame, now);
            if !self.is_connected() {
                return;
            }
        }
        self.pump(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::WaitingToConnect { at } if at <= now => {
                // Whatever the last connection did not get to write is stale now.
                self.transmits.clear();
                self.state = State::Connecting {
                    deadline: now + self.config.response_timeout,
                };
                self.events.push_back(Event::Connect);
            }
            State::Connecting { deadline } if deadline <= now => {
                self.lose_link(now, Some(CloseReason::ConnectTimeout));
            }
            State::Binding { deadline, .. } if deadline <= now => {
                self.lose_link(now, Some(CloseReason::BindTimeout));
            }
            State::Unbinding { deadline } if deadline <= now => {
                self.close_for_good(Some(CloseReason::Unbound));
            }
            State::Bound => match self.enquire_link_pending {
                Some((_, deadline)) if deadline <= now => {
                    self.lose_link(now, Some(CloseReason::EnquireLinkTimeout));
                }
                None if self.enquire_link_due <= now => {
                    let sequence = self.take_sequence();
                    self.send(Pdu::new(sequence, Body::EnquireLink));
                    self.enquire_link_pending =
                        Some((sequence, now + self.config.response_timeout));
                    self.enquire_link_due = now + self.config.enquire_link_interval;
                }
                _ => {}
            },
            _ => {}
        }
        let expired: Vec<u32> = self
            .in_flight
            .iter()
            .filter(|(_, part)| part.deadline <= now)
            .map(|(sequence, _)| *sequence)
            .collect();
        for sequence in expired {
            if let Some(part) = self.in_flight.remove(&sequence) {
                self.fail_message(part.key, SubmitFailure::Timeout);
            }
        }
        self.pump(now);
    }

    /// Unbinds and closes for good: the last step of a shutdown. Messages not yet sent
    /// fail with [`SubmitFailure::NotSent`].
    pub fn unbind(&mut self, now: Instant) {
        match self.state {
            State::Bound => {
                let sequence = self.take_sequence();
                self.send(Pdu::new(sequence, Body::Unbind));
                self.state = State::Unbinding {
                    deadline: now + self.config.response_timeout,
                };
                self.fail_queued();
            }
            State::Connecting { .. } | State::Binding { .. } => {
                self.close_for_good(Some(CloseReason::Unbound))
            }
            State::WaitingToConnect { .. } => self.close_for_good(None),
            State::Unbinding { .. } | State::Closed => {}
        }
    }

    fn is_connected(&self) -> bool {
        matches!(
            self.state,
            State::Binding { .. } | State::Bound | State::Unbinding { .. }
        )
    }

    fn take_sequence(&mut self) -> u32 {
        let sequence = self.next_sequence;
        // §5.1.4: 0x00000001 to 0x7FFFFFFF, then wrap.
        self.next_sequence = if sequence >= 0x7FFF_FFFF {
            1
        } else {
            sequence + 1
        };
        sequence
    }

    fn send(&mut self, pdu: Pdu) {
        match pdu.encode() {
            Ok(bytes) => self.transmits.push_back(bytes),
            // Only the session's own fixed-size PDUs come here, which always fit.
            Err(error) => self.events.push_back(Event::ProtocolError(error)),
        }
    }

    fn respond(&mut self, sequence: u32, command_status: u32, body: Body) {
        self.send(Pdu {
            command_status,
            sequence_number: sequence,
            body,
        });
    }

    fn handle_frame(&mut self, frame: &[u8], now: Instant) {
        let pdu = match Pdu::decode(frame) {
            Ok(pdu) => pdu,
            Err(error) => {
                // A request we cannot read is refused (§3.3, generic_nack); a response we
                // cannot read is dropped and its request times out.
                if let Some((command_id, sequence)) = pdu::peek_header(frame)
                    && command_id & 0x8000_0000 == 0
                {
                    let nack_status = match error {
                        PduError::UnknownCommand { .. } => status::ESME_RINVCMDID,
                        _ => status::ESME_RINVCMDLEN,
                    };
                    self.respond(sequence, nack_status, Body::GenericNack);
                }
                self.events.push_back(Event::ProtocolError(error));
                return;
            }
        };
        let sequence = pdu.sequence_number;
        match pdu.body {
            Body::EnquireLink => self.respond(sequence, status::ESME_ROK, Body::EnquireLinkResp),
            Body::DeliverSm(message) => {
                self.respond(sequence, status::ESME_ROK, Body::DeliverSmResp);
                if let Some(receipt) = parse_receipt(&message) {
                    self.events.push_back(Event::Receipt(receipt));
                }
            }
            Body::Unbind => {
                self.respond(sequence, status::ESME_ROK, Body::UnbindResp);
                if matches!(self.state, State::Unbinding { .. }) {
                    self.close_for_good(Some(CloseReason::Unbound));
                } else {
                    self.lose_link(now, Some(CloseReason::PeerUnbound));
                }
            }
            Body::UnbindResp => {
                if matches!(self.state, State::Unbinding { .. }) {
                    self.close_for_good(Some(CloseReason::Unbound));
                }
            }
            Body::BindTransmitterResp { system_id, .. } => {
                self.handle_bind_response(sequence, pdu.command_status, system_id, now)
            }
            Body::SubmitSmResp { message_id } => {
                self.handle_submit_response(sequence, pdu.command_status, message_id)
            }
            Body::EnquireLinkResp => {
                if self
                    .enquire_link_pending
                    .is_some_and(|(s, _)| s == sequence)
                {
                    self.enquire_link_pending = None;
                }
            }
            Body::GenericNack => {
                let nack_status = if pdu.command_status == status::ESME_ROK {
                    status::ESME_RSYSERR
                } else {
                    pdu.command_status
                };
                if matches!(self.state, State::Binding { sequence: s, .. } if s == sequence) {
                    self.handle_bind_response(sequence, nack_status, String::new(), now);
                } else if self
                    .enquire_link_pending
                    .is_some_and(|(s, _)| s == sequence)
                {
                    // The SMSC answered, so the link is alive even if it dislikes us.
                    self.enquire_link_pending = None;
                } else {
                    self.handle_submit_response(sequence, nack_status, String::new());
                }
            }
            // Requests an SMSC has no business sending to a transmitter.
            Body::BindTransmitter(_) | Body::SubmitSm(_) => {
                self.respond(sequence, status::ESME_RINVCMDID, Body::GenericNack)
            }
            Body::DeliverSmResp => {}
        }
    }

    fn handle_bind_response(
        &mut self,
        sequence: u32,
        command_status: u32,
        smsc_system_id: String,
        now: Instant,
    ) {
        let State::Binding {
            sequence: expected, ..
        } = self.state
        else {
            return;
        };
        if sequence != expected {
            return;
        }
        if command_status != status::ESME_ROK {
            self.lose_link(
                now,
                Some(CloseReason::BindRejected {
                    status: command_status,
                }),
            );
            return;
        }
        self.state = State::Bound;
        self.backoff = self.config.reconnect_initial;
        self.enquire_link_due = now + self.config.enquire_link_interval;
        self.enquire_link_pending = None;
        self.events.push_back(Event::Bound { smsc_system_id });
    }

    fn handle_submit_response(&mut self, sequence: u32, command_status: u32, message_id: String) {
        let Some(part) = self.in_flight.remove(&sequence) else {
            return;
        };
        if command_status != status::ESME_ROK {
            self.fail_message(
                part.key,
                SubmitFailure::Rejected {
                    status: command_status,
                },
            );
            return;
        }
        let Some(progress) = self.progress.get_mut(&part.key) else {
            return;
        };
        if let Some(slot) = progress.message_ids.get_mut(part.part) {
            *slot = Some(message_id);
        }
        if progress.message_ids.iter().all(Option::is_some) {
            let message_ids = progress.message_ids.iter().flatten().cloned().collect();
            self.progress.remove(&part.key);
            self.events.push_back(Event::Submitted {
                key: part.key,
                message_ids,
            });
        }
    }

    /// Reports the message failed once and forgets its other parts: queued ones are not
    /// sent, and responses to in-flight ones are ignored.
    fn fail_message(&mut self, key: MessageKey, failure: SubmitFailure) {
        if self.progress.remove(&key).is_none() {
            return;
        }
        self.queue.retain(|part| part.key != key);
        self.in_flight.retain(|_, part| part.key != key);
        self.events.push_back(Event::SubmitFailed { key, failure });
    }

    fn fail_queued(&mut self) {
        let keys: Vec<MessageKey> = self.queue.iter().map(|part| part.key).collect();
        for key in keys {
            if self.in_flight.values().any(|part| part.key == key) {
                // Part of it is out: its outcome is unknown, not "not sent".
                self.fail_message(key, SubmitFailure::ConnectionLost);
            } else {
                self.fail_message(key, SubmitFailure::NotSent);
            }
        }
    }

    /// The link is gone: in-flight messages have unknown outcomes; queued ones wait for
    /// the next bind. Reconnects after the backoff, which doubles up to its maximum.
    fn lose_link(&mut self, now: Instant, reason: Option<CloseReason>) {
        if let Some(reason) = reason {
            self.events.push_back(Event::Close { reason });
        }
        self.reset_connection();
        self.state = State::WaitingToConnect {
            at: now + self.backoff,
        };
        self.backoff = self
            .backoff
            .saturating_mul(2)
            .min(self.config.reconnect_max);
    }

    fn close_for_good(&mut self, reason: Option<CloseReason>) {
        if let Some(reason) = reason {
            self.events.push_back(Event::Close { reason });
        }
        self.reset_connection();
        self.fail_queued();
        self.state = State::Closed;
    }

    fn reset_connection(&mut self) {
        self.received.clear();
        self.enquire_link_pending = None;
        self.rate_wake = None;
        let keys: Vec<MessageKey> = self.in_flight.values().map(|part| part.key).collect();
        for key in keys {
            self.fail_message(key, SubmitFailure::ConnectionLost);
        }
    }

    /// Sends queued parts while bound, within the window and the rate limit.
    fn pump(&mut self, now: Instant) {
        self.rate_wake = None;
        if !matches!(self.state, State::Bound) {
            return;
        }
        while !self.queue.is_empty() && self.in_flight.len() < self.config.max_in_flight.max(1) {
            if !self.bucket.try_take(now) {
                self.rate_wake = Some(self.bucket.next_token_at(now));
                return;
            }
            let Some(mut part) = self.queue.pop_front() else {
                return;
            };
            let sequence = self.take_sequence();
            if let Some(field) = part.pdu.get_mut(12..16) {
                field.copy_from_slice(&sequence.to_be_bytes());
            }
            let index = self
                .progress
                .get(&part.key)
                .map(|progress| {
                    progress.message_ids.len()
                        - self.queue.iter().filter(|q| q.key == part.key).count()
                        - 1
                })
                .unwrap_or_default();
            self.in_flight.insert(
                sequence,
                InFlight {
                    key: part.key,
                    part: index,
                    deadline: now + self.config.response_timeout,
                },
            );
            self.transmits.push_back(part.pdu);
        }
    }
}

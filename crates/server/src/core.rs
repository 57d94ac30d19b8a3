//! The endpoint's protocol core: bytes in, bytes out, no sockets and no clock of its own.
//!
//! Every received datagram or stream frame is parsed and validated here; a request that
//! fails validation is answered statelessly with the fault's status and a `Warning`
//! naming it (a transaction needs a sound Via and CSeq to exist at all); everything else
//! goes through the RFC 3261 transaction layer, which absorbs retransmissions, and the
//! [`responder`](crate::responder) decides what to answer. The async loop in `lib.rs`
//! only moves bytes and instants in and out, so this whole path is tested without I/O.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use sihai_sip::Via;
use sihai_sip::builder::MessageBuilder;
use sihai_sip::validate::{check_request, check_response, is_answerable};
use sihai_sip::{HeaderName, Message, Method, Peer};
use sihai_transaction::{Event, TimerConfig, TransactionLayer, Transmit};
use tracing::{debug, trace};

use crate::responder;
use crate::stats::Stats;

pub struct Core {
    transactions: TransactionLayer,
    /// Stateless answers to requests too broken for a transaction.
    outbox: VecDeque<Transmit>,
    user_agent: String,
    stats: Arc<Stats>,
}

impl Core {
    pub fn new(timers: TimerConfig, user_agent: String, stats: Arc<Stats>) -> Core {
        Core {
            transactions: TransactionLayer::new(timers),
            outbox: VecDeque::new(),
            user_agent,
            stats,
        }
    }

    pub fn handle_received(&mut self, now: Instant, data: Bytes, source: Peer) {
        Stats::bump(&self.stats.received);
        let msg = match Message::parse(data) {
            Ok(msg) => msg,
            Err(err) => {
                Stats::bump(&self.stats.unparsable);
                debug!(%source, %err, "dropping unparsable message");
                return;
            }
        };
        if msg.is_request() {
            if let Err(fault) = check_request(&msg) {
                Stats::bump(&self.stats.rejected_requests);
                debug!(%source, %fault, "rejecting malformed request");
                self.reject_statelessly(&msg, source, fault.status, &fault.reason);
                return;
            }
            Stats::bump(&self.stats.requests);
        } else if let Err(fault) = check_response(&msg) {
            Stats::bump(&self.stats.dropped_responses);
            debug!(%source, %fault, "dropping malformed response");
            return;
        }
        self.transactions.handle_received(now, msg, source);
        self.drain_events(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.transactions.handle_timeout(now);
        self.drain_events(now);
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox
            .pop_front()
            .or_else(|| self.transactions.poll_transmit())
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.transactions.poll_timeout()
    }

    /// Live transactions, for tests and metrics.
    pub fn transactions(&self) -> usize {
        self.transactions.len()
    }

    fn reject_statelessly(&mut self, request: &Message, source: Peer, status: u16, reason: &str) {
        // An ACK is never answered, and without a usable Via there is no way back.
        if request.method() == Some(Method::Ack) {
            return;
        }
        let Some(destination) = reply_target(request, source) else {
            return;
        };
        let warning = format!("399 sihai \"{}\"", reason.replace('"', "'"));
        let tag = new_tag();
        let response = MessageBuilder::response_to(request, status, reason, Some(&tag))
            .header(HeaderName::Warning, &warning)
            .header(HeaderName::Server, &self.user_agent)
            .build();
        self.outbox.push_back(Transmit {
            destination,
            payload: response.wire(),
        });
    }

    fn drain_events(&mut self, now: Instant) {
        while let Some(event) = self.transactions.poll_event() {
            match event {
                Event::Request {
                    key,
                    request,
                    source,
                } => {
                    trace!(%source, method = ?request.method(), "request");
                    let Some(answer) = responder::answer(&request) else {
                        continue;
                    };
                    if answer.trying {
                        let trying =
                            MessageBuilder::response_to(&request, 100, "Trying", None).build();
                        let _ = self.transactions.respond(now, &key, trying);
                    }
                    let response = answer.build(&request, &new_tag(), &self.user_agent);
                    if let Err(err) = self.transactions.respond(now, &key, response) {
                        debug!(%err, "could not respond");
                    }
                }
                Event::StrayAck { .. } => Stats::bump(&self.stats.stray_acks),
                Event::StrayResponse { source, .. } => {
                    Stats::bump(&self.stats.dropped_responses);
                    debug!(%source, "dropping response that matches no transaction");
                }
                Event::Timeout { .. } => Stats::bump(&self.stats.transaction_timeouts),
                Event::TransportError { .. } => Stats::bump(&self.stats.transport_errors),
                // INVITEs are answered at once, so a CANCEL always finds them final.
                Event::Cancelled { .. } | Event::Response { .. } | Event::Terminated { .. } => {}
            }
        }
    }
}

/// Where to send a stateless answer. A Via whose parameters are malformed (RFC 4475
/// §3.1.2.1) still names the sender in its sent-by, so the answer goes there without
/// the parameters (and so without `rport`).
fn reply_target(request: &Message, source: Peer) -> Option<Peer> {
    if is_answerable(request) {
        return request
            .top_via()
            .ok()
            .map(|via| via.response_target(source));
    }
    let top = request.vias().next()?;
    let without_params = top.split(';').next()?;
    Via::parse(without_params)
        .ok()
        .map(|via| via.response_target(source))
}

/// A To tag: 64 random bits in hex (RFC 3261 §19.3 asks for at least 32).
fn new_tag() -> String {
    format!("{:016x}", rand::random::<u64>())
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use sihai_sip::Transport;

    fn core() -> Core {
        Core::new(
            TimerConfig::default(),
            "sihai-test".into(),
            Arc::new(Stats::default()),
        )
    }

    fn udp_peer() -> Peer {
        Peer::new(Transport::Udp, "192.0.2.7:5062".parse().unwrap())
    }

    fn drain(core: &mut Core) -> Vec<Transmit> {
        std::iter::from_fn(|| core.poll_transmit()).collect()
    }

    fn status(t: &Transmit) -> u16 {
        Message::parse(t.payload.clone()).unwrap().status().unwrap()
    }

    const INVITE: &str = "INVITE sip:4001234567@127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bKcore1;rport\r\n\
        From: <sip:13800138000@192.0.2.7>;tag=a\r\nTo: <sip:4001234567@127.0.0.1>\r\n\
        Call-ID: core-1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn invite_is_answered_once_and_retransmissions_replay_the_final_response() {
        let mut core = core();
        let now = Instant::now();
        core.handle_received(now, Bytes::from_static(INVITE.as_bytes()), udp_peer());
        let sent = drain(&mut core);
        assert_eq!(sent.iter().map(status).collect::<Vec<_>>(), vec![100, 404]);
        assert!(
            sent.iter().all(|t| t.destination == udp_peer()),
            "rport: back to the source"
        );

        core.handle_received(
            now + Duration::from_millis(100),
            Bytes::from_static(INVITE.as_bytes()),
            udp_peer(),
        );
        let replay = drain(&mut core);
        assert_eq!(replay.len(), 1);
        assert_eq!(
            replay[0].payload, sent[1].payload,
            "the same 404, To tag included"
        );
        assert_eq!(core.stats.snapshot().requests, 2);
    }

    #[test]
    fn timer_g_retransmits_until_timer_h_then_the_transaction_ends() {
        let mut core = core();
        let start = Instant::now();
        core.handle_received(start, Bytes::from_static(INVITE.as_bytes()), udp_peer());
        drain(&mut core);
        let mut retransmissions = 0;
        while let Some(at) = core.poll_timeout() {
            core.handle_timeout(at);
            retransmissions += drain(&mut core).len();
            assert!(at <= start + Duration::from_secs(40), "timers must stop");
        }
        // G at 0.5, 1.5, 3.5, 7.5, then every T2 = 4 s (11.5 ... 31.5), until H at 32 s.
        assert_eq!(retransmissions, 10);
        assert_eq!(core.transactions(), 0);
        assert_eq!(core.stats.snapshot().transaction_timeouts, 1);
    }

    #[test]
    fn malformed_request_is_rejected_statelessly_with_a_warning() {
        let mut core = core();
        let broken = INVITE.replace("CSeq: 1 INVITE", "CSeq: 1 BYE");
        core.handle_received(Instant::now(), Bytes::from(broken), udp_peer());
        let sent = drain(&mut core);
        assert_eq!(sent.len(), 1);
        let response = Message::parse(sent[0].payload.clone()).unwrap();
        assert_eq!(response.status(), Some(400));
        assert_eq!(
            response.reason(),
            Some("CSeq method does not match request method")
        );
        assert_eq!(
            response.header(HeaderName::Warning),
            Some("399 sihai \"CSeq method does not match request method\"")
        );
        assert_eq!(
            core.transactions(),
            0,
            "no transaction for a request that failed validation"
        );
    }

    #[test]
    fn a_via_with_broken_parameters_still_gets_its_400() {
        let mut core = core();
        let broken = INVITE.replace("branch=z9hG4bKcore1;rport", "branch=z9hG4bKcore1;;");
        core.handle_received(Instant::now(), Bytes::from(broken), udp_peer());
        let sent = drain(&mut core);
        assert_eq!(sent.len(), 1);
        assert_eq!(status(&sent[0]), 400);
        // No usable rport: the sent-by port.
        assert_eq!(sent[0].destination, udp_peer());
    }

    #[test]
    fn unparsable_messages_and_stray_responses_are_dropped_and_counted() {
        let mut core = core();
        core.handle_received(
            Instant::now(),
            Bytes::from_static(b"\x16\x03\x01 TLS hello"),
            udp_peer(),
        );
        let stray = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKnobody\r\n\
            From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: s\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        core.handle_received(Instant::now(), Bytes::from(stray), udp_peer());
        let bad_response = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\n\r\n";
        core.handle_received(Instant::now(), Bytes::from(bad_response), udp_peer());
        assert!(drain(&mut core).is_empty());
        let stats = core.stats.snapshot();
        assert_eq!((stats.unparsable, stats.dropped_responses), (1, 2));
    }

    #[test]
    fn ack_for_the_final_response_is_absorbed() {
        let mut core = core();
        let now = Instant::now();
        core.handle_received(now, Bytes::from_static(INVITE.as_bytes()), udp_peer());
        let sent = drain(&mut core);
        let final_response = Message::parse(sent[1].payload.clone()).unwrap();
        let ack = MessageBuilder::ack_for(
            &Message::parse(Bytes::from_static(INVITE.as_bytes())).unwrap(),
            &final_response,
        )
        .build();
        core.handle_received(now, ack.wire(), udp_peer());
        assert!(drain(&mut core).is_empty(), "an ACK is never answered");
        // Confirmed: no more retransmissions; Timer I ends the transaction.
        let at = core.poll_timeout().expect("timer I");
        core.handle_timeout(at);
        assert!(drain(&mut core).is_empty());
        assert_eq!(core.transactions(), 0);
        assert_eq!(core.stats.snapshot().stray_acks, 0);
    }
}

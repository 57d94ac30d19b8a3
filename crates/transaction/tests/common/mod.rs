//! A virtual clock around the layer, and SIP messages written as text, so that each
//! test reads like a ladder diagram: what arrived when, what went out when.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use sihai_sip::builder::reason_phrase;
use sihai_sip::{Message, Peer, Transport};
use sihai_transaction::{
    ClientKey, Event, ServerKey, TimerConfig, TransactionError, TransactionKey, TransactionLayer,
    Transmit,
};

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub fn parse(text: &str) -> Message {
    Message::parse(Bytes::copy_from_slice(text.as_bytes())).expect("test message parses")
}

pub fn udp(addr: &str) -> Peer {
    Peer::new(Transport::Udp, addr.parse().expect("socket address"))
}

pub fn tcp(addr: &str) -> Peer {
    Peer::new(Transport::Tcp, addr.parse().expect("socket address"))
}

/// The trunk that sends us requests, over UDP from its sent-by address.
pub fn uac() -> Peer {
    udp("192.0.2.10:5060")
}

/// The same trunk over a TCP connection from an ephemeral port.
pub fn uac_tcp() -> Peer {
    tcp("192.0.2.10:40312")
}

/// Where our client transactions send.
pub fn uas() -> Peer {
    udp("198.51.100.20:5060")
}

pub fn uas_tcp() -> Peer {
    tcp("198.51.100.20:5060")
}

/// A request from 192.0.2.10 over UDP with the given top Via branch.
pub fn req(method: &str, branch: &str) -> String {
    format!(
        "{method} sip:4001234567@198.51.100.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5060;branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         From: \"Caller\" <sip:13800138000@carrier.example>;tag=from-1\r\n\
         To: <sip:4001234567@198.51.100.1>\r\n\
         Call-ID: call-1@192.0.2.10\r\n\
         CSeq: 1 {method}\r\n\
         Content-Length: 0\r\n\
         \r\n"
    )
}

pub fn over_tcp(text: &str) -> String {
    text.replace("SIP/2.0/UDP", "SIP/2.0/TCP")
}

/// Adds a To tag (an ACK carries the tag of the response it acknowledges).
pub fn with_to_tag(text: &str, tag: &str) -> String {
    text.replace(
        "<sip:4001234567@198.51.100.1>\r\n",
        &format!("<sip:4001234567@198.51.100.1>;tag={tag}\r\n"),
    )
}

/// A response to `request` as §8.2.6 writes it: Via, From, Call-ID, CSeq copied, To
/// copied with `to_tag` added when it has none.
pub fn resp(request: &str, code: u16, to_tag: Option<&str>) -> String {
    let mut out = format!("SIP/2.0 {code} {}\r\n", reason_phrase(code));
    for line in request.split("\r\n").skip(1) {
        if line.is_empty() {
            break;
        }
        if line.starts_with("Max-Forwards") || line.starts_with("Content-Length") {
            continue;
        }
        out.push_str(line);
        if line.starts_with("To:")
            && !line.contains("tag=")
            && let Some(tag) = to_tag
        {
            out.push_str(";tag=");
            out.push_str(tag);
        }
        out.push_str("\r\n");
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

/// A transmitted message, parsed back.
pub fn sent_msg(t: &Transmit) -> Message {
    Message::parse(t.payload.clone()).expect("layer sends parsable messages")
}

/// "INVITE" / "ACK" for requests, "486" for responses.
pub fn first_word(t: &Transmit) -> String {
    let m = sent_msg(t);
    match m.status() {
        Some(code) => code.to_string(),
        None => m
            .method()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default(),
    }
}

/// An event in one word or two, for compact assertions.
pub fn describe(e: &Event) -> String {
    match e {
        Event::Request { request, .. } => format!(
            "Request {}",
            request.method().map(|m| m.as_str()).unwrap_or("?")
        ),
        Event::StrayAck { .. } => "StrayAck".into(),
        Event::Cancelled { .. } => "Cancelled".into(),
        Event::Response { response, .. } => {
            format!("Response {}", response.status().unwrap_or_default())
        }
        Event::StrayResponse { response, .. } => {
            format!("StrayResponse {}", response.status().unwrap_or_default())
        }
        Event::Timeout { .. } => "Timeout".into(),
        Event::TransportError { .. } => "TransportError".into(),
        Event::Terminated { .. } => "Terminated".into(),
    }
}

pub struct Harness {
    pub layer: TransactionLayer,
    pub t0: Instant,
    pub now: Instant,
    sent: Vec<(Duration, Transmit)>,
    events: Vec<(Duration, Event)>,
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new(TimerConfig::default())
    }
}

impl Harness {
    pub fn new(timers: TimerConfig) -> Harness {
        let t0 = Instant::now();
        Harness {
            layer: TransactionLayer::new(timers),
            t0,
            now: t0,
            sent: Vec::new(),
            events: Vec::new(),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    fn drain(&mut self) {
        let at = self.elapsed();
        while let Some(t) = self.layer.poll_transmit() {
            self.sent.push((at, t));
        }
        while let Some(e) = self.layer.poll_event() {
            self.events.push((at, e));
        }
    }

    pub fn recv(&mut self, text: &str, from: Peer) {
        self.layer.handle_received(self.now, parse(text), from);
        self.drain();
    }

    pub fn respond(&mut self, key: &ServerKey, text: &str) -> Result<(), TransactionError> {
        let result = self.layer.respond(self.now, key, parse(text));
        self.drain();
        result
    }

    pub fn send(&mut self, text: &str, to: Peer) -> Result<ClientKey, TransactionError> {
        let result = self.layer.send_request(self.now, parse(text), to);
        self.drain();
        result
    }

    pub fn transport_error(&mut self, peer: Peer) {
        self.layer.handle_transport_error(self.now, peer);
        self.drain();
    }

    /// Moves the clock to `t` after the start, firing each timer at its own deadline, as
    /// an event loop sleeping on `poll_timeout` would.
    pub fn run_until(&mut self, t: Duration) {
        let end = self.t0 + t;
        while let Some(at) = self.layer.poll_timeout() {
            if at > end {
                break;
            }
            assert!(at >= self.now, "poll_timeout went back in time");
            self.now = at;
            self.layer.handle_timeout(at);
            self.drain();
        }
        self.now = self.now.max(end);
    }

    pub fn take_sent(&mut self) -> Vec<(Duration, Transmit)> {
        std::mem::take(&mut self.sent)
    }

    /// What was sent, as (milliseconds since start, first word).
    pub fn sent_summary(&mut self) -> Vec<(u128, String)> {
        self.take_sent()
            .iter()
            .map(|(at, t)| (at.as_millis(), first_word(t)))
            .collect()
    }

    pub fn take_events(&mut self) -> Vec<(Duration, Event)> {
        std::mem::take(&mut self.events)
    }

    /// The events since the last look, described.
    pub fn event_names(&mut self) -> Vec<String> {
        self.take_events()
            .iter()
            .map(|(_, e)| describe(e))
            .collect()
    }

    /// Receives a new request that must surface as exactly one Request event, and
    /// returns its key.
    pub fn recv_new(&mut self, text: &str, from: Peer) -> ServerKey {
        self.recv(text, from);
        let events = self.take_events();
        match events.as_slice() {
            [(_, Event::Request { key, .. })] => key.clone(),
            other => panic!("expected one Request event, got {other:?}"),
        }
    }
}

pub fn server(key: &ServerKey) -> TransactionKey {
    TransactionKey::Server(key.clone())
}

pub fn client(key: &ClientKey) -> TransactionKey {
    TransactionKey::Client(key.clone())
}

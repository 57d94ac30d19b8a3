//! Random schedules of everything that can happen to the layer: retransmissions, TU
//! answers, ACKs, CANCELs, responses from the network, transport errors and clocks
//! jumping by random amounts. Whatever the order, nothing panics, no request reaches the
//! TU twice while its transaction lives, timers never lie, and once the TU has answered
//! everything and enough time has passed, no transaction is left.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use proptest::prelude::*;
use sihai_sip::{Message, Peer};
use sihai_transaction::{Event, TransactionError, TransactionKey, TransactionLayer};

/// Requests peers send us: (text, source).
fn server_templates() -> Vec<(String, Peer)> {
    vec![
        (req("INVITE", "z9hG4bK-s0"), uac()),
        (req("OPTIONS", "z9hG4bK-s1"), uac()),
        (req("INVITE", "legacy").replace(";branch=legacy", ""), uac()),
        (over_tcp(&req("INVITE", "z9hG4bK-s3")), uac_tcp()),
        (over_tcp(&req("BYE", "2543")), uac_tcp()),
    ]
}

/// Requests we send: (text, destination).
fn client_templates() -> Vec<(String, Peer)> {
    let ours = |m: &str, b: &str| req(m, b).replace("192.0.2.10:5060", "198.51.100.1:5060");
    vec![
        (ours("INVITE", "z9hG4bK-c0"), uas()),
        (over_tcp(&ours("INVITE", "z9hG4bK-c1")), uas_tcp()),
        (ours("BYE", "z9hG4bK-c2"), uas()),
        (ours("CANCEL", "z9hG4bK-c0"), uas()),
    ]
}

fn is_cancel_server(key: &TransactionKey) -> bool {
    matches!(key, TransactionKey::Server(k) if k.method() == "CANCEL")
}

const CODES: [u16; 7] = [100, 180, 200, 404, 486, 487, 603];

#[derive(Debug, Clone)]
enum Op {
    /// Template `n` arrives: new, or a retransmission.
    Request(usize),
    /// The TU answers the latest transaction of template `n`.
    Respond(usize, u16),
    /// An ACK for template `n`, with our To tag or a wrong one.
    Ack(usize, bool),
    Cancel(usize),
    /// The TU sends client template `n`.
    Send(usize),
    /// The network answers client template `n`.
    NetResponse(usize, u16),
    /// The clock moves on and timers run (the loop may wake late).
    Advance(u64),
    TransportError(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..5usize).prop_map(Op::Request),
        3 => (0..5usize, prop::sample::select(&CODES[..])).prop_map(|(n, c)| Op::Respond(n, c)),
        2 => (0..5usize, any::<bool>()).prop_map(|(n, ok)| Op::Ack(n, ok)),
        1 => (0..5usize).prop_map(Op::Cancel),
        2 => (0..4usize).prop_map(Op::Send),
        3 => (0..4usize, prop::sample::select(&CODES[..])).prop_map(|(n, c)| Op::NetResponse(n, c)),
        3 => (0..40_000u64).prop_map(Op::Advance),
        1 => (0..4usize).prop_map(Op::TransportError),
    ]
}

struct World {
    layer: TransactionLayer,
    now: Instant,
    servers: Vec<(String, Peer)>,
    clients: Vec<(String, Peer)>,
    /// The latest server key per template, for the TU to answer.
    server_keys: HashMap<usize, sihai_transaction::ServerKey>,
    /// Transactions the TU knows to be alive.
    live: HashSet<TransactionKey>,
    /// Final responses passed up per live client transaction.
    finals: HashMap<TransactionKey, usize>,
}

impl World {
    fn new() -> World {
        World {
            layer: TransactionLayer::new(Default::default()),
            now: Instant::now(),
            servers: server_templates(),
            clients: client_templates(),
            server_keys: HashMap::new(),
            live: HashSet::new(),
            finals: HashMap::new(),
        }
    }

    /// Takes everything the layer produced and checks it against what the TU knows.
    /// `template` is the server template just received, if any.
    fn drain(&mut self, template: Option<usize>) -> Result<(), TestCaseError> {
        while let Some(t) = self.layer.poll_transmit() {
            prop_assert!(Message::parse(t.payload.clone()).is_ok());
        }
        while let Some(event) = self.layer.poll_event() {
            match event {
                Event::Request { key, .. } => {
                    // Never surfaced twice while its transaction lives.
                    prop_assert!(
                        self.live.insert(TransactionKey::Server(key.clone())),
                        "Request twice: {}",
                        key
                    );
                    prop_assert!(template.is_some(), "Request without a request");
                    if let Some(n) = template {
                        self.server_keys.insert(n, key);
                    }
                }
                Event::Response { key, response } => {
                    let tk = TransactionKey::Client(key);
                    prop_assert!(
                        self.live.contains(&tk),
                        "Response for a transaction not alive"
                    );
                    if response.status().unwrap_or_default() >= 300 {
                        let n = self.finals.entry(tk).or_default();
                        *n += 1;
                        prop_assert!(*n == 1, "non-2xx final passed up twice");
                    }
                }
                Event::Terminated { key } => {
                    // Unknown to the TU only if it is one of the layer's own CANCELs.
                    prop_assert!(
                        self.live.remove(&key) || is_cancel_server(&key),
                        "Terminated twice: {}",
                        key
                    );
                    self.finals.remove(&key);
                }
                Event::Timeout { key } | Event::TransportError { key } => {
                    prop_assert!(
                        self.live.contains(&key) || is_cancel_server(&key),
                        "event for a dead {}",
                        key
                    );
                }
                Event::Cancelled { invite } => {
                    prop_assert!(self.live.contains(&TransactionKey::Server(invite)));
                }
                Event::StrayAck { .. } | Event::StrayResponse { .. } => {}
            }
        }
        Ok(())
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Request(n) => {
                let (text, from) = self.servers[n].clone();
                self.layer.handle_received(self.now, parse(&text), from);
                return self.drain(Some(n));
            }
            Op::Respond(n, code) => {
                if let Some(key) = self.server_keys.get(&n).cloned() {
                    let text = &self.servers[n].0;
                    let to_tag = (code > 100).then_some("uas");
                    match self
                        .layer
                        .respond(self.now, &key, parse(&resp(text, code, to_tag)))
                    {
                        Ok(())
                        | Err(
                            TransactionError::InvalidState { .. }
                            | TransactionError::NoSuchTransaction(_),
                        ) => {}
                        Err(other) => prop_assert!(false, "unexpected {other}"),
                    }
                }
            }
            Op::Ack(n, right) => {
                let (text, from) = self.servers[n].clone();
                let ack = text
                    .replacen(
                        &format!("{} sip:", parse(&text).method().unwrap().as_str()),
                        "ACK sip:",
                        1,
                    )
                    .replace("CSeq: 1 INVITE", "CSeq: 1 ACK");
                let ack = with_to_tag(&ack, if right { "uas" } else { "wrong" });
                self.layer.handle_received(self.now, parse(&ack), from);
            }
            Op::Cancel(n) => {
                let (text, from) = self.servers[n].clone();
                let method = parse(&text).method().unwrap().as_str().to_owned();
                let cancel = text
                    .replacen(&format!("{method} sip:"), "CANCEL sip:", 1)
                    .replace(&format!("CSeq: 1 {method}"), "CSeq: 1 CANCEL");
                self.layer.handle_received(self.now, parse(&cancel), from);
            }
            Op::Send(n) => {
                let (text, to) = self.clients[n].clone();
                match self.layer.send_request(self.now, parse(&text), to) {
                    Ok(key) => {
                        prop_assert!(self.live.insert(TransactionKey::Client(key)));
                    }
                    Err(TransactionError::Duplicate(_)) => {}
                    Err(other) => prop_assert!(false, "unexpected {other}"),
                }
            }
            Op::NetResponse(n, code) => {
                let (text, from) = self.clients[n].clone();
                self.layer.handle_received(
                    self.now,
                    parse(&resp(&text, code, Some("callee"))),
                    from,
                );
            }
            Op::Advance(ms) => {
                self.now += Duration::from_millis(ms);
                self.layer.handle_timeout(self.now);
                self.drain(None)?;
                // Everything due has run; what is left is genuinely in the future.
                prop_assert!(self.layer.poll_timeout().is_none_or(|at| at > self.now));
            }
            Op::TransportError(n) => {
                let peer = [uac(), uac_tcp(), uas(), uas_tcp()][n];
                self.layer.handle_transport_error(self.now, peer);
            }
        }
        self.drain(None)
    }

    /// The TU answers whatever it still owes, the network answers whatever we still
    /// wait for, and time runs until nothing is armed.
    fn wind_down(&mut self) -> Result<(), TestCaseError> {
        for (n, key) in self.server_keys.clone() {
            let _ = self.layer.respond(
                self.now,
                &key,
                parse(&resp(&self.servers[n].0, 500, Some("uas"))),
            );
        }
        for (text, from) in self.clients.clone() {
            self.layer
                .handle_received(self.now, parse(&resp(&text, 500, Some("callee"))), from);
        }
        self.drain(None)?;
        let mut steps = 0;
        while let Some(at) = self.layer.poll_timeout() {
            steps += 1;
            prop_assert!(steps < 10_000, "timers never stop");
            prop_assert!(at >= self.now);
            self.now = at;
            self.layer.handle_timeout(at);
            self.drain(None)?;
        }
        prop_assert_eq!(self.layer.len(), 0);
        prop_assert!(self.layer.is_empty());
        prop_assert!(self.live.is_empty(), "no Terminated for {:?}", self.live);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_schedule_ends_with_no_transactions(ops in prop::collection::vec(op(), 0..60)) {
        let mut world = World::new();
        for op in &ops {
            world.apply(op)?;
        }
        world.wind_down()?;
    }

    /// Mangled messages (bytes replaced, truncated) fed in every direction never panic.
    #[test]
    fn mangled_messages_never_panic(
        which in 0..9usize,
        edits in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(&b";=:,<> \r\nz9hG4bK0SIP/"[..])), 0..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut all: Vec<(String, Peer)> = server_templates();
        all.extend(client_templates());
        let request = all[which].0.clone().into_bytes();
        let response = resp(&all[which].0, 486, Some("t")).into_bytes();
        let mut layer = TransactionLayer::new(Default::default());
        let now = Instant::now();
        // Known transactions for the mangled messages to collide with.
        for (text, peer) in server_templates() {
            layer.handle_received(now, parse(&text), peer);
        }
        for (text, peer) in client_templates() {
            let _ = layer.send_request(now, parse(&text), peer);
        }
        for mut target in [request, response] {
            for (at, b) in &edits {
                let i = at.index(target.len());
                target[i] = *b;
            }
            if truncate {
                target.truncate(cut.index(target.len() + 1));
            }
            if let Ok(msg) = Message::parse(Bytes::from(target.clone())) {
                layer.handle_received(now, msg.clone(), all[which].1);
                let _ = layer.send_request(now, msg.clone(), all[which].1);
                while let Some(event) = layer.poll_event() {
                    if let Event::Request { key, .. } = event {
                        let _ = layer.respond(now, &key, msg.clone());
                    }
                }
            }
        }
        layer.handle_timeout(now + Duration::from_secs(3600));
        layer.handle_timeout(now + Duration::from_secs(7200));
    }
}

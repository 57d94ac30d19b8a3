//! The carrier: places the calls to the 400 number over one UDP SIP socket, at a bounded
//! rate, acknowledges the answers, keeps answering sihai while the calls stream, and
//! hangs every call up at the end. Driven from the main thread.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::phone::caller_number;
use crate::sip::{self, Message};

/// RFC 3261's T1: the first retransmission interval of INVITE and BYE over UDP.
const T1: Duration = Duration::from_millis(500);
/// Retransmission intervals stop doubling here (T2).
const T2: Duration = Duration::from_secs(4);
/// How long one wait on the socket lasts, so that launches and retransmissions stay on
/// time while nothing arrives.
const POLL: Duration = Duration::from_millis(1);

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    NotPlaced,
    /// INVITE sent, nothing heard yet: retransmitted (Timer A).
    Inviting,
    /// A provisional response arrived: sihai's transaction has it.
    Proceeding,
    Established,
    /// BYE sent, waiting for its 200.
    Ending,
    Ended,
    /// No call: the reason ("503 Service Unavailable", "BYE from sihai", ...).
    Failed(String),
}

struct Call {
    state: State,
    /// Where sihai's relay wants the caller leg's audio (the SDP of its 183 or 200).
    relay_for_caller: Option<SocketAddr>,
    invite_sent: Option<Instant>,
    setup_time: Option<Duration>,
    /// The request being retransmitted (INVITE, then BYE), and when next.
    pending: Vec<u8>,
    next_retransmit: Instant,
    interval: Duration,
    /// The ACK for the 200, resent if sihai retransmits its 200.
    ack: Vec<u8>,
    /// From the 200: the To header with sihai's tag, and sihai's Contact URI.
    to: String,
    remote_target: String,
}

pub struct Caller {
    socket: UdpSocket,
    local: SocketAddr,
    sihai: SocketAddr,
    number: String,
    run_id: u32,
    /// The caller side's RTP sockets; call `i` offers `rtp[i % rtp.len()]`.
    rtp: Vec<SocketAddr>,
    calls: Vec<Call>,
    buf: Vec<u8>,
    /// Datagrams that were not SIP we could read, or not about our calls.
    pub stray: u64,
    /// Requests sihai sent the caller (a BYE would mean a call ended on its own).
    pub requests_from_sihai: u64,
}

/// How placing the calls went.
pub struct SetupOutcome {
    pub established: usize,
    pub failed: usize,
    pub seconds: f64,
    /// Setup time (INVITE to 200) of the established calls, 50th and 99th percentile.
    pub setup_ms_p50: f64,
    pub setup_ms_p99: f64,
    /// Why calls failed, with how many failed for each reason.
    pub failures: BTreeMap<String, usize>,
}

pub struct HangupOutcome {
    pub ended: usize,
    pub not_ended: usize,
    /// Calls that had already ended before the hang-up (a BYE from sihai).
    pub ended_early: usize,
}

impl Caller {
    pub fn new(
        socket: UdpSocket,
        sihai: SocketAddr,
        number: String,
        calls: usize,
        rtp: Vec<SocketAddr>,
    ) -> Result<Caller> {
        socket
            .set_read_timeout(Some(POLL))
            .context("caller SIP socket: read timeout")?;
        let local = socket.local_addr().context("caller SIP socket address")?;
        let now = Instant::now();
        Ok(Caller {
            socket,
            local,
            sihai,
            number,
            run_id: std::process::id(),
            rtp,
            calls: (0..calls)
                .map(|_| Call {
                    state: State::NotPlaced,
                    relay_for_caller: None,
                    invite_sent: None,
                    setup_time: None,
                    pending: Vec::new(),
                    next_retransmit: now,
                    interval: T1,
                    ack: Vec::new(),
                    to: String::new(),
                    remote_target: String::new(),
                })
                .collect(),
            buf: vec![0u8; 65_535],
            stray: 0,
            requests_from_sihai: 0,
        })
    }

    /// The relay's address for each established call's caller leg, by call index
    /// (`None` for calls not established).
    pub fn relay_for_caller(&self) -> Vec<Option<SocketAddr>> {
        self.calls
            .iter()
            .map(|c| {
                if c.state == State::Established {
                    c.relay_for_caller
                } else {
                    None
                }
            })
            .collect()
    }

    fn call_id(&self, index: usize) -> String {
        format!("rtpload-{}-{index}@127.0.0.1", self.run_id)
    }

    fn index_of(&self, call_id: &str) -> Option<usize> {
        let prefix = format!("rtpload-{}-", self.run_id);
        let index: usize = call_id
            .strip_prefix(&prefix)?
            .strip_suffix("@127.0.0.1")?
            .parse()
            .ok()?;
        (index < self.calls.len()).then_some(index)
    }

    fn send(&self, bytes: &[u8]) {
        // A lost datagram is retransmitted (INVITE, BYE) or reported as a failed call.
        let _ = self.socket.send_to(bytes, self.sihai);
    }

    fn our_from(&self, index: usize) -> String {
        format!(
            "<sip:{}@127.0.0.1>;tag=rl{}x{index}",
            caller_number(index),
            self.run_id
        )
    }

    fn place(&mut self, index: usize, now: Instant) {
        let rtp = self.rtp[index % self.rtp.len()];
        let offer = sip::sdp(rtp, index as u64);
        let invite = format!(
            "INVITE sip:{number}@{sihai} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bKrl{run}i{index};rport\r\n\
             From: {from}\r\nTo: <sip:{number}@{sihai}>\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\
             Contact: <sip:{user}@{local}>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{offer}",
            number = self.number,
            sihai = self.sihai,
            local = self.local,
            run = self.run_id,
            from = self.our_from(index),
            call_id = self.call_id(index),
            user = caller_number(index),
            len = offer.len(),
        )
        .into_bytes();
        self.send(&invite);
        let call = &mut self.calls[index];
        call.state = State::Inviting;
        call.invite_sent = Some(now);
        call.pending = invite;
        call.interval = T1;
        call.next_retransmit = now + T1;
    }

    /// Places every call, `rate` per second, and waits for each to be answered or to
    /// fail, until `deadline`.
    pub fn set_up(&mut self, rate: f64, deadline: Instant) -> SetupOutcome {
        let started = Instant::now();
        let total = self.calls.len();
        let mut placed = 0;
        while Instant::now() < deadline {
            let now = Instant::now();
            let due = ((now.duration_since(started).as_secs_f64() * rate).floor() as usize + 1)
                .min(total);
            while placed < due {
                self.place(placed, now);
                placed += 1;
            }
            self.receive_pending();
            self.retransmit(Instant::now());
            let settled = self
                .calls
                .iter()
                .filter(|c| matches!(c.state, State::Established | State::Failed(_)))
                .count();
            if placed == total && settled == total {
                break;
            }
        }
        let mut failures = BTreeMap::new();
        for call in &mut self.calls {
            let reason = match &call.state {
                State::Established => continue,
                State::Failed(reason) => reason.clone(),
                State::NotPlaced => "not placed before the setup deadline".to_owned(),
                State::Inviting => "no response before the setup deadline".to_owned(),
                _ => "not answered before the setup deadline".to_owned(),
            };
            // Nothing more is sent for it; sihai ends it on its own timers.
            call.state = State::Failed(reason.clone());
            call.pending.clear();
            *failures.entry(reason).or_insert(0) += 1;
        }
        let mut setup_ms: Vec<f64> = self
            .calls
            .iter()
            .filter_map(|c| c.setup_time.map(|t| t.as_secs_f64() * 1000.0))
            .collect();
        setup_ms.sort_by(f64::total_cmp);
        let established = self
            .calls
            .iter()
            .filter(|c| c.state == State::Established)
            .count();
        SetupOutcome {
            established,
            failed: total - established,
            seconds: started.elapsed().as_secs_f64(),
            setup_ms_p50: crate::stats::percentile(&setup_ms, 0.50).unwrap_or(0.0),
            setup_ms_p99: crate::stats::percentile(&setup_ms, 0.99).unwrap_or(0.0),
            failures,
        }
    }

    /// Keeps answering sihai (a retransmitted 200 gets its ACK again) until `until`.
    pub fn serve_until(&mut self, until: Instant) {
        while Instant::now() < until {
            self.receive_pending();
        }
    }

    /// Hangs up every established call, `rate` per second, and waits for the 200s
    /// until `deadline`.
    pub fn hang_up(&mut self, rate: f64, deadline: Instant) -> HangupOutcome {
        let to_end: Vec<usize> = (0..self.calls.len())
            .filter(|&i| self.calls[i].state == State::Established)
            .collect();
        let ended_early = self
            .calls
            .iter()
            .filter(|c| matches!(&c.state, State::Failed(r) if r == "BYE from sihai"))
            .count();
        let started = Instant::now();
        let mut sent = 0;
        while Instant::now() < deadline {
            let now = Instant::now();
            let due = ((now.duration_since(started).as_secs_f64() * rate).floor() as usize + 1)
                .min(to_end.len());
            while sent < due {
                self.send_bye(to_end[sent], now);
                sent += 1;
            }
            self.receive_pending();
            self.retransmit(Instant::now());
            if sent == to_end.len()
                && to_end
                    .iter()
                    .all(|&i| matches!(self.calls[i].state, State::Ended | State::Failed(_)))
            {
                break;
            }
        }
        let ended = to_end
            .iter()
            .filter(|&&i| self.calls[i].state == State::Ended)
            .count();
        HangupOutcome {
            ended,
            not_ended: to_end.len() - ended,
            ended_early,
        }
    }

    fn send_bye(&mut self, index: usize, now: Instant) {
        let call = &self.calls[index];
        let bye = format!(
            "BYE {target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bKrl{run}b{index};rport\r\n\
             From: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 2 BYE\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            target = call.remote_target,
            local = self.local,
            run = self.run_id,
            from = self.our_from(index),
            to = call.to,
            call_id = self.call_id(index),
        )
        .into_bytes();
        self.send(&bye);
        let call = &mut self.calls[index];
        call.state = State::Ending;
        call.pending = bye;
        call.interval = T1;
        call.next_retransmit = now + T1;
    }

    /// Resends INVITEs nobody has answered yet and BYEs without their 200 (UDP loses
    /// datagrams when a socket's buffer is full).
    fn retransmit(&mut self, now: Instant) {
        for index in 0..self.calls.len() {
            let call = &self.calls[index];
            if !matches!(call.state, State::Inviting | State::Ending)
                || call.pending.is_empty()
                || now < call.next_retransmit
            {
                continue;
            }
            let _ = self.socket.send_to(&call.pending, self.sihai);
            let call = &mut self.calls[index];
            call.interval = (call.interval * 2).min(T2);
            call.next_retransmit = now + call.interval;
        }
    }

    /// Handles everything already waiting on the socket, waiting at most `POLL` for
    /// the first datagram. Bounded: at most 10,000 datagrams per call.
    fn receive_pending(&mut self) {
        for _ in 0..10_000 {
            let (len, source) = match self.socket.recv_from(&mut self.buf) {
                Ok(received) => received,
                Err(err)
                    if matches!(
                        err.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return;
                }
                // ICMP errors from an earlier send: not fatal, keep reading.
                Err(_) => continue,
            };
            let datagram = self.buf[..len].to_vec();
            if self.handle(&datagram, source).is_err() {
                self.stray += 1;
            }
        }
    }

    fn handle(&mut self, datagram: &[u8], source: SocketAddr) -> Result<()> {
        let message = Message::parse(datagram)?;
        let call_id = message.call_id()?;
        let Some(index) = self.index_of(call_id) else {
            anyhow::bail!("not one of our calls: {call_id}");
        };
        if let Some(method) = message.method() {
            self.requests_from_sihai += 1;
            let ok = sip::response(&message, 200, "OK", "caller", None, None)?;
            let _ = self.socket.send_to(&ok, source);
            if method == "BYE" {
                let call = &mut self.calls[index];
                if !matches!(call.state, State::Ended | State::Failed(_)) {
                    call.state = State::Failed("BYE from sihai".to_owned());
                    call.pending.clear();
                }
            }
            return Ok(());
        }
        let status = message
            .status()
            .context("neither a request nor a response")?;
        match message.cseq_method()? {
            "INVITE" => self.invite_response(index, status, &message),
            "BYE" => {
                let call = &mut self.calls[index];
                if call.state == State::Ending && status >= 200 {
                    call.state = if status < 300 {
                        State::Ended
                    } else {
                        State::Failed(format!("BYE answered {status}"))
                    };
                    call.pending.clear();
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn invite_response(&mut self, index: usize, status: u16, message: &Message<'_>) -> Result<()> {
        let (local, run, sihai) = (self.local, self.run_id, self.sihai);
        let from = self.our_from(index);
        let call_id = self.call_id(index);
        let call = &mut self.calls[index];
        if !message.body.is_empty()
            && let Ok(target) = sip::sdp_audio_target(message.body)
        {
            call.relay_for_caller = Some(target);
        }
        match status {
            100..=199 => {
                if call.state == State::Inviting {
                    call.state = State::Proceeding;
                }
                Ok(())
            }
            200..=299 => {
                if matches!(call.state, State::Inviting | State::Proceeding) {
                    let to = message
                        .header("To", Some("t"))
                        .context("200 without To")?
                        .to_owned();
                    call.remote_target = message
                        .contact_uri()
                        .map_or_else(|| format!("sip:{sihai}"), str::to_owned);
                    call.to = to;
                    call.ack = format!(
                        "ACK {target} SIP/2.0\r\n\
                         Via: SIP/2.0/UDP {local};branch=z9hG4bKrl{run}a{index};rport\r\n\
                         From: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\n\
                         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                        target = call.remote_target,
                        to = call.to,
                    )
                    .into_bytes();
                    call.pending.clear();
                    call.setup_time = call.invite_sent.map(|sent| sent.elapsed());
                    call.state = if call.relay_for_caller.is_some() {
                        State::Established
                    } else {
                        State::Failed("200 without a usable SDP answer".to_owned())
                    };
                }
                // The first 200, or sihai retransmitting it because our ACK was lost.
                if !call.ack.is_empty() {
                    let _ = self.socket.send_to(&call.ack, sihai);
                }
                Ok(())
            }
            _ => {
                // A refusal: acknowledged in its transaction (same branch as the
                // INVITE, To with sihai's tag), and the call counted as failed.
                let to = message.header("To", Some("t")).unwrap_or_default();
                let ack = format!(
                    "ACK sip:{number}@{sihai} SIP/2.0\r\n\
                     Via: SIP/2.0/UDP {local};branch=z9hG4bKrl{run}i{index};rport\r\n\
                     From: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\n\
                     Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                    number = self.number,
                );
                let _ = self.socket.send_to(ack.as_bytes(), sihai);
                let call = &mut self.calls[index];
                if matches!(call.state, State::Inviting | State::Proceeding) {
                    let reason = message
                        .header("Reason", None)
                        .map_or_else(|| status.to_string(), |r| format!("{status} ({r})"));
                    call.state = State::Failed(reason);
                    call.pending.clear();
                }
                Ok(())
            }
        }
    }
}

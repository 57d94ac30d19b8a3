//! The phones: one UDP SIP socket that sihai's trunk gateway points at. Every INVITE
//! sihai sends is answered at once with 180 then 200 and an SDP answer naming one of the
//! phone side's RTP sockets; BYEs are answered with 200. Runs on its own thread for the
//! whole run, so sihai's requests are answered while the caller side is busy.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::sip::{self, Message};

/// RFC 3261's T1: the first retransmission interval of an unacknowledged 200.
const T1: Duration = Duration::from_millis(500);
/// A 200 still unacknowledged after 64 × T1 is given up (Timer H's span).
const GIVE_UP_AFTER: Duration = Duration::from_secs(32);
/// How often the thread looks up from the socket to retransmit and check `stop`.
const POLL: Duration = Duration::from_millis(10);

/// What the phone side learnt, shared with the main thread.
#[derive(Debug, Default)]
pub struct PhoneLegs {
    /// Per call (by the index the caller put in its number): where sihai's relay wants
    /// the phone leg's audio, from the SDP offer in sihai's INVITE.
    pub relay_for_phone: Vec<Option<SocketAddr>>,
    pub invites: u64,
    pub acks: u64,
    pub byes: u64,
    /// INVITEs whose caller number is not one of ours, or whose SDP is unusable:
    /// answered 488 and counted, never a panic.
    pub refused: u64,
    /// Datagrams that were not SIP we could read.
    pub malformed: u64,
    /// 200s never acknowledged within 32 s.
    pub unacknowledged: u64,
}

/// One INVITE sihai sent, by its Call-ID (sihai's own for the phone leg).
struct Leg {
    /// The 200 we answered with, resent while it is not acknowledged.
    answer: Vec<u8>,
    to: SocketAddr,
    acked: bool,
    answered_at: Instant,
    next_retransmit: Instant,
    interval: Duration,
}

pub struct Phone {
    pub socket: UdpSocket,
    pub calls: usize,
    /// The phone side's RTP sockets' addresses; call `i` uses `rtp[i % rtp.len()]`.
    pub rtp: Vec<SocketAddr>,
    pub shared: Arc<Mutex<PhoneLegs>>,
    pub stop: Arc<AtomicBool>,
}

/// The caller's number for call `index`: the phone side finds the call again from it,
/// since sihai passes the caller's number on to the phone (From) but makes up a new
/// Call-ID for the phone leg.
pub fn caller_number(index: usize) -> String {
    format!("138{index:08}")
}

fn call_index(number: &str, calls: usize) -> Option<usize> {
    let digits = number.strip_prefix("138")?;
    if digits.len() != 8 {
        return None;
    }
    digits.parse::<usize>().ok().filter(|&index| index < calls)
}

impl Phone {
    /// Answers until `stop` is set. Errors on the socket are counted, not fatal: the
    /// main thread sees missing answers as calls that failed to set up.
    pub fn run(self) {
        let mut legs: HashMap<String, Leg> = HashMap::new();
        let mut buf = vec![0u8; 65_535];
        if let Err(err) = self.socket.set_read_timeout(Some(POLL)) {
            eprintln!("rtp-load: phone socket: cannot set a read timeout: {err}");
            return;
        }
        let mut last_sweep = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            match self.socket.recv_from(&mut buf) {
                Ok((len, source)) => self.handle(&buf[..len], source, &mut legs),
                Err(err)
                    if matches!(
                        err.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                // ICMP errors from an earlier send surface here; nothing to do.
                Err(_) => {}
            }
            let now = Instant::now();
            if now.duration_since(last_sweep) >= POLL {
                last_sweep = now;
                self.retransmit(now, &mut legs);
            }
        }
    }

    fn count(&self, update: impl FnOnce(&mut PhoneLegs)) {
        // A poisoned lock means the main thread panicked: the run is over anyway.
        if let Ok(mut shared) = self.shared.lock() {
            update(&mut shared);
        }
    }

    fn send(&self, bytes: &[u8], to: SocketAddr) {
        // A lost send is a retransmission later (200) or a failed call the caller
        // side reports; nothing else to do here.
        let _ = self.socket.send_to(bytes, to);
    }

    fn handle(&self, datagram: &[u8], source: SocketAddr, legs: &mut HashMap<String, Leg>) {
        let Ok(message) = Message::parse(datagram) else {
            self.count(|s| s.malformed += 1);
            return;
        };
        let Some(method) = message.method() else {
            return; // we send no requests; a response is a stray
        };
        let Ok(call_id) = message.call_id() else {
            self.count(|s| s.malformed += 1);
            return;
        };
        match method {
            "INVITE" => self.invite(&message, call_id, source, legs),
            "ACK" => {
                if let Some(leg) = legs.get_mut(call_id)
                    && !leg.acked
                {
                    leg.acked = true;
                    leg.answer = Vec::new();
                    self.count(|s| s.acks += 1);
                }
            }
            "BYE" => {
                if let Ok(ok) = sip::response(&message, 200, "OK", "phone", None, None) {
                    self.send(&ok, source);
                }
                if legs.remove(call_id).is_some() {
                    self.count(|s| s.byes += 1);
                }
            }
            _ => {
                // CANCEL, OPTIONS, INFO, UPDATE: accepted, so sihai never waits on us.
                if let Ok(ok) = sip::response(&message, 200, "OK", "phone", None, None) {
                    self.send(&ok, source);
                }
            }
        }
    }

    fn invite(
        &self,
        message: &Message<'_>,
        call_id: &str,
        source: SocketAddr,
        legs: &mut HashMap<String, Leg>,
    ) {
        if let Some(leg) = legs.get(call_id) {
            // A retransmitted INVITE: the answer again (empty once acknowledged).
            if !leg.answer.is_empty() {
                self.send(&leg.answer, source);
            }
            return;
        }
        let index = message
            .caller_user()
            .and_then(|u| call_index(u, self.calls));
        let relay = sip::sdp_audio_target(message.body).ok();
        let (Some(index), Some(relay)) = (index, relay) else {
            if let Ok(refusal) =
                sip::response(message, 488, "Not Acceptable Here", "phone", None, None)
            {
                self.send(&refusal, source);
            }
            self.count(|s| s.refused += 1);
            return;
        };
        let tag = format!("ph{index}");
        let local = self.socket.local_addr().ok();
        let rtp = self.rtp[index % self.rtp.len()];
        let answer_sdp = sip::sdp(rtp, index as u64);
        let (Ok(ringing), Ok(answer)) = (
            sip::response(message, 180, "Ringing", &tag, local, None),
            sip::response(message, 200, "OK", &tag, local, Some(&answer_sdp)),
        ) else {
            self.count(|s| s.malformed += 1);
            return;
        };
        self.send(&ringing, source);
        self.send(&answer, source);
        self.count(|s| {
            s.invites += 1;
            if let Some(slot) = s.relay_for_phone.get_mut(index) {
                *slot = Some(relay);
            }
        });
        let now = Instant::now();
        legs.insert(
            call_id.to_owned(),
            Leg {
                answer,
                to: source,
                acked: false,
                answered_at: now,
                next_retransmit: now + T1,
                interval: T1,
            },
        );
    }

    /// RFC 3261 §13.3.1.4: a 200 to an INVITE is resent, T1 doubling, until its ACK.
    fn retransmit(&self, now: Instant, legs: &mut HashMap<String, Leg>) {
        let mut given_up = 0;
        for leg in legs.values_mut() {
            if leg.acked || leg.answer.is_empty() || now < leg.next_retransmit {
                continue;
            }
            if now.duration_since(leg.answered_at) >= GIVE_UP_AFTER {
                leg.answer = Vec::new();
                given_up += 1;
                continue;
            }
            let _ = self.socket.send_to(&leg.answer, leg.to);
            leg.interval = (leg.interval * 2).min(Duration::from_secs(4));
            leg.next_retransmit = now + leg.interval;
        }
        if given_up > 0 {
            self.count(|s| s.unacknowledged += given_up);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_index_travels_in_the_caller_number() {
        assert_eq!(caller_number(42), "13800000042");
        assert_eq!(call_index(&caller_number(42), 100), Some(42));
        assert_eq!(call_index(&caller_number(100), 100), None);
        assert_eq!(call_index("13900000042", 100), None);
        assert_eq!(call_index("138042", 100), None);
    }
}

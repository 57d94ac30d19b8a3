//! Symmetric RTP (RFC 4961), also called latching: a leg's media goes back to where
//! its packets actually come from, not to the address its SDP announced.
//!
//! Callers and phones behind NAT announce a private address (`192.168.1.20:4000`) that
//! cannot be reached from outside; their packets arrive from the NAT's public address
//! and port, and that is the only address that reaches them. So the first RTP packet
//! on a leg's port fixes the leg's destination. Packets from anywhere else are then
//! refused (a stranger cannot hijack the stream) unless the latched source has been
//! silent for [`RELATCH_AFTER`]: a NAT that rebinds, or a phone that moves to another
//! network, changes address without a re-INVITE, and the call must follow it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long the latched source must have been silent before another source may take
/// its place.
pub const RELATCH_AFTER: Duration = Duration::from_secs(2);

/// What the latch decided about a packet's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// The first packet: the source is now the leg's destination.
    Latched,
    /// From the latched source.
    Known,
    /// From a new source, accepted because the latched one had gone silent.
    Moved,
    /// From another source while the latched one is alive: drop it.
    Refused,
}

/// The destination of one leg's packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Latch {
    /// The address from the peer's SDP, used until a packet arrives.
    signalled: Option<SocketAddr>,
    /// The source of the accepted packets, and when the last one arrived.
    latched: Option<(SocketAddr, Instant)>,
}

impl Latch {
    pub(crate) fn new(signalled: Option<SocketAddr>) -> Latch {
        Latch {
            signalled,
            latched: None,
        }
    }

    /// Decides whether a valid RTP packet from `source` belongs to the leg, and
    /// follows the source when it does.
    pub(crate) fn admit(&mut self, source: SocketAddr, now: Instant) -> Admission {
        let admission = match self.latched {
            None => Admission::Latched,
            Some((latched, _)) if latched == source => Admission::Known,
            Some((_, last_heard)) if now.saturating_duration_since(last_heard) >= RELATCH_AFTER => {
                Admission::Moved
            }
            Some(_) => return Admission::Refused,
        };
        self.latched = Some((source, now));
        admission
    }

    /// Where to send: the latched source, else the SDP address, else nowhere.
    pub(crate) fn destination(&self) -> Option<SocketAddr> {
        self.latched.map(|(address, _)| address).or(self.signalled)
    }

    /// The latched source, if a packet has arrived.
    pub(crate) fn latched(&self) -> Option<SocketAddr> {
        self.latched.map(|(address, _)| address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn sends_to_the_sdp_address_until_a_packet_arrives() {
        let t0 = Instant::now();
        let sdp = address("192.168.1.20:4000");
        let natted = address("203.0.113.9:61000");
        let mut latch = Latch::new(Some(sdp));
        assert_eq!(latch.destination(), Some(sdp));
        assert_eq!(latch.latched(), None);
        assert_eq!(latch.admit(natted, t0), Admission::Latched);
        assert_eq!(latch.destination(), Some(natted));
        assert_eq!(latch.latched(), Some(natted));
        assert_eq!(latch.admit(natted, t0), Admission::Known);
    }

    #[test]
    fn without_sdp_address_there_is_no_destination_until_latched() {
        let mut latch = Latch::new(None);
        assert_eq!(latch.destination(), None);
        let source = address("[2001:db8::1]:5004");
        assert_eq!(latch.admit(source, Instant::now()), Admission::Latched);
        assert_eq!(latch.destination(), Some(source));
    }

    #[test]
    fn refuses_strangers_while_the_latched_source_is_alive() {
        let t0 = Instant::now();
        let first = address("203.0.113.9:61000");
        let stranger = address("198.51.100.66:4000");
        let mut latch = Latch::new(None);
        latch.admit(first, t0);
        let just_before = t0 + RELATCH_AFTER - Duration::from_millis(1);
        assert_eq!(latch.admit(stranger, just_before), Admission::Refused);
        // A refused packet does not refresh anything: the latched source still owns
        // the leg, and its own packets keep it alive.
        assert_eq!(latch.destination(), Some(first));
        assert_eq!(latch.admit(first, just_before), Admission::Known);
        assert_eq!(
            latch.admit(stranger, just_before + Duration::from_millis(1999)),
            Admission::Refused
        );
    }

    #[test]
    fn follows_a_new_source_after_two_silent_seconds() {
        let t0 = Instant::now();
        let first = address("203.0.113.9:61000");
        let rebound = address("203.0.113.9:61234");
        let mut latch = Latch::new(None);
        latch.admit(first, t0);
        assert_eq!(latch.admit(rebound, t0 + RELATCH_AFTER), Admission::Moved);
        assert_eq!(latch.destination(), Some(rebound));
        // The old source is now the stranger.
        assert_eq!(
            latch.admit(first, t0 + RELATCH_AFTER + Duration::from_millis(20)),
            Admission::Refused
        );
    }

    #[test]
    fn clock_going_backwards_never_relatches() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut latch = Latch::new(None);
        latch.admit(address("203.0.113.9:1"), t0);
        assert_eq!(
            latch.admit(address("203.0.113.9:2"), t0 - Duration::from_secs(5)),
            Admission::Refused
        );
    }
}

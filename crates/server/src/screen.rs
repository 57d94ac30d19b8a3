//! What a request must pass before it may cost a transaction: the flood limit per
//! source address, the scanner list, and the answer policy for addresses that are no
//! trunk. Pure: the core feeds it instants and addresses, it keeps no clock or socket.
//!
//! A request from an address that is no trunk (and belongs to no call) gets one
//! stateless answer or none, never a transaction: a transaction would send `100` and
//! retransmit its final response until Timer H, which makes a spoofed source a
//! reflection target and a scanner flood a memory flood.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use sihai_config::{SipConfig, Untrusted};
use sihai_sip::Transport;

/// Fragments of the User-Agent of SIP scanners and war-dialers, matched
/// case-insensitively anywhere in the header. Legitimate equipment never sends these.
pub const KNOWN_SCANNERS: &[&str] = &[
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "sipscan",
    "sundayddr",
    "iwar",
    "sivus",
    "smap",
    "vaxsipuseragent",
    "pplsip",
];

/// The default of `[sip] max_requests_per_source`, for a core built without a
/// configuration (tests, benches).
pub const DEFAULT_MAX_REQUESTS_PER_SOURCE: u32 = 5_000;

/// What the screen needs from the configuration; replaced whole on reload.
#[derive(Debug, Clone)]
pub struct ScreenSettings {
    /// Each listening socket's policy for untrusted requests.
    pub listeners: Vec<(Transport, SocketAddr, Untrusted)>,
    pub max_requests_per_source: u32,
    /// Configured scanner fragments (lowercase), checked after [`KNOWN_SCANNERS`].
    pub scanner_user_agents: Vec<String>,
}

impl Default for ScreenSettings {
    fn default() -> Self {
        ScreenSettings {
            listeners: Vec::new(),
            max_requests_per_source: DEFAULT_MAX_REQUESTS_PER_SOURCE,
            scanner_user_agents: Vec::new(),
        }
    }
}

impl ScreenSettings {
    pub fn from_config(sip: &SipConfig) -> ScreenSettings {
        ScreenSettings {
            listeners: sip
                .listen
                .iter()
                .map(|l| (l.transport, l.address, l.untrusted))
                .collect(),
            max_requests_per_source: sip.max_requests_per_source,
            scanner_user_agents: sip.scanner_user_agents.clone(),
        }
    }

    /// The policy of the listener a message arrived on. `local` is the receiving
    /// socket's address (UDP) or the connection's local address (TCP), which names a
    /// wildcard listener's port only. A message from no known listener (a connection
    /// sihai opened itself, or no address given) gets the default, `reject`.
    pub fn untrusted_policy(&self, transport: Transport, local: Option<SocketAddr>) -> Untrusted {
        let Some(local) = local else {
            return Untrusted::default();
        };
        self.listeners
            .iter()
            .find(|(t, address, _)| {
                *t == transport
                    && address.port() == local.port()
                    && (address.ip() == local.ip() || address.ip().is_unspecified())
            })
            .map_or(Untrusted::default(), |(_, _, policy)| *policy)
    }

    /// Whether a User-Agent value names a known or configured scanner.
    pub fn is_scanner(&self, user_agent: &str) -> bool {
        KNOWN_SCANNERS
            .iter()
            .copied()
            .chain(self.scanner_user_agents.iter().map(String::as_str))
            .any(|fragment| contains_ignore_ascii_case(user_agent, fragment))
    }
}

fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    let (haystack, needle) = (haystack.as_bytes(), needle.as_bytes());
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window.eq_ignore_ascii_case(needle))
}

/// Sources tracked at once. A flood from spoofed addresses cannot grow the map past
/// this: sources beyond it share one bucket (see [`FloodLimiter::admit`]).
const MAX_TRACKED_SOURCES: usize = 16_384;

const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// A token bucket per source address, `rate` requests per second with a burst of
/// `rate`, kept as the generic cell rate algorithm does: one instant per source, the
/// theoretical arrival time of its next request, so the arithmetic is exact.
#[derive(Debug)]
pub struct FloodLimiter {
    /// One request's share of a second.
    interval: Duration,
    /// How far ahead of now a source's next arrival time may be: the burst.
    tolerance: Duration,
    buckets: HashMap<IpAddr, Bucket>,
    /// Shared by the sources that arrive while the map is full.
    overflow: Option<Bucket>,
    next_sweep: Option<Instant>,
    max_sources: usize,
}

/// A bucket whose arrival time has passed is full: forgetting it changes nothing.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    next_arrival: Instant,
}

impl Bucket {
    fn full(now: Instant) -> Bucket {
        Bucket { next_arrival: now }
    }

    /// Takes one token if there is one; a refused request takes nothing.
    fn take(&mut self, now: Instant, interval: Duration, tolerance: Duration) -> bool {
        let next = self.next_arrival.max(now);
        if next.saturating_duration_since(now) > tolerance {
            return false;
        }
        self.next_arrival = next + interval;
        true
    }
}

/// The interval and burst tolerance for `requests_per_second` (at least 1).
fn pacing(requests_per_second: u32) -> (Duration, Duration) {
    let second = Duration::from_secs(1);
    let interval = second / requests_per_second.max(1);
    (interval, second.saturating_sub(interval))
}

impl FloodLimiter {
    pub fn new(requests_per_second: u32) -> FloodLimiter {
        FloodLimiter::with_capacity(requests_per_second, MAX_TRACKED_SOURCES)
    }

    fn with_capacity(requests_per_second: u32, max_sources: usize) -> FloodLimiter {
        let (interval, tolerance) = pacing(requests_per_second);
        FloodLimiter {
            interval,
            tolerance,
            buckets: HashMap::new(),
            overflow: None,
            next_sweep: None,
            max_sources,
        }
    }

    /// A new rate (on reload); the buckets keep what they owe.
    pub fn set_rate(&mut self, requests_per_second: u32) {
        (self.interval, self.tolerance) = pacing(requests_per_second);
    }

    /// Whether one more request from `source` at `now` is within its limit (and takes
    /// a token if so). Once per second, full buckets are forgotten; while
    /// the map is full, new sources share one bucket, so a flood from many addresses
    /// is limited as a whole and the sources already known keep their own.
    pub fn admit(&mut self, now: Instant, source: IpAddr) -> bool {
        if self.next_sweep.is_none_or(|at| now >= at) {
            self.sweep(now);
        }
        let (interval, tolerance) = (self.interval, self.tolerance);
        if let Some(bucket) = self.buckets.get_mut(&source) {
            return bucket.take(now, interval, tolerance);
        }
        if self.buckets.len() >= self.max_sources {
            return self
                .overflow
                .get_or_insert_with(|| Bucket::full(now))
                .take(now, interval, tolerance);
        }
        let mut bucket = Bucket::full(now);
        let admitted = bucket.take(now, interval, tolerance);
        self.buckets.insert(source, bucket);
        admitted
    }

    /// Sources with a bucket of their own.
    pub fn tracked_sources(&self) -> usize {
        self.buckets.len()
    }

    fn sweep(&mut self, now: Instant) {
        self.buckets.retain(|_, bucket| bucket.next_arrival > now);
        // After a flood from many addresses, give the table's memory back.
        if self.buckets.capacity() > 64 && self.buckets.len() < self.buckets.capacity() / 4 {
            self.buckets.shrink_to_fit();
        }
        self.next_sweep = Some(now + SWEEP_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn a_source_gets_its_burst_then_its_rate() {
        let mut limiter = FloodLimiter::new(10);
        let t0 = Instant::now();
        let admitted = (0..25).filter(|_| limiter.admit(t0, ip(2))).count();
        assert_eq!(admitted, 10, "the burst is one second's worth");
        // Another source has a bucket of its own.
        assert!(limiter.admit(t0, ip(3)));
        // 100 ms later one more token (10/s) has come back, and no more.
        let t1 = t0 + Duration::from_millis(100);
        assert!(limiter.admit(t1, ip(2)));
        assert!(!limiter.admit(t1, ip(2)));
        // Over a full second at 10/s: 10 admitted of 100 sent evenly.
        let admitted = (1..=100u64)
            .filter(|i| limiter.admit(t1 + Duration::from_millis(10 * i), ip(2)))
            .count();
        assert_eq!(admitted, 10);
    }

    #[test]
    fn idle_sources_are_forgotten_and_a_spoofed_flood_cannot_grow_the_map() {
        let mut limiter = FloodLimiter::with_capacity(2, 100);
        let t0 = Instant::now();
        assert!(
            limiter.admit(t0, ip(1)),
            "the trunk, known before the flood"
        );
        // 10,000 spoofed addresses, one request each, within the same second.
        let spoofed = (0..10_000u32)
            .filter(|i| limiter.admit(t0, IpAddr::from((0x0A00_0000 + i).to_be_bytes())))
            .count();
        assert_eq!(limiter.tracked_sources(), 100, "bounded");
        // 99 got buckets of their own; the rest shared one bucket of 2.
        assert_eq!(spoofed, 99 + 2);
        // The known source keeps its own bucket through the flood.
        assert!(limiter.admit(t0, ip(1)));
        // A second later every idle bucket is gone; the map shrinks back.
        let t1 = t0 + Duration::from_millis(1_500);
        assert!(limiter.admit(t1, ip(1)));
        assert_eq!(limiter.tracked_sources(), 1);
    }

    #[test]
    fn listener_policies_match_wildcards_by_port_and_default_to_reject() {
        let settings = ScreenSettings {
            listeners: vec![
                (
                    Transport::Udp,
                    "127.0.0.1:5060".parse().expect("address"),
                    Untrusted::Drop,
                ),
                (
                    Transport::Tcp,
                    "0.0.0.0:5061".parse().expect("address"),
                    Untrusted::Drop,
                ),
            ],
            ..ScreenSettings::default()
        };
        let at = |a: &str| Some(a.parse().expect("address"));
        assert_eq!(
            settings.untrusted_policy(Transport::Udp, at("127.0.0.1:5060")),
            Untrusted::Drop
        );
        assert_eq!(
            settings.untrusted_policy(Transport::Tcp, at("127.0.0.1:5060")),
            Untrusted::Reject
        );
        assert_eq!(
            settings.untrusted_policy(Transport::Tcp, at("10.1.2.3:5061")),
            Untrusted::Drop
        );
        assert_eq!(
            settings.untrusted_policy(Transport::Udp, None),
            Untrusted::Reject
        );
    }

    #[test]
    fn the_sample_configuration_names_every_built_in_scanner() {
        let sample = include_str!("../../../config/sihai.toml");
        for fragment in KNOWN_SCANNERS {
            assert!(
                sample.contains(&format!(" {fragment},"))
                    || sample.contains(&format!(" {fragment}.")),
                "config/sihai.toml does not list {fragment}"
            );
        }
    }

    #[test]
    fn scanners_are_known_by_any_part_of_their_user_agent() {
        let settings = ScreenSettings {
            scanner_user_agents: vec!["evil-dialer".into()],
            ..ScreenSettings::default()
        };
        assert!(settings.is_scanner("friendly-scanner"));
        assert!(settings.is_scanner("SIPVicious 0.3.4"));
        assert!(settings.is_scanner("sipcli/v1.8"));
        assert!(settings.is_scanner("Evil-Dialer 2.0"));
        assert!(!settings.is_scanner("Huawei SoftX3000 V300R010"));
        assert!(!settings.is_scanner(""));
    }
}

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
            // No limit for a core built without a configuration (tests, benches): at
            // this rate a request's interval is zero. The daemon always configures one.
            max_requests_per_source: u32::MAX,
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
        let agent = user_agent.as_bytes();
        // One pass over the header: only where a built-in fragment could start are the
        // fragments compared.
        let known = agent.iter().enumerate().any(|(at, byte)| {
            KNOWN_FIRST_BYTES[usize::from(byte.to_ascii_lowercase())]
                && KNOWN_SCANNERS
                    .iter()
                    .any(|fragment| starts_with_ignore_ascii_case(&agent[at..], fragment))
        });
        known
            || self.scanner_user_agents.iter().any(|fragment| {
                (0..agent.len()).any(|at| starts_with_ignore_ascii_case(&agent[at..], fragment))
            })
    }
}

/// Which bytes a built-in scanner fragment starts with.
static KNOWN_FIRST_BYTES: [bool; 256] = first_bytes(KNOWN_SCANNERS);

const fn first_bytes(fragments: &[&str]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < fragments.len() {
        let bytes = fragments[i].as_bytes();
        if !bytes.is_empty() {
            table[bytes[0] as usize] = true;
        }
        i += 1;
    }
    table
}

/// `fragment` is lowercase and not empty.
fn starts_with_ignore_ascii_case(text: &[u8], fragment: &str) -> bool {
    let fragment = fragment.as_bytes();
    text.len() >= fragment.len()
        && !fragment.is_empty()
        && text[..fragment.len()].eq_ignore_ascii_case(fragment)
}

/// Sources tracked at once. A flood from spoofed addresses cannot grow the map past
/// this: sources beyond it share one bucket (see [`FloodLimiter::admit`]).
const MAX_TRACKED_SOURCES: usize = 16_384;

const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// What the limiter says about one more request from a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Within the source's limit.
    Within,
    /// Over the limit: only what belongs to a transaction or call already may pass
    /// (telling which takes parsing it).
    Over,
    /// Over twice the limit, counting everything the source sent: dropped before it
    /// is even parsed, so a flood costs the event loop almost nothing.
    Shed,
}

/// Token buckets per source address, kept as the generic cell rate algorithm does:
/// each bucket is one instant, the theoretical arrival time of the source's next
/// request, so the arithmetic is exact. Two per source: the limit (`rate` per second,
/// a burst of `rate`) for the requests it admits, and a ceiling twice as high for every
/// request it sees.
#[derive(Debug)]
pub struct FloodLimiter {
    limit: Pacing,
    ceiling: Pacing,
    buckets: HashMap<IpAddr, Buckets>,
    /// Shared by the sources that arrive while the map is full.
    overflow: Option<Buckets>,
    next_sweep: Option<Instant>,
    max_sources: usize,
}

/// A request's share of a second, and how far ahead of now a bucket's next arrival
/// may be (the burst).
#[derive(Debug, Clone, Copy)]
struct Pacing {
    interval: Duration,
    tolerance: Duration,
}

impl Pacing {
    /// `requests` per second (at least 1) with a burst of one second's worth.
    fn per_second(requests: u32) -> Pacing {
        let second = Duration::from_secs(1);
        let interval = second / requests.max(1);
        Pacing {
            interval,
            tolerance: second.saturating_sub(interval),
        }
    }

    /// Takes one token from the bucket whose next arrival is `next` if it has one; a
    /// refused request takes nothing.
    fn take(self, next: &mut Instant, now: Instant) -> bool {
        let due = (*next).max(now);
        if due.saturating_duration_since(now) > self.tolerance {
            return false;
        }
        *next = due + self.interval;
        true
    }
}

/// A bucket whose arrival time has passed is full: forgetting it changes nothing.
#[derive(Debug, Clone, Copy)]
struct Buckets {
    admitted: Instant,
    seen: Instant,
}

impl Buckets {
    fn full(now: Instant) -> Buckets {
        Buckets {
            admitted: now,
            seen: now,
        }
    }

    fn take(&mut self, now: Instant, limit: Pacing, ceiling: Pacing) -> Admission {
        if !ceiling.take(&mut self.seen, now) {
            Admission::Shed
        } else if limit.take(&mut self.admitted, now) {
            Admission::Within
        } else {
            Admission::Over
        }
    }
}

impl FloodLimiter {
    pub fn new(requests_per_second: u32) -> FloodLimiter {
        FloodLimiter::with_capacity(requests_per_second, MAX_TRACKED_SOURCES)
    }

    fn with_capacity(requests_per_second: u32, max_sources: usize) -> FloodLimiter {
        let mut limiter = FloodLimiter {
            limit: Pacing::per_second(1),
            ceiling: Pacing::per_second(2),
            buckets: HashMap::new(),
            overflow: None,
            next_sweep: None,
            max_sources,
        };
        limiter.set_rate(requests_per_second);
        limiter
    }

    /// A new rate (on reload); the buckets keep what they owe.
    pub fn set_rate(&mut self, requests_per_second: u32) {
        self.limit = Pacing::per_second(requests_per_second);
        self.ceiling = Pacing::per_second(requests_per_second.saturating_mul(2));
    }

    /// Counts one more request from `source` at `now` (one map lookup). Once per
    /// second, full buckets are forgotten; while the map is full, new sources share one
    /// bucket, so a flood from many addresses is limited as a whole and the sources
    /// already known keep their own.
    pub fn admit(&mut self, now: Instant, source: IpAddr) -> Admission {
        if self.next_sweep.is_none_or(|at| now >= at) {
            self.sweep(now);
        }
        let (limit, ceiling) = (self.limit, self.ceiling);
        if let Some(buckets) = self.buckets.get_mut(&source) {
            return buckets.take(now, limit, ceiling);
        }
        if self.buckets.len() >= self.max_sources {
            return self
                .overflow
                .get_or_insert_with(|| Buckets::full(now))
                .take(now, limit, ceiling);
        }
        let mut buckets = Buckets::full(now);
        let admission = buckets.take(now, limit, ceiling);
        self.buckets.insert(source, buckets);
        admission
    }

    /// Sources with a bucket of their own.
    pub fn tracked_sources(&self) -> usize {
        self.buckets.len()
    }

    fn sweep(&mut self, now: Instant) {
        self.buckets
            .retain(|_, buckets| buckets.admitted.max(buckets.seen) > now);
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
        let first: Vec<Admission> = (0..25).map(|_| limiter.admit(t0, ip(2))).collect();
        let count = |a: Admission| first.iter().filter(|&&x| x == a).count();
        assert_eq!(
            count(Admission::Within),
            10,
            "the burst is one second's worth"
        );
        assert_eq!(
            count(Admission::Over),
            10,
            "then up to the ceiling, twice as much"
        );
        assert_eq!(count(Admission::Shed), 5);
        // Another source has buckets of its own.
        assert_eq!(limiter.admit(t0, ip(3)), Admission::Within);
        // 100 a second for three seconds: after the bursts, 10 a second are admitted
        // and 10 more are over the limit; the ceiling (20/s) sheds the other 80.
        let steady: Vec<Admission> = (1..=300u64)
            .map(|i| limiter.admit(t0 + Duration::from_millis(1_000 + 10 * i), ip(2)))
            .skip(100)
            .collect();
        let count = |a: Admission| steady.iter().filter(|&&x| x == a).count();
        assert_eq!(
            (
                count(Admission::Within),
                count(Admission::Over),
                count(Admission::Shed)
            ),
            (20, 20, 160)
        );
    }

    #[test]
    fn the_default_settings_limit_nothing() {
        let mut limiter = FloodLimiter::new(ScreenSettings::default().max_requests_per_source);
        let t0 = Instant::now();
        assert!((0..100_000).all(|_| limiter.admit(t0, ip(1)) == Admission::Within));
    }

    #[test]
    fn idle_sources_are_forgotten_and_a_spoofed_flood_cannot_grow_the_map() {
        let mut limiter = FloodLimiter::with_capacity(2, 100);
        let t0 = Instant::now();
        assert_eq!(
            limiter.admit(t0, ip(1)),
            Admission::Within,
            "the trunk, known before the flood"
        );
        // 10,000 spoofed addresses, one request each, within the same second.
        let spoofed = (0..10_000u32)
            .filter(|i| {
                limiter.admit(t0, IpAddr::from((0x0A00_0000 + i).to_be_bytes()))
                    == Admission::Within
            })
            .count();
        assert_eq!(limiter.tracked_sources(), 100, "bounded");
        // 99 got buckets of their own; the rest shared one bucket of 2.
        assert_eq!(spoofed, 99 + 2);
        // The known source keeps its own bucket through the flood.
        assert_eq!(limiter.admit(t0, ip(1)), Admission::Within);
        // Later every idle bucket is gone; the map shrinks back.
        let t1 = t0 + Duration::from_millis(1_500);
        assert_eq!(limiter.admit(t1, ip(1)), Admission::Within);
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

//! What the daemon tells the relay about a call: the relay's timing ([`RelayConfig`])
//! and, for each leg, what SDP negotiation settled ([`LegMedia`]).
//!
//! Both are checked once, when they are handed over, so the packet path never meets a
//! payload type it cannot write, a packetisation it cannot produce, or two legs it
//! cannot tell apart by port.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use sihai_media::Law;
use sihai_media::rtp::MAX_PAYLOAD_TYPE;
use thiserror::Error;

/// Shortest packetisation the relay produces (RFC 3551 allows 10 ms for G.711).
pub const MIN_PTIME: Duration = Duration::from_millis(10);

/// Longest packetisation the relay produces; beyond this a lost packet is a gap
/// callers notice.
pub const MAX_PTIME: Duration = Duration::from_millis(120);

/// Length of one 8 kHz sample: a ptime must be a whole number of them.
const SAMPLE_PERIOD: Duration = Duration::from_micros(125);

/// How the relay paces what it originates and when it gives up on a silent leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RelayConfig {
    /// A leg expected to send that has sent nothing for this long ends the call
    /// ([`crate::MediaEvent::MediaTimeout`]).
    pub media_timeout: Duration,
    /// Audio per packet the relay originates (ringback, prompts, silence): between
    /// [`MIN_PTIME`] and [`MAX_PTIME`], in whole 125 µs samples. Forwarded packets
    /// keep the size their sender chose.
    pub ptime: Duration,
}

impl Default for RelayConfig {
    /// 30 s media timeout, 20 ms packets.
    fn default() -> RelayConfig {
        RelayConfig {
            media_timeout: Duration::from_secs(30),
            ptime: Duration::from_millis(20),
        }
    }
}

impl RelayConfig {
    /// Checks the config; [`crate::CallMedia::new`] does the same.
    pub fn validate(&self) -> Result<(), RelayError> {
        if self.media_timeout.is_zero() {
            return Err(RelayError::ZeroMediaTimeout);
        }
        let whole_samples = self
            .ptime
            .as_nanos()
            .is_multiple_of(SAMPLE_PERIOD.as_nanos());
        if !(MIN_PTIME..=MAX_PTIME).contains(&self.ptime) || !whole_samples {
            return Err(RelayError::InvalidPtime(self.ptime));
        }
        Ok(())
    }

    /// 8 kHz samples in one originated packet (valid configs only).
    pub(crate) fn samples_per_packet(&self) -> u32 {
        (self.ptime.as_nanos() / SAMPLE_PERIOD.as_nanos()) as u32
    }
}

/// One side of the call, as the relay sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Leg {
    /// The party who dialled the 400 number (through the carrier's trunk).
    Caller,
    /// The enterprise phone the hunt rang (early media, then the answer).
    Phone,
}

impl Leg {
    /// The leg on the other side of the relay.
    pub fn other(self) -> Leg {
        match self {
            Leg::Caller => Leg::Phone,
            Leg::Phone => Leg::Caller,
        }
    }
}

impl fmt::Display for Leg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Leg::Caller => "caller",
            Leg::Phone => "phone",
        })
    }
}

/// What SDP negotiation settled for one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LegMedia {
    /// Our RTP port for this leg (RTCP on the port above), from the daemon's
    /// `PortPool`; packets arriving there belong to this leg.
    pub local_port: u16,
    /// Where the peer's SDP says to send; `None` waits for the peer's first packet
    /// (see [`crate::CallMedia`] on latching).
    pub remote: Option<SocketAddr>,
    /// The G.711 law of the negotiated audio codec.
    pub law: Law,
    /// The negotiated audio payload type (normally the law's static 0 or 8).
    pub payload_type: u8,
    /// The negotiated RFC 4733 telephone-event payload type, if the peer offered it.
    pub telephone_event: Option<u8>,
}

impl LegMedia {
    fn validate(&self, leg: Leg) -> Result<(), RelayError> {
        if self.local_port == 0 || self.local_port == u16::MAX {
            return Err(RelayError::InvalidLocalPort {
                leg,
                port: self.local_port,
            });
        }
        for payload_type in std::iter::once(self.payload_type).chain(self.telephone_event) {
            if payload_type > MAX_PAYLOAD_TYPE {
                return Err(RelayError::PayloadTypeOutOfRange { leg, payload_type });
            }
        }
        if self.telephone_event == Some(self.payload_type) {
            return Err(RelayError::TelephoneEventClash {
                leg,
                payload_type: self.payload_type,
            });
        }
        Ok(())
    }

    /// Checks the caller leg on its own.
    pub(crate) fn validate_caller(&self) -> Result<(), RelayError> {
        self.validate(Leg::Caller)
    }

    /// Checks a phone leg, and that its port pair does not overlap the caller's.
    pub(crate) fn validate_phone(&self, caller: &LegMedia) -> Result<(), RelayError> {
        self.validate(Leg::Phone)?;
        if self.local_port.abs_diff(caller.local_port) < 2 {
            return Err(RelayError::PortsOverlap {
                caller_port: caller.local_port,
                phone_port: self.local_port,
            });
        }
        Ok(())
    }
}

/// Why a config or a leg cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RelayError {
    /// The media timeout is zero, which would end every call at once.
    #[error("media timeout must be longer than zero")]
    ZeroMediaTimeout,
    /// The ptime is out of range or not a whole number of 8 kHz samples.
    #[error("ptime {0:?} is not between 10 ms and 120 ms in whole 125 µs samples")]
    InvalidPtime(Duration),
    /// The local port is 0, or 65535 (no room for RTCP above it).
    #[error("{leg} leg: local port {port} cannot carry RTP with RTCP on the port above")]
    InvalidLocalPort {
        /// The leg whose media was rejected.
        leg: Leg,
        /// The port given.
        port: u16,
    },
    /// A payload type above 127 cannot be written into RTP's 7-bit field.
    #[error("{leg} leg: payload type {payload_type} does not fit the 7-bit RTP field")]
    PayloadTypeOutOfRange {
        /// The leg whose media was rejected.
        leg: Leg,
        /// The payload type given.
        payload_type: u8,
    },
    /// The telephone-event payload type is also the audio payload type.
    #[error(
        "{leg} leg: telephone-event payload type {payload_type} is also the audio payload type"
    )]
    TelephoneEventClash {
        /// The leg whose media was rejected.
        leg: Leg,
        /// The payload type used twice.
        payload_type: u8,
    },
    /// The phone's RTP/RTCP ports overlap the caller's, so packets could not be told
    /// apart.
    #[error("phone leg's ports {phone_port}/+1 overlap the caller leg's ports {caller_port}/+1")]
    PortsOverlap {
        /// The caller leg's RTP port.
        caller_port: u16,
        /// The phone leg's RTP port.
        phone_port: u16,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leg(local_port: u16) -> LegMedia {
        LegMedia {
            local_port,
            remote: None,
            law: Law::Alaw,
            payload_type: 8,
            telephone_event: Some(101),
        }
    }

    #[test]
    fn default_config_is_valid() {
        let config = RelayConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.samples_per_packet(), 160);
    }

    #[test]
    fn ptime_bounds_and_granularity() {
        let with_ptime = |ptime| RelayConfig {
            ptime,
            ..RelayConfig::default()
        };
        for ok_ms in [10, 20, 30, 60, 120] {
            let config = with_ptime(Duration::from_millis(ok_ms));
            assert_eq!(config.validate(), Ok(()), "{ok_ms}");
            assert_eq!(config.samples_per_packet(), ok_ms as u32 * 8);
        }
        assert_eq!(
            with_ptime(Duration::from_micros(20_125)).samples_per_packet(),
            161
        );
        for bad in [
            Duration::from_millis(9),
            Duration::from_millis(121),
            Duration::ZERO,
            Duration::from_micros(20_100),
        ] {
            assert_eq!(
                with_ptime(bad).validate(),
                Err(RelayError::InvalidPtime(bad))
            );
        }
        let no_timeout = RelayConfig {
            media_timeout: Duration::ZERO,
            ..RelayConfig::default()
        };
        assert_eq!(no_timeout.validate(), Err(RelayError::ZeroMediaTimeout));
    }

    #[test]
    fn leg_checks() {
        assert_eq!(leg(20_000).validate_caller(), Ok(()));
        for port in [0, u16::MAX] {
            assert_eq!(
                leg(port).validate_caller(),
                Err(RelayError::InvalidLocalPort {
                    leg: Leg::Caller,
                    port
                })
            );
        }
        let wide = LegMedia {
            payload_type: 128,
            ..leg(20_000)
        };
        assert_eq!(
            wide.validate_caller(),
            Err(RelayError::PayloadTypeOutOfRange {
                leg: Leg::Caller,
                payload_type: 128
            })
        );
        let wide_event = LegMedia {
            telephone_event: Some(200),
            ..leg(20_002)
        };
        assert_eq!(
            wide_event.validate_phone(&leg(20_000)),
            Err(RelayError::PayloadTypeOutOfRange {
                leg: Leg::Phone,
                payload_type: 200
            })
        );
        let clash = LegMedia {
            telephone_event: Some(8),
            ..leg(20_000)
        };
        assert_eq!(
            clash.validate_caller(),
            Err(RelayError::TelephoneEventClash {
                leg: Leg::Caller,
                payload_type: 8
            })
        );
    }

    #[test]
    fn phone_ports_must_not_overlap_the_callers() {
        let caller = leg(20_000);
        for phone_port in [19_999, 20_000, 20_001] {
            assert_eq!(
                leg(phone_port).validate_phone(&caller),
                Err(RelayError::PortsOverlap {
                    caller_port: 20_000,
                    phone_port
                })
            );
        }
        assert_eq!(leg(20_002).validate_phone(&caller), Ok(()));
        assert_eq!(leg(19_998).validate_phone(&caller), Ok(()));
    }

    #[test]
    fn errors_name_the_leg() {
        let error = RelayError::InvalidLocalPort {
            leg: Leg::Phone,
            port: 0,
        };
        assert_eq!(
            error.to_string(),
            "phone leg: local port 0 cannot carry RTP with RTCP on the port above"
        );
        assert_eq!(Leg::Caller.other(), Leg::Phone);
        assert_eq!(Leg::Phone.other(), Leg::Caller);
    }
}

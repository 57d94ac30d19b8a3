//! SDP for sihai's B2BUA: read each leg's session description (RFC 4566), negotiate
//! its one audio stream (RFC 3264 offer/answer) and write sihai's own description
//! pointing at the RTP relay.
//!
//! Every call's media is anchored on sihai's relay, so sihai never forwards a peer's
//! SDP: it reads where the peer wants media ([`SessionDescription::audio`]) and speaks
//! for the relay in its own offers and answers. Only one audio stream is relayed, with
//! PCMU, PCMA and RFC 4733 telephone-events. The crate is pure: text in, values out,
//! text out; no I/O, no clock.
//!
//! ```
//! use sihai_sdp::{Codec, LocalAudio, SessionDescription, accept_answer, build_answer, build_offer};
//!
//! // The caller's offer, as an Asterisk trunk sends it.
//! let offer = SessionDescription::parse(
//!     "v=0\r\n\
//!      o=root 1821 1821 IN IP4 192.0.2.10\r\n\
//!      s=Asterisk PBX\r\n\
//!      c=IN IP4 192.0.2.10\r\n\
//!      t=0 0\r\n\
//!      m=audio 14000 RTP/AVP 0 8 3 101\r\n\
//!      a=rtpmap:101 telephone-event/8000\r\n\
//!      a=fmtp:101 0-16\r\n",
//! )?;
//! let caller = offer.audio().expect("the offer has audio");
//! assert_eq!(caller.rtp_address(), "192.0.2.10:14000".parse()?);
//!
//! // Answer it from the relay: PCMU wins because the caller listed it first.
//! let relay_a = LocalAudio::new("203.0.113.5".parse()?, 30000);
//! let answer = build_answer(&offer, &relay_a, 7, 1)?;
//! assert_eq!((answer.codec, answer.telephone_event), (Codec::Pcmu, Some(101)));
//! assert!(answer.sdp.contains("m=audio 30000 RTP/AVP 0 8 101\r\n"));
//!
//! // Offer only that codec to the called phone, and read its answer.
//! let relay_b = LocalAudio { codecs: vec![answer.codec], ..LocalAudio::new("203.0.113.5".parse()?, 30002) };
//! let our_offer = build_offer(&relay_b, 8, 1)?;
//! assert!(our_offer.contains("m=audio 30002 RTP/AVP 0 101\r\n"));
//! let phone = SessionDescription::parse(
//!     "v=0\no=- 5 5 IN IP4 10.1.1.7\ns=-\nc=IN IP4 10.1.1.7\nt=0 0\nm=audio 7078 RTP/AVP 0 101\na=rtpmap:101 telephone-event/8000\n",
//! )?;
//! let negotiated = accept_answer(&relay_b, &phone)?;
//! assert_eq!(negotiated.codec, Codec::Pcmu);
//! assert_eq!(negotiated.remote.rtp_address(), "10.1.1.7:7078".parse()?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod audio;
mod description;
mod error;
mod negotiate;
mod parse;

pub use audio::{AudioStream, Codec, Direction, NARROWBAND_CLOCK_RATE, RtpCodec};
pub use description::{
    AddressType, Attribute, Connection, Media, Origin, SessionDescription, Timing, UnknownLine,
};
pub use error::{SdpError, SyntaxProblem};
pub use negotiate::{Answer, LocalAudio, Negotiated, accept_answer, build_answer, build_offer};

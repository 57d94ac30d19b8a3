//! Media building blocks for sihai's RTP relay, which anchors the audio of every call:
//! it forwards G.711 between caller and phone (converting A-law ↔ µ-law when the legs
//! disagree), plays ringback and voice-menu prompts to the caller, picks up the
//! caller's DTMF keys and records calls.
//!
//! This crate holds the pure pieces; the relay's state machine is built on them and the
//! daemon owns the sockets, files and clocks. Nothing here does I/O except the WAV
//! recorder, which writes through any `Write + Seek` it is given.
//!
//! - [`rtp`]: zero-copy RTP header parsing, writing and in-place rewriting; RTP/RTCP
//!   demultiplexing.
//! - [`g711`]: bit-exact A-law and µ-law, and table-driven transcoding.
//! - [`tone`]: the Chinese ringback and busy tones (450 Hz).
//! - [`wav`]: reading prompts from WAV files of any common format and rate; writing
//!   crash-tolerant stereo recordings. [`resample`] converts rates.
//! - [`upload`]: an uploaded WAV or MP3 (an enterprise's 彩铃) converted to the 8 kHz
//!   mono WAV sihai stores and plays.
//! - [`prompt`]: audio pre-encoded in both laws and cut in 20 ms frames.
//! - [`dtmf`]: RFC 4733 telephone-events and SIP INFO DTMF bodies.
//! - [`ports`]: the pool of RTP/RTCP port pairs.
//!
//! Forwarding a PCMU packet to a PCMA phone, and detecting a key press:
//!
//! ```
//! use sihai_media::{
//!     DtmfDetector, Law, RtpFields, RtpPacket, TelephoneEvent, rewrite_header, transcode_in_place,
//!     write_rtp_to_vec,
//! };
//!
//! // A 20 ms PCMU packet from the caller (silence, then a loud sample).
//! let mut payload = [Law::Ulaw.silence(); 160];
//! payload[0] = Law::Ulaw.encode(20_000);
//! let mut datagram = Vec::new();
//! let from_caller = RtpFields { marker: false, payload_type: 0, sequence: 7, timestamp: 1120, ssrc: 0xCAFE };
//! write_rtp_to_vec(&mut datagram, &from_caller, &payload)?;
//!
//! // Re-stamp it for the phone's leg and convert the payload in place.
//! let packet = RtpPacket::parse(&datagram)?;
//! let header_len = packet.header_len();
//! assert_eq!(Law::from_payload_type(packet.payload_type()), Some(Law::Ulaw));
//! let to_phone = RtpFields { payload_type: 8, ssrc: 0xBEEF, ..packet.fields() };
//! rewrite_header(&mut datagram, &to_phone)?;
//! if let Some(table) = Law::Ulaw.transcode_table(Law::Alaw) {
//!     transcode_in_place(&mut datagram[header_len..], table);
//! }
//! let forwarded = RtpPacket::parse(&datagram)?;
//! assert_eq!(forwarded.payload_type(), 8);
//! assert_eq!(forwarded.payload()[1], Law::Alaw.silence());
//! assert!((Law::Alaw.decode(forwarded.payload()[0]) - 20_000).abs() < 1024);
//!
//! // The caller presses 1: a start packet, a retransmission, then the end.
//! let mut detector = DtmfDetector::new();
//! let start = TelephoneEvent { event: 1, end: false, volume: 10, duration: 400 }.to_bytes();
//! let end = TelephoneEvent { event: 1, end: true, volume: 10, duration: 800 }.to_bytes();
//! assert_eq!(detector.feed(2000, true, &start)?, Some('1'));
//! assert_eq!(detector.feed(2000, true, &start)?, None);
//! assert_eq!(detector.feed(2000, false, &end)?, None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod dtmf;
pub mod g711;
pub mod ports;
pub mod prompt;
pub mod resample;
pub mod rtp;
pub mod tone;
pub mod upload;
pub mod wav;

pub use dtmf::{
    DTMF_KEYS, DtmfDetector, DtmfError, TelephoneEvent, event_to_key, key_to_event, parse_info_body,
};
pub use g711::{
    ALAW_SILENCE, ALAW_TO_ULAW, Law, ULAW_SILENCE, ULAW_TO_ALAW, alaw_decode, alaw_encode,
    transcode_in_place, ulaw_decode, ulaw_encode,
};
pub use ports::{PoolError, PortPool};
pub use prompt::Prompt;
pub use rtp::{
    RtpError, RtpExtension, RtpFields, RtpPacket, is_rtcp, rewrite_header, write_rtp,
    write_rtp_to_vec,
};
pub use tone::{Cadence, FRAME_SAMPLES, RingbackTone, SAMPLE_RATE, Tone};
pub use upload::{MAX_UPLOAD_SECONDS, UploadError, UploadFormat, convert_upload, encode_wav_mono};
pub use wav::{
    Audio, DEFAULT_MAX_WAV_BYTES, RecorderError, StereoAudio, WavEncoding, WavError, WavFormat,
    WavPcm, WavRecorder, decode_wav, read_wav, read_wav_limited, read_wav_stereo,
};

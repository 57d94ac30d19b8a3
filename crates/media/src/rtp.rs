//! RTP packets (RFC 3550 §5.1) as the relay sees them: a borrowed view to read the
//! header of a received datagram without copying or allocating, a writer for the packets
//! the relay originates (tones, prompts), and an in-place rewrite of the fixed header for
//! the packets it forwards.
//!
//! The relay sees every packet of every call (50 per second per direction), so parsing
//! is a handful of bounds checks over the datagram the socket filled; fields are read
//! from the bytes on demand.
//!
//! RTP and RTCP may share a port (RFC 5761); [`is_rtcp`] tells them apart.

use thiserror::Error;

/// The only RTP version in use (RFC 3550).
pub const RTP_VERSION: u8 = 2;

/// Length of the fixed RTP header, without CSRCs or extension.
pub const FIXED_HEADER_LEN: usize = 12;

/// Largest value of the 7-bit payload type field.
pub const MAX_PAYLOAD_TYPE: u8 = 0x7F;

/// Why bytes are not a usable RTP packet, or a packet cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RtpError {
    /// Fewer bytes than the header (fixed part, CSRCs, extension) declares.
    #[error("RTP packet of {len} bytes is shorter than its {needed}-byte header")]
    Truncated {
        /// Bytes received.
        len: usize,
        /// Bytes the header needs.
        needed: usize,
    },
    /// The version bits are not 2 (STUN, DTLS or garbage on the media port).
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    /// The padding count is zero or larger than what follows the header.
    #[error("RTP padding count {padding} is invalid with {available} bytes after the header")]
    BadPadding {
        /// The padding count, the packet's last byte.
        padding: u8,
        /// Bytes between the end of the header and the end of the packet.
        available: usize,
    },
    /// A payload type above 127 cannot be written into the 7-bit field.
    #[error("payload type {0} does not fit the 7-bit RTP field")]
    PayloadTypeOutOfRange(u8),
    /// The output buffer cannot hold the packet.
    #[error("buffer of {len} bytes cannot hold a {needed}-byte RTP packet")]
    BufferTooSmall {
        /// Size of the buffer.
        len: usize,
        /// Size of the packet.
        needed: usize,
    },
}

/// The header fields the relay sets when it writes or rewrites a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RtpFields {
    /// Marks the first packet of a talkspurt (or of a DTMF event).
    pub marker: bool,
    /// 0..=127; [`write_rtp`] and [`rewrite_header`] reject larger values.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Sampling instant of the first sample, in the clock of the payload type.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
}

/// A header extension (RFC 3550 §5.3.1): the profile-defined 16 bits and the
/// extension's data (a multiple of 4 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpExtension<'a> {
    /// The "defined by profile" field (0xBEDE for RFC 8285 one-byte headers).
    pub profile: u16,
    /// The extension words, without their 4-byte preamble.
    pub data: &'a [u8],
}

/// A validated RTP packet borrowed from a receive buffer.
///
/// [`RtpPacket::parse`] has checked the version, that the CSRC list and extension fit
/// and that the padding count is sane, so the accessors cannot fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    bytes: &'a [u8],
    header_len: usize,
    payload_end: usize,
}

impl<'a> RtpPacket<'a> {
    /// Validates `bytes` as an RTP packet. Does not allocate.
    pub fn parse(bytes: &'a [u8]) -> Result<RtpPacket<'a>, RtpError> {
        if bytes.len() < FIXED_HEADER_LEN {
            return Err(RtpError::Truncated {
                len: bytes.len(),
                needed: FIXED_HEADER_LEN,
            });
        }
        let version = bytes[0] >> 6;
        if version != RTP_VERSION {
            return Err(RtpError::BadVersion(version));
        }
        let csrc_count = usize::from(bytes[0] & 0x0F);
        let mut header_len = FIXED_HEADER_LEN + 4 * csrc_count;
        if bytes[0] & 0x10 != 0 {
            let preamble_end = header_len + 4;
            if bytes.len() < preamble_end {
                return Err(RtpError::Truncated {
                    len: bytes.len(),
                    needed: preamble_end,
                });
            }
            let words = usize::from(u16::from_be_bytes([
                bytes[header_len + 2],
                bytes[header_len + 3],
            ]));
            header_len = preamble_end + 4 * words;
        }
        if bytes.len() < header_len {
            return Err(RtpError::Truncated {
                len: bytes.len(),
                needed: header_len,
            });
        }
        let mut payload_end = bytes.len();
        if bytes[0] & 0x20 != 0 {
            let available = bytes.len() - header_len;
            // The count includes itself, so it is at least 1; it cannot reach into
            // the header.
            let padding = bytes[bytes.len() - 1];
            if padding == 0 || usize::from(padding) > available {
                return Err(RtpError::BadPadding { padding, available });
            }
            payload_end -= usize::from(padding);
        }
        Ok(RtpPacket {
            bytes,
            header_len,
            payload_end,
        })
    }

    /// Always 2: other versions are rejected by [`RtpPacket::parse`].
    pub fn version(&self) -> u8 {
        self.bytes[0] >> 6
    }

    /// Whether the packet carries padding (already stripped from [`Self::payload`]).
    pub fn has_padding(&self) -> bool {
        self.bytes[0] & 0x20 != 0
    }

    /// Number of padding bytes at the end of the packet, including the count byte.
    pub fn padding_len(&self) -> usize {
        self.bytes.len() - self.payload_end
    }

    /// Whether the packet carries a header extension.
    pub fn has_extension(&self) -> bool {
        self.bytes[0] & 0x10 != 0
    }

    /// The header extension, if any.
    pub fn extension(&self) -> Option<RtpExtension<'a>> {
        if !self.has_extension() {
            return None;
        }
        let start = FIXED_HEADER_LEN + 4 * self.csrc_count();
        Some(RtpExtension {
            profile: u16::from_be_bytes([self.bytes[start], self.bytes[start + 1]]),
            data: &self.bytes[start + 4..self.header_len],
        })
    }

    /// Number of contributing sources listed after the fixed header.
    pub fn csrc_count(&self) -> usize {
        usize::from(self.bytes[0] & 0x0F)
    }

    /// The contributing sources, in header order.
    pub fn csrcs(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        let end = FIXED_HEADER_LEN + 4 * self.csrc_count();
        self.bytes[FIXED_HEADER_LEN..end]
            .chunks_exact(4)
            .map(|word| u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
    }

    /// The marker bit.
    pub fn marker(&self) -> bool {
        self.bytes[1] & 0x80 != 0
    }

    /// The 7-bit payload type.
    pub fn payload_type(&self) -> u8 {
        self.bytes[1] & 0x7F
    }

    /// The sequence number.
    pub fn sequence(&self) -> u16 {
        u16::from_be_bytes([self.bytes[2], self.bytes[3]])
    }

    /// The RTP timestamp.
    pub fn timestamp(&self) -> u32 {
        u32::from_be_bytes([self.bytes[4], self.bytes[5], self.bytes[6], self.bytes[7]])
    }

    /// The synchronisation source.
    pub fn ssrc(&self) -> u32 {
        u32::from_be_bytes([self.bytes[8], self.bytes[9], self.bytes[10], self.bytes[11]])
    }

    /// The fields the relay rewrites, as they are in this packet.
    pub fn fields(&self) -> RtpFields {
        RtpFields {
            marker: self.marker(),
            payload_type: self.payload_type(),
            sequence: self.sequence(),
            timestamp: self.timestamp(),
            ssrc: self.ssrc(),
        }
    }

    /// Length of the header: fixed part, CSRCs and extension.
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// The payload, without header and padding.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[self.header_len..self.payload_end]
    }

    /// The whole packet as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// Whether a datagram on a multiplexed RTP/RTCP port is RTCP (RFC 5761 §4).
///
/// RTCP packet types 200..=206 (SR, RR, SDES, BYE, APP, RTPFB, PSFB) and the rest of
/// 192..=223 occupy the second byte where RTP has the marker bit and payload type, so
/// they look like RTP with the marker set and payload type 64..=95 (72..=78 for the
/// types in use); RFC 5761 forbids those payload types on a multiplexed session. A
/// datagram that is not version 2 or is shorter than the smallest RTCP packet (an
/// empty receiver report, 8 bytes) is not RTCP.
pub fn is_rtcp(packet: &[u8]) -> bool {
    packet.len() >= 8 && packet[0] >> 6 == RTP_VERSION && (192..=223).contains(&packet[1])
}

fn header_bytes(fields: &RtpFields) -> Result<[u8; FIXED_HEADER_LEN], RtpError> {
    if fields.payload_type > MAX_PAYLOAD_TYPE {
        return Err(RtpError::PayloadTypeOutOfRange(fields.payload_type));
    }
    let mut header = [0u8; FIXED_HEADER_LEN];
    header[0] = RTP_VERSION << 6;
    header[1] = (u8::from(fields.marker) << 7) | fields.payload_type;
    header[2..4].copy_from_slice(&fields.sequence.to_be_bytes());
    header[4..8].copy_from_slice(&fields.timestamp.to_be_bytes());
    header[8..12].copy_from_slice(&fields.ssrc.to_be_bytes());
    Ok(header)
}

/// Writes a packet with a 12-byte header (no padding, CSRCs or extension) followed
/// by `payload` at the start of `buf`; returns the packet's length.
pub fn write_rtp(buf: &mut [u8], fields: &RtpFields, payload: &[u8]) -> Result<usize, RtpError> {
    let header = header_bytes(fields)?;
    let needed = FIXED_HEADER_LEN + payload.len();
    let Some(packet) = buf.get_mut(..needed) else {
        return Err(RtpError::BufferTooSmall {
            len: buf.len(),
            needed,
        });
    };
    packet[..FIXED_HEADER_LEN].copy_from_slice(&header);
    packet[FIXED_HEADER_LEN..].copy_from_slice(payload);
    Ok(needed)
}

/// Like [`write_rtp`], appending to `out`; returns the number of bytes appended.
pub fn write_rtp_to_vec(
    out: &mut Vec<u8>,
    fields: &RtpFields,
    payload: &[u8],
) -> Result<usize, RtpError> {
    let header = header_bytes(fields)?;
    out.reserve(FIXED_HEADER_LEN + payload.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(payload);
    Ok(FIXED_HEADER_LEN + payload.len())
}

/// Overwrites the marker, payload type, sequence number, timestamp and SSRC of an RTP
/// packet in place, keeping its padding, CSRCs, extension and payload, so a forwarded
/// packet is re-stamped for the other leg without copying.
///
/// Only checks what it touches (length and version): call it on a packet that
/// [`RtpPacket::parse`] accepted.
pub fn rewrite_header(packet: &mut [u8], fields: &RtpFields) -> Result<(), RtpError> {
    let header = header_bytes(fields)?;
    if packet.len() < FIXED_HEADER_LEN {
        return Err(RtpError::Truncated {
            len: packet.len(),
            needed: FIXED_HEADER_LEN,
        });
    }
    let version = packet[0] >> 6;
    if version != RTP_VERSION {
        return Err(RtpError::BadVersion(version));
    }
    packet[1..FIXED_HEADER_LEN].copy_from_slice(&header[1..]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: RtpFields = RtpFields {
        marker: true,
        payload_type: 8,
        sequence: 0x1234,
        timestamp: 0xDEAD_BEEF,
        ssrc: 0x0102_0304,
    };

    #[test]
    fn parses_a_plain_packet() {
        let bytes = [
            0x80, 0x88, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3, 4, 0xD5, 0xD5,
        ];
        let packet = RtpPacket::parse(&bytes).unwrap();
        assert_eq!(packet.version(), 2);
        assert!(packet.marker());
        assert_eq!(packet.payload_type(), 8);
        assert_eq!(packet.sequence(), 0x1234);
        assert_eq!(packet.timestamp(), 0xDEAD_BEEF);
        assert_eq!(packet.ssrc(), 0x0102_0304);
        assert_eq!(packet.header_len(), 12);
        assert_eq!(packet.payload(), &[0xD5, 0xD5]);
        assert_eq!(packet.fields(), FIELDS);
        assert!(!packet.has_padding() && !packet.has_extension());
        assert_eq!(packet.extension(), None);
        assert_eq!(packet.csrcs().len(), 0);
        assert_eq!(packet.as_bytes(), &bytes);
    }

    #[test]
    fn header_only_packet_has_empty_payload() {
        let bytes = [0x80, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(RtpPacket::parse(&bytes).unwrap().payload(), &[] as &[u8]);
    }

    #[test]
    fn strips_padding() {
        let mut bytes = vec![0xA0, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(&[9, 9, 9, 0, 0, 3]);
        let packet = RtpPacket::parse(&bytes).unwrap();
        assert!(packet.has_padding());
        assert_eq!(packet.padding_len(), 3);
        assert_eq!(packet.payload(), &[9, 9, 9]);
    }

    #[test]
    fn padding_may_fill_everything_after_the_header() {
        let bytes = [0xA0, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4];
        assert_eq!(RtpPacket::parse(&bytes).unwrap().payload(), &[] as &[u8]);
    }

    #[test]
    fn rejects_bad_padding() {
        let header = [0xA0, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut zero = header.to_vec();
        zero.extend_from_slice(&[1, 2, 0]);
        assert_eq!(
            RtpPacket::parse(&zero),
            Err(RtpError::BadPadding {
                padding: 0,
                available: 3
            })
        );
        let mut too_long = header.to_vec();
        too_long.extend_from_slice(&[1, 2, 4]);
        assert_eq!(
            RtpPacket::parse(&too_long),
            Err(RtpError::BadPadding {
                padding: 4,
                available: 3
            })
        );
        // Padding flag with nothing after the header: the count would be inside it.
        assert_eq!(
            RtpPacket::parse(&header),
            Err(RtpError::BadPadding {
                padding: 0,
                available: 0
            })
        );
    }

    #[test]
    fn reads_csrcs() {
        let mut bytes = vec![0x82, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(&[0, 0, 0, 7, 0xFF, 0xFF, 0xFF, 0xFF, 0xAB]);
        let packet = RtpPacket::parse(&bytes).unwrap();
        assert_eq!(packet.csrc_count(), 2);
        assert_eq!(packet.csrcs().collect::<Vec<_>>(), vec![7, u32::MAX]);
        assert_eq!(packet.header_len(), 20);
        assert_eq!(packet.payload(), &[0xAB]);
    }

    #[test]
    fn skips_the_extension() {
        // One CSRC, then a 2-word extension, then the payload.
        let mut bytes = vec![0x91, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(&[0, 0, 0, 5]);
        bytes.extend_from_slice(&[0xBE, 0xDE, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8]);
        bytes.extend_from_slice(&[0x55, 0x66]);
        let packet = RtpPacket::parse(&bytes).unwrap();
        assert_eq!(packet.header_len(), 28);
        assert_eq!(
            packet.extension(),
            Some(RtpExtension {
                profile: 0xBEDE,
                data: &[1, 2, 3, 4, 5, 6, 7, 8]
            })
        );
        assert_eq!(packet.payload(), &[0x55, 0x66]);
    }

    #[test]
    fn extension_padding_and_csrcs_together() {
        let mut bytes = vec![0xB1, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(&[0, 0, 0, 5]);
        bytes.extend_from_slice(&[0x10, 0x00, 0, 0]);
        bytes.extend_from_slice(&[1, 2, 3, 0, 2]);
        let packet = RtpPacket::parse(&bytes).unwrap();
        assert_eq!(packet.extension().unwrap().data, &[] as &[u8]);
        assert_eq!(packet.payload(), &[1, 2, 3]);
        // Padding cannot eat into the extension.
        let last = bytes.len() - 1;
        bytes[last] = 6;
        assert_eq!(
            RtpPacket::parse(&bytes),
            Err(RtpError::BadPadding {
                padding: 6,
                available: 5
            })
        );
    }

    #[test]
    fn rejects_malformed_packets() {
        assert_eq!(
            RtpPacket::parse(&[]),
            Err(RtpError::Truncated { len: 0, needed: 12 })
        );
        assert_eq!(
            RtpPacket::parse(&[0x80; 11]),
            Err(RtpError::Truncated {
                len: 11,
                needed: 12
            })
        );
        let mut v1 = [0u8; 20];
        v1[0] = 0x40;
        assert_eq!(RtpPacket::parse(&v1), Err(RtpError::BadVersion(1)));
        v1[0] = 0x00;
        assert_eq!(RtpPacket::parse(&v1), Err(RtpError::BadVersion(0)));
        // Fifteen CSRCs declared, none present.
        let mut csrcs = [0u8; 16];
        csrcs[0] = 0x8F;
        assert_eq!(
            RtpPacket::parse(&csrcs),
            Err(RtpError::Truncated {
                len: 16,
                needed: 72
            })
        );
        // Extension flag without room for its preamble.
        let mut no_preamble = [0u8; 14];
        no_preamble[0] = 0x90;
        assert_eq!(
            RtpPacket::parse(&no_preamble),
            Err(RtpError::Truncated {
                len: 14,
                needed: 16
            })
        );
        // Extension declaring more words than present.
        let mut long_extension = vec![0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF];
        long_extension.extend_from_slice(&[0; 8]);
        assert_eq!(
            RtpPacket::parse(&long_extension),
            Err(RtpError::Truncated {
                len: 24,
                needed: 16 + 4 * 0xFFFF
            })
        );
    }

    #[test]
    fn writes_a_packet() {
        let mut buf = [0u8; 64];
        let len = write_rtp(&mut buf, &FIELDS, &[1, 2, 3]).unwrap();
        assert_eq!(len, 15);
        assert_eq!(
            &buf[..len],
            &[
                0x80, 0x88, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3, 4, 1, 2, 3
            ]
        );
        let mut vec = vec![0xEE];
        assert_eq!(write_rtp_to_vec(&mut vec, &FIELDS, &[1, 2, 3]).unwrap(), 15);
        assert_eq!(&vec[1..], &buf[..len]);
    }

    #[test]
    fn writer_rejects_small_buffers_and_wide_payload_types() {
        let mut buf = [0u8; 14];
        assert_eq!(
            write_rtp(&mut buf, &FIELDS, &[1, 2, 3]),
            Err(RtpError::BufferTooSmall {
                len: 14,
                needed: 15
            })
        );
        let wide = RtpFields {
            payload_type: 128,
            ..FIELDS
        };
        assert_eq!(
            write_rtp(&mut [0u8; 64], &wide, &[]),
            Err(RtpError::PayloadTypeOutOfRange(128))
        );
        assert_eq!(
            write_rtp_to_vec(&mut Vec::new(), &wide, &[]),
            Err(RtpError::PayloadTypeOutOfRange(128))
        );
        assert_eq!(
            rewrite_header(&mut [0x80; 12], &wide),
            Err(RtpError::PayloadTypeOutOfRange(128))
        );
    }

    #[test]
    fn rewrites_in_place_keeping_flags_csrcs_and_payload() {
        let mut bytes = vec![0xB1, 0x00, 0, 1, 0, 0, 0, 9, 0, 0, 0, 9];
        bytes.extend_from_slice(&[0, 0, 0, 5, 0x10, 0x00, 0, 0, 1, 2, 3, 0, 2]);
        let original = bytes.clone();
        rewrite_header(&mut bytes, &FIELDS).unwrap();
        let packet = RtpPacket::parse(&bytes).unwrap();
        assert_eq!(packet.fields(), FIELDS);
        assert_eq!(packet.csrcs().collect::<Vec<_>>(), vec![5]);
        assert_eq!(packet.payload(), &[1, 2, 3]);
        assert_eq!(bytes[0], original[0]);
        assert_eq!(&bytes[12..], &original[12..]);
    }

    #[test]
    fn rewrite_rejects_what_it_cannot_touch() {
        assert_eq!(
            rewrite_header(&mut [0x80; 11], &FIELDS),
            Err(RtpError::Truncated {
                len: 11,
                needed: 12
            })
        );
        assert_eq!(
            rewrite_header(&mut [0x40; 12], &FIELDS),
            Err(RtpError::BadVersion(1))
        );
    }

    #[test]
    fn tells_rtcp_from_rtp() {
        let mut receiver_report = [0x80, 201, 0, 1, 0, 0, 0, 1];
        assert!(is_rtcp(&receiver_report));
        for packet_type in 200..=206u8 {
            receiver_report[1] = packet_type;
            assert!(is_rtcp(&receiver_report), "{packet_type}");
        }
        // PCMA with and without the marker bit, and the dynamic telephone-event type.
        for second in [0x08, 0x88, 101, 0x80 | 101, 0x80 | 127, 0x80 | 63] {
            receiver_report[1] = second;
            assert!(!is_rtcp(&receiver_report), "{second}");
        }
        receiver_report[1] = 200;
        assert!(!is_rtcp(&receiver_report[..7]));
        receiver_report[0] = 0x40;
        assert!(!is_rtcp(&receiver_report));
    }
}

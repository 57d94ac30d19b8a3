//! RTP packets round-trip through the writer and the parser, any byte string is either
//! rejected or parsed into a consistent view, and an in-place rewrite changes exactly
//! the fixed header fields.

use proptest::prelude::*;
use sihai_media::{
    RtpError, RtpFields, RtpPacket, is_rtcp, rewrite_header, write_rtp, write_rtp_to_vec,
};

fn fields() -> impl Strategy<Value = RtpFields> {
    (
        any::<bool>(),
        0u8..=127,
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(marker, payload_type, sequence, timestamp, ssrc)| RtpFields {
                marker,
                payload_type,
                sequence,
                timestamp,
                ssrc,
            },
        )
}

/// A packet with optional CSRCs, extension and padding, built by hand.
fn full_packet(
    fields: &RtpFields,
    csrcs: &[u32],
    extension: Option<(u16, Vec<u8>)>,
    payload: &[u8],
    padding: u8,
) -> Vec<u8> {
    let mut bytes = Vec::new();
    write_rtp_to_vec(&mut bytes, fields, &[]).unwrap();
    bytes[0] |= csrcs.len() as u8;
    for csrc in csrcs {
        bytes.extend_from_slice(&csrc.to_be_bytes());
    }
    if let Some((profile, data)) = &extension {
        bytes[0] |= 0x10;
        bytes.extend_from_slice(&profile.to_be_bytes());
        bytes.extend_from_slice(&((data.len() / 4) as u16).to_be_bytes());
        bytes.extend_from_slice(data);
    }
    bytes.extend_from_slice(payload);
    if padding > 0 {
        bytes[0] |= 0x20;
        bytes.extend(std::iter::repeat_n(0, usize::from(padding) - 1));
        bytes.push(padding);
    }
    bytes
}

proptest! {
    #[test]
    fn written_packets_parse_back(fields in fields(), payload in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut buf = vec![0u8; 12 + payload.len() + 7];
        let len = write_rtp(&mut buf, &fields, &payload).unwrap();
        prop_assert_eq!(len, 12 + payload.len());
        let packet = RtpPacket::parse(&buf[..len]).unwrap();
        prop_assert_eq!(packet.fields(), fields);
        prop_assert_eq!(packet.payload(), &payload[..]);
        prop_assert_eq!(packet.header_len(), 12);
        prop_assert!(!packet.has_padding() && !packet.has_extension() && packet.csrc_count() == 0);
        let mut vec = Vec::new();
        prop_assert_eq!(write_rtp_to_vec(&mut vec, &fields, &payload).unwrap(), len);
        prop_assert_eq!(&vec[..], &buf[..len]);
    }

    #[test]
    fn full_packets_parse_back(
        fields in fields(),
        csrcs in prop::collection::vec(any::<u32>(), 0..=15),
        extension in prop::option::of((any::<u16>(), prop::collection::vec(any::<u8>(), 0..5).prop_map(|words| {
            words.iter().flat_map(|&w| [w, w ^ 0xFF, w.wrapping_add(1), 0]).collect::<Vec<u8>>()
        }))),
        payload in prop::collection::vec(any::<u8>(), 0..200),
        padding in 0u8..=255,
    ) {
        let bytes = full_packet(&fields, &csrcs, extension.clone(), &payload, padding);
        let packet = RtpPacket::parse(&bytes).unwrap();
        prop_assert_eq!(packet.fields(), fields);
        prop_assert_eq!(packet.csrcs().collect::<Vec<_>>(), csrcs.clone());
        prop_assert_eq!(packet.extension().map(|e| (e.profile, e.data.to_vec())), extension.clone());
        prop_assert_eq!(packet.payload(), &payload[..]);
        prop_assert_eq!(packet.padding_len(), usize::from(padding));
        prop_assert_eq!(packet.header_len() + payload.len() + usize::from(padding), bytes.len());

        // Rewriting the header keeps everything after it.
        let mut rewritten = bytes.clone();
        let new_fields = RtpFields { marker: !fields.marker, payload_type: 8, sequence: fields.sequence.wrapping_add(1), timestamp: !fields.timestamp, ssrc: 42 };
        rewrite_header(&mut rewritten, &new_fields).unwrap();
        let again = RtpPacket::parse(&rewritten).unwrap();
        prop_assert_eq!(again.fields(), new_fields);
        prop_assert_eq!(again.payload(), &payload[..]);
        prop_assert_eq!(rewritten[0], bytes[0]);
        prop_assert_eq!(&rewritten[12..], &bytes[12..]);
    }

    #[test]
    fn any_bytes_parse_consistently_or_fail(bytes in prop::collection::vec(any::<u8>(), 0..120)) {
        match RtpPacket::parse(&bytes) {
            Ok(packet) => {
                prop_assert_eq!(packet.version(), 2);
                prop_assert!(packet.header_len() >= 12 + 4 * packet.csrc_count());
                prop_assert_eq!(packet.header_len() + packet.payload().len() + packet.padding_len(), bytes.len());
                prop_assert_eq!(packet.has_padding(), packet.padding_len() > 0);
            }
            Err(RtpError::BadVersion(version)) => prop_assert_ne!(version, 2),
            Err(RtpError::Truncated { len, needed }) => prop_assert!(len < needed && len == bytes.len()),
            Err(RtpError::BadPadding { padding, available }) => prop_assert!(padding == 0 || usize::from(padding) > available),
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }

    #[test]
    fn truncating_a_valid_packet_never_panics(fields in fields(), payload in prop::collection::vec(any::<u8>(), 0..40), cut in 0usize..60) {
        let bytes = full_packet(&fields, &[1, 2], Some((0xBEDE, vec![1, 2, 3, 4])), &payload, 3);
        let cut = cut.min(bytes.len());
        let _ = RtpPacket::parse(&bytes[..cut]);
    }

    #[test]
    fn rtp_with_allowed_payload_types_is_never_rtcp(fields in fields().prop_filter("RFC 5761 forbids 64-95", |f| !(64..=95).contains(&f.payload_type))) {
        let mut bytes = Vec::new();
        write_rtp_to_vec(&mut bytes, &fields, &[0xD5; 160]).unwrap();
        prop_assert!(!is_rtcp(&bytes));
    }
}

#[test]
fn rtcp_compound_packet_is_rtcp() {
    // A receiver report with no blocks followed by an SDES, as phones send them.
    let compound = [
        0x80, 201, 0x00, 0x01, 0, 0, 0, 1, 0x81, 202, 0x00, 0x02, 0, 0, 0, 1, 1, 1, b'a', 0,
    ];
    assert!(is_rtcp(&compound));
    assert!(
        RtpPacket::parse(&compound).is_ok(),
        "RTCP also parses as RTP: demultiplex first"
    );
}

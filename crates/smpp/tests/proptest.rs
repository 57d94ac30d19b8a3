//! Any bytes decode to a PDU or an error without panicking, what the codec writes it
//! reads back unchanged, and any text splits into parts that each fit and decode alone.

use std::time::Instant;

use proptest::prelude::*;
use sihai_smpp::pdu::{Bind, ShortMessage, Tlv, frame_length};
use sihai_smpp::text::{decode_ucs2, split_ucs2};
use sihai_smpp::{Body, Pdu, Session, SessionConfig};

fn c_string(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[ -~]{{0,{max}}}")).expect("regex")
}

fn tlvs() -> impl Strategy<Value = Vec<Tlv>> {
    proptest::collection::vec(
        (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..20))
            .prop_map(|(tag, value)| Tlv { tag, value }),
        0..3,
    )
}

fn short_message() -> impl Strategy<Value = ShortMessage> {
    (
        (c_string(5), any::<[u8; 4]>(), c_string(20), c_string(20)),
        (
            any::<[u8; 3]>(),
            c_string(16),
            c_string(16),
            any::<[u8; 4]>(),
        ),
        proptest::collection::vec(any::<u8>(), 0..=254),
        tlvs(),
    )
        .prop_map(
            |(
                (service_type, addr, source_addr, destination_addr),
                (flags, schedule, validity, more),
                short_message,
                tlvs,
            )| ShortMessage {
                service_type,
                source_addr_ton: addr[0],
                source_addr_npi: addr[1],
                source_addr,
                dest_addr_ton: addr[2],
                dest_addr_npi: addr[3],
                destination_addr,
                esm_class: flags[0],
                protocol_id: flags[1],
                priority_flag: flags[2],
                schedule_delivery_time: schedule,
                validity_period: validity,
                registered_delivery: more[0],
                replace_if_present_flag: more[1],
                data_coding: more[2],
                sm_default_msg_id: more[3],
                short_message,
                tlvs,
            },
        )
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        Just(Body::GenericNack),
        Just(Body::DeliverSmResp),
        Just(Body::Unbind),
        Just(Body::UnbindResp),
        Just(Body::EnquireLink),
        Just(Body::EnquireLinkResp),
        (
            c_string(15),
            c_string(8),
            c_string(12),
            any::<[u8; 3]>(),
            c_string(40)
        )
            .prop_map(
                |(system_id, password, system_type, numbers, address_range)| {
                    Body::BindTransmitter(Bind {
                        system_id,
                        password,
                        system_type,
                        interface_version: numbers[0],
                        addr_ton: numbers[1],
                        addr_npi: numbers[2],
                        address_range,
                    })
                }
            ),
        (c_string(15), tlvs())
            .prop_map(|(system_id, tlvs)| Body::BindTransmitterResp { system_id, tlvs }),
        c_string(64).prop_map(|message_id| Body::SubmitSmResp { message_id }),
        short_message().prop_map(Body::SubmitSm),
        short_message().prop_map(Body::DeliverSm),
    ]
}

proptest! {
    #[test]
    fn any_bytes_decode_to_a_pdu_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Pdu::decode(&bytes);
        let _ = frame_length(&bytes);
    }

    #[test]
    fn a_valid_header_over_any_body_never_panics(command_id in prop_oneof![
            Just(0x8000_0000u32), Just(2), Just(0x8000_0002), Just(4), Just(0x8000_0004),
            Just(5), Just(0x8000_0005), Just(6), Just(0x8000_0006), Just(0x15), Just(0x8000_0015),
            any::<u32>()],
        command_status in prop_oneof![Just(0u32), any::<u32>()],
        body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut frame = ((body.len() + 16) as u32).to_be_bytes().to_vec();
        frame.extend(command_id.to_be_bytes());
        frame.extend(command_status.to_be_bytes());
        frame.extend(1u32.to_be_bytes());
        frame.extend(&body);
        let _ = Pdu::decode(&frame);
    }

    #[test]
    fn encode_then_decode_gives_the_same_pdu(body in body(), status in any::<u32>(), sequence in any::<u32>()) {
        let pdu = Pdu { command_status: status, sequence_number: sequence, body };
        let bytes = pdu.encode().expect("fields within their sizes encode");
        prop_assert_eq!(frame_length(&bytes), Ok(Some(bytes.len())));
        prop_assert_eq!(Pdu::decode(&bytes), Ok(pdu));
    }

    #[test]
    fn a_bound_session_survives_any_input(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
        let now = Instant::now();
        let mut session = Session::new(SessionConfig::default(), now);
        session.handle_timeout(now);
        session.handle_connected(now);
        for chunk in chunks {
            session.handle_input(&chunk, now);
            while session.poll_transmit().is_some() {}
            while session.poll_event().is_some() {}
        }
    }

    #[test]
    fn any_text_splits_into_parts_that_fit_and_decode_alone(text in "\\PC{1,400}", reference in any::<u8>()) {
        let parts = split_ucs2(&text, reference).expect("at most 400 characters fit in 255 parts");
        let mut joined = String::new();
        for part in &parts {
            prop_assert!(part.short_message.len() <= 140);
            prop_assert_eq!(part.has_udh, parts.len() > 1);
            let piece = decode_ucs2(&part.short_message, part.has_udh);
            prop_assert!(piece.is_some(), "each part is whole UTF-16");
            joined.push_str(&piece.unwrap_or_default());
        }
        prop_assert_eq!(joined, text);
    }
}

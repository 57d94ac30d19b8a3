//! The session on a virtual clock: every byte it writes is decoded and checked, every
//! answer from the "SMSC" is a PDU the test encodes.

use std::time::{Duration, Instant};

use sihai_smpp::pdu::{ShortMessage, Tlv, esm_class, status, tlv_tag};
use sihai_smpp::text::decode_ucs2;
use sihai_smpp::{
    Body, CloseReason, DeliveryState, Event, OutgoingSms, Pdu, PduError, Session, SessionConfig,
    SessionState, SubmitError, SubmitFailure,
};

fn config() -> SessionConfig {
    SessionConfig {
        system_id: "sihai".into(),
        password: "secret".into(),
        system_type: "400".into(),
        source_addr: "10690400".into(),
        enquire_link_interval: Duration::from_secs(30),
        response_timeout: Duration::from_secs(5),
        reconnect_initial: Duration::from_secs(1),
        reconnect_max: Duration::from_secs(8),
        messages_per_second: 100,
        max_in_flight: 10,
        ..SessionConfig::default()
    }
}

fn events(session: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| session.poll_event()).collect()
}

fn sent(session: &mut Session) -> Vec<Pdu> {
    std::iter::from_fn(|| session.poll_transmit())
        .map(|bytes| Pdu::decode(&bytes).expect("the session writes valid PDUs"))
        .collect()
}

fn reply(session: &mut Session, sequence: u32, command_status: u32, body: Body, now: Instant) {
    let bytes = Pdu {
        command_status,
        sequence_number: sequence,
        body,
    }
    .encode()
    .expect("encodes");
    session.handle_input(&bytes, now);
}

fn sms(key: u64, text: &str) -> OutgoingSms {
    OutgoingSms {
        key,
        destination: "8613800138000".into(),
        text: text.into(),
    }
}

/// Connects and binds; returns the session and the bind's sequence number.
fn bound(config: SessionConfig, now: Instant) -> Session {
    let mut session = Session::new(config, now);
    assert_eq!(session.poll_timeout(), Some(now));
    session.handle_timeout(now);
    assert_eq!(events(&mut session), vec![Event::Connect]);
    assert_eq!(session.state(), SessionState::Connecting);
    session.handle_connected(now);
    let pdus = sent(&mut session);
    assert_eq!(pdus.len(), 1);
    let Body::BindTransmitter(bind) = &pdus[0].body else {
        panic!("expected bind_transmitter, got {:?}", pdus[0]);
    };
    assert_eq!(bind.system_id, "sihai");
    assert_eq!(bind.password, "secret");
    assert_eq!(bind.system_type, "400");
    assert_eq!(bind.interface_version, 0x34);
    reply(
        &mut session,
        pdus[0].sequence_number,
        status::ESME_ROK,
        Body::BindTransmitterResp {
            system_id: "SMSC".into(),
            tlvs: vec![],
        },
        now,
    );
    assert_eq!(
        events(&mut session),
        vec![Event::Bound {
            smsc_system_id: "SMSC".into()
        }]
    );
    assert_eq!(session.state(), SessionState::Bound);
    session
}

fn submit_sm(pdu: &Pdu) -> &ShortMessage {
    match &pdu.body {
        Body::SubmitSm(message) => message,
        other => panic!("expected submit_sm, got {other:?}"),
    }
}

#[test]
fn a_message_queued_before_the_bind_goes_out_as_ucs2_and_its_response_gives_the_message_id() {
    let start = Instant::now();
    let mut session = Session::new(config(), start);
    session
        .submit(sms(42, "4001234567 来电未接"), start)
        .expect("queued");
    assert!(
        session.poll_transmit().is_none(),
        "nothing is sent before the bind"
    );
    session.handle_timeout(start);
    session.handle_connected(start);
    let bind = sent(&mut session);
    reply(
        &mut session,
        bind[0].sequence_number,
        0,
        Body::BindTransmitterResp {
            system_id: "SMSC".into(),
            tlvs: vec![],
        },
        start,
    );
    let pdus = sent(&mut session);
    assert_eq!(pdus.len(), 1);
    let message = submit_sm(&pdus[0]);
    assert_eq!(message.data_coding, 0x08);
    assert_eq!(message.esm_class, 0);
    assert_eq!(message.registered_delivery, 1);
    assert_eq!(message.source_addr, "10690400");
    assert_eq!(message.destination_addr, "8613800138000");
    assert_eq!(
        decode_ucs2(&message.short_message, false).as_deref(),
        Some("4001234567 来电未接")
    );
    assert_ne!(pdus[0].sequence_number, bind[0].sequence_number);
    events(&mut session);
    reply(
        &mut session,
        pdus[0].sequence_number,
        0,
        Body::SubmitSmResp {
            message_id: "m-1".into(),
        },
        start,
    );
    assert_eq!(
        events(&mut session),
        vec![Event::Submitted {
            key: 42,
            message_ids: vec!["m-1".into()]
        }]
    );
    assert_eq!(session.pending_messages(), 0);
}

#[test]
fn a_long_message_goes_in_concatenated_parts_and_succeeds_when_every_part_is_accepted() {
    let now = Instant::now();
    let mut session = bound(config(), now);
    let text = "您好，".repeat(30); // 90 units: two parts
    session.submit(sms(7, &text), now).expect("queued");
    let pdus = sent(&mut session);
    assert_eq!(pdus.len(), 2);
    let mut joined = String::new();
    for (index, pdu) in pdus.iter().enumerate() {
        let message = submit_sm(pdu);
        assert_eq!(message.esm_class, esm_class::UDHI);
        assert_eq!(&message.short_message[..5], &[5, 0, 3, 0, 2]);
        assert_eq!(message.short_message[5] as usize, index + 1);
        joined.push_str(&decode_ucs2(&message.short_message, true).expect("utf-16"));
    }
    assert_eq!(joined, text);
    // Answers in reverse order still map each id to its part.
    reply(
        &mut session,
        pdus[1].sequence_number,
        0,
        Body::SubmitSmResp {
            message_id: "b".into(),
        },
        now,
    );
    assert!(events(&mut session).is_empty(), "one part is still out");
    reply(
        &mut session,
        pdus[0].sequence_number,
        0,
        Body::SubmitSmResp {
            message_id: "a".into(),
        },
        now,
    );
    assert_eq!(
        events(&mut session),
        vec![Event::Submitted {
            key: 7,
            message_ids: vec!["a".into(), "b".into()]
        }]
    );
    // The next long message gets the next concatenation reference.
    session.submit(sms(8, &text), now).expect("queued");
    let pdus = sent(&mut session);
    assert_eq!(submit_sm(&pdus[0]).short_message[3], 1);
}

#[test]
fn a_rejected_part_fails_the_whole_message_once() {
    let now = Instant::now();
    let mut session = bound(config(), now);
    session
        .submit(sms(9, &"长".repeat(150)), now)
        .expect("queued");
    let pdus = sent(&mut session);
    assert_eq!(pdus.len(), 3);
    reply(
        &mut session,
        pdus[0].sequence_number,
        status::ESME_RTHROTTLED,
        Body::SubmitSmResp {
            message_id: String::new(),
        },
        now,
    );
    reply(
        &mut session,
        pdus[1].sequence_number,
        0,
        Body::SubmitSmResp {
            message_id: "x".into(),
        },
        now,
    );
    assert_eq!(
        events(&mut session),
        vec![Event::SubmitFailed {
            key: 9,
            failure: SubmitFailure::Rejected {
                status: status::ESME_RTHROTTLED
            }
        }]
    );
    // A generic_nack for a submit is a rejection too.
    session.submit(sms(10, "短"), now).expect("queued");
    let pdus = sent(&mut session);
    reply(
        &mut session,
        pdus[0].sequence_number,
        status::ESME_RINVCMDID,
        Body::GenericNack,
        now,
    );
    assert_eq!(
        events(&mut session),
        vec![Event::SubmitFailed {
            key: 10,
            failure: SubmitFailure::Rejected {
                status: status::ESME_RINVCMDID
            }
        }]
    );
}

#[test]
fn a_submit_without_response_times_out_after_the_response_timeout() {
    let now = Instant::now();
    let mut session = bound(config(), now);
    session.submit(sms(1, "未接来电"), now).expect("queued");
    sent(&mut session);
    assert_eq!(session.poll_timeout(), Some(now + Duration::from_secs(5)));
    session.handle_timeout(now + Duration::from_millis(4999));
    assert!(events(&mut session).is_empty());
    session.handle_timeout(now + Duration::from_secs(5));
    assert_eq!(
        events(&mut session),
        vec![Event::SubmitFailed {
            key: 1,
            failure: SubmitFailure::Timeout
        }]
    );
    assert_eq!(
        session.state(),
        SessionState::Bound,
        "a slow submit is not a dead link"
    );
}

#[test]
fn enquire_link_goes_out_every_interval_and_a_missing_answer_drops_the_link_and_backs_off() {
    let start = Instant::now();
    let mut session = bound(config(), start);
    let first_due = start + Duration::from_secs(30);
    assert_eq!(session.poll_timeout(), Some(first_due));
    session.handle_timeout(first_due);
    let pdus = sent(&mut session);
    assert_eq!(pdus.len(), 1);
    assert_eq!(pdus[0].body, Body::EnquireLink);
    reply(
        &mut session,
        pdus[0].sequence_number,
        0,
        Body::EnquireLinkResp,
        first_due,
    );
    let second_due = first_due + Duration::from_secs(30);
    assert_eq!(session.poll_timeout(), Some(second_due));
    session.handle_timeout(second_due);
    assert_eq!(sent(&mut session)[0].body, Body::EnquireLink);
    let dead_at = second_due + Duration::from_secs(5);
    assert_eq!(session.poll_timeout(), Some(dead_at));
    session.handle_timeout(dead_at);
    assert_eq!(
        events(&mut session),
        vec![Event::Close {
            reason: CloseReason::EnquireLinkTimeout
        }]
    );
    assert_eq!(session.state(), SessionState::WaitingToConnect);
    // Reconnect after 1 s; each failed attempt doubles the wait up to the 8 s cap.
    let mut now = dead_at;
    for wait in [1, 2, 4, 8, 8] {
        let next = now + Duration::from_secs(wait);
        assert_eq!(session.poll_timeout(), Some(next), "wait {wait}");
        session.handle_timeout(next);
        assert_eq!(events(&mut session), vec![Event::Connect]);
        session.handle_disconnected(next); // connection refused
        now = next;
    }
    // A successful bind resets the backoff.
    session.handle_timeout(now + Duration::from_secs(8));
    events(&mut session);
    now += Duration::from_secs(8);
    session.handle_connected(now);
    let bind = sent(&mut session);
    reply(
        &mut session,
        bind[0].sequence_number,
        0,
        Body::BindTransmitterResp {
            system_id: "SMSC".into(),
            tlvs: vec![],
        },
        now,
    );
    assert_eq!(session.state(), SessionState::Bound);
    session.handle_disconnected(now);
    assert_eq!(session.poll_timeout(), Some(now + Duration::from_secs(1)));
}

#[test]
fn a_refused_or_unanswered_bind_closes_and_retries() {
    let now = Instant::now();
    let mut session = Session::new(config(), now);
    session.handle_timeout(now);
    session.handle_connected(now);
    let bind = sent(&mut session);
    reply(
        &mut session,
        bind[0].sequence_number,
        status::ESME_RINVPASWD,
        Body::BindTransmitterResp {
            system_id: String::new(),
            tlvs: vec![],
        },
        now,
    );
    assert_eq!(
        events(&mut session),
        vec![
            Event::Connect,
            Event::Close {
                reason: CloseReason::BindRejected {
                    status: status::ESME_RINVPASWD
                }
            }
        ]
    );
    let retry = now + Duration::from_secs(1);
    session.handle_timeout(retry);
    session.handle_connected(retry);
    sent(&mut session);
    session.handle_timeout(retry + Duration::from_secs(5));
    assert_eq!(
        events(&mut session),
        vec![
            Event::Connect,
            Event::Close {
                reason: CloseReason::BindTimeout
            }
        ]
    );
    // A connect that never completes is given up on too.
    let again = retry + Duration::from_secs(7);
    assert_eq!(session.poll_timeout(), Some(again));
    session.handle_timeout(again);
    session.handle_timeout(again + Duration::from_secs(5));
    assert_eq!(
        events(&mut session),
        vec![
            Event::Connect,
            Event::Close {
                reason: CloseReason::ConnectTimeout
            }
        ]
    );
}

#[test]
fn a_lost_connection_fails_what_was_in_flight_and_sends_the_queue_after_the_rebind() {
    let now = Instant::now();
    let mut session = bound(
        SessionConfig {
            max_in_flight: 1,
            ..config()
        },
        now,
    );
    session.submit(sms(1, "一"), now).expect("queued");
    session.submit(sms(2, "二"), now).expect("queued");
    assert_eq!(sent(&mut session).len(), 1, "the window holds one");
    session.handle_disconnected(now);
    assert_eq!(
        events(&mut session),
        vec![Event::SubmitFailed {
            key: 1,
            failure: SubmitFailure::ConnectionLost
        }]
    );
    let later = now + Duration::from_secs(1);
    session.handle_timeout(later);
    session.handle_connected(later);
    let bind = sent(&mut session);
    assert_eq!(
        bind.len(),
        1,
        "nothing stale is written to the new connection"
    );
    reply(
        &mut session,
        bind[0].sequence_number,
        0,
        Body::BindTransmitterResp {
            system_id: "SMSC".into(),
            tlvs: vec![],
        },
        later,
    );
    let pdus = sent(&mut session);
    assert_eq!(
        decode_ucs2(&submit_sm(&pdus[0]).short_message, false).as_deref(),
        Some("二")
    );
}

#[test]
fn the_rate_limit_spaces_submits_on_the_clock() {
    let now = Instant::now();
    let mut session = bound(
        SessionConfig {
            messages_per_second: 2,
            ..config()
        },
        now,
    );
    for key in 1..=4 {
        session.submit(sms(key, "限速"), now).expect("queued");
    }
    assert_eq!(sent(&mut session).len(), 2, "a burst of one second's worth");
    assert_eq!(
        session.poll_timeout(),
        Some(now + Duration::from_millis(500))
    );
    session.handle_timeout(now + Duration::from_millis(499));
    assert!(sent(&mut session).is_empty());
    session.handle_timeout(now + Duration::from_millis(500));
    assert_eq!(sent(&mut session).len(), 1);
    session.handle_timeout(now + Duration::from_millis(1000));
    assert_eq!(sent(&mut session).len(), 1);
}

#[test]
fn a_delivery_receipt_is_answered_and_reported() {
    let now = Instant::now();
    let mut session = bound(config(), now);
    let receipt = ShortMessage {
        esm_class: esm_class::DELIVERY_RECEIPT,
        short_message: b"id:m-1 sub:001 dlvrd:001 submit date:2405061230 done date:2405061231 stat:DELIVRD err:000 text:".to_vec(),
        tlvs: vec![Tlv {
            tag: tlv_tag::MESSAGE_STATE,
            value: vec![2],
        }],
        ..ShortMessage::default()
    };
    reply(&mut session, 77, 0, Body::DeliverSm(receipt), now);
    let pdus = sent(&mut session);
    assert_eq!(pdus.len(), 1);
    assert_eq!(pdus[0].body, Body::DeliverSmResp);
    assert_eq!(pdus[0].sequence_number, 77);
    let events = events(&mut session);
    let [Event::Receipt(receipt)] = events.as_slice() else {
        panic!("expected one receipt, got {events:?}");
    };
    assert_eq!(receipt.message_id, "m-1");
    assert_eq!(receipt.state, DeliveryState::Delivered);
}

#[test]
fn smsc_requests_are_answered_and_unknown_ones_nacked() {
    let now = Instant::now();
    let mut session = bound(config(), now);
    reply(&mut session, 5, 0, Body::EnquireLink, now);
    let pdus = sent(&mut session);
    assert_eq!(
        (pdus[0].sequence_number, &pdus[0].body),
        (5, &Body::EnquireLinkResp)
    );
    // query_sm (0x00000003) is not something a transmitter takes.
    let mut unknown = vec![0, 0, 0, 16, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 6];
    session.handle_input(&unknown, now);
    let pdus = sent(&mut session);
    assert_eq!(pdus[0].body, Body::GenericNack);
    assert_eq!(pdus[0].command_status, status::ESME_RINVCMDID);
    assert_eq!(pdus[0].sequence_number, 6);
    assert!(matches!(
        events(&mut session).as_slice(),
        [Event::ProtocolError(PduError::UnknownCommand { .. })]
    ));
    // A deliver_sm whose body is cut short is refused, and the link goes on.
    unknown[7] = 5;
    session.handle_input(&unknown, now);
    let pdus = sent(&mut session);
    assert_eq!(pdus[0].command_status, status::ESME_RINVCMDLEN);
    assert_eq!(session.state(), SessionState::Bound);
    events(&mut session);
    // The SMSC unbinding is answered, then the link closes and is rebuilt.
    reply(&mut session, 8, 0, Body::Unbind, now);
    assert_eq!(sent(&mut session)[0].body, Body::UnbindResp);
    assert_eq!(
        events(&mut session),
        vec![Event::Close {
            reason: CloseReason::PeerUnbound
        }]
    );
    assert_eq!(session.poll_timeout(), Some(now + Duration::from_secs(1)));
}

#[test]
fn a_stream_that_cannot_be_framed_closes_the_link() {
    let now = Instant::now();
    let mut session = bound(config(), now);
    session.handle_input(&[0, 0, 0, 4], now);
    assert_eq!(
        events(&mut session),
        vec![Event::Close {
            reason: CloseReason::MalformedStream(PduError::LengthTooShort { length: 4 })
        }]
    );
    assert_eq!(session.state(), SessionState::WaitingToConnect);
}

#[test]
fn pdus_split_across_reads_byte_by_byte_are_reassembled() {
    let now = Instant::now();
    let mut session = bound(config(), now);
    session.submit(sms(3, "逐字节"), now).expect("queued");
    let pdus = sent(&mut session);
    let mut bytes = Pdu::new(
        pdus[0].sequence_number,
        Body::SubmitSmResp {
            message_id: "id-3".into(),
        },
    )
    .encode()
    .expect("encodes");
    bytes.extend(Pdu::new(9, Body::EnquireLink).encode().expect("encodes"));
    for byte in bytes {
        session.handle_input(&[byte], now);
    }
    assert_eq!(
        events(&mut session),
        vec![Event::Submitted {
            key: 3,
            message_ids: vec!["id-3".into()]
        }]
    );
    assert_eq!(sent(&mut session)[0].body, Body::EnquireLinkResp);
}

#[test]
fn unbind_waits_for_its_answer_and_closes_for_good() {
    let now = Instant::now();
    let mut session = bound(config(), now);
    session.unbind(now);
    let pdus = sent(&mut session);
    assert_eq!(pdus[0].body, Body::Unbind);
    assert_eq!(
        session.submit(sms(1, "晚了"), now),
        Err(SubmitError::Closed)
    );
    reply(
        &mut session,
        pdus[0].sequence_number,
        0,
        Body::UnbindResp,
        now,
    );
    assert_eq!(
        events(&mut session),
        vec![Event::Close {
            reason: CloseReason::Unbound
        }]
    );
    assert_eq!(session.state(), SessionState::Closed);
    assert_eq!(session.poll_timeout(), None);
}

#[test]
fn unbinding_fails_unsent_messages_as_not_sent_and_bad_input_is_refused_up_front() {
    let now = Instant::now();
    let mut session = Session::new(config(), now);
    session.submit(sms(1, "排队"), now).expect("queued");
    assert_eq!(
        session.submit(sms(1, "again"), now),
        Err(SubmitError::DuplicateKey(1))
    );
    assert!(matches!(
        session.submit(
            OutgoingSms {
                key: 2,
                destination: "1".repeat(21),
                text: "x".into()
            },
            now
        ),
        Err(SubmitError::Pdu(PduError::FieldTooLong { .. }))
    ));
    assert!(matches!(
        session.submit(sms(3, ""), now),
        Err(SubmitError::Text(_))
    ));
    session.unbind(now);
    assert_eq!(
        events(&mut session),
        vec![Event::SubmitFailed {
            key: 1,
            failure: SubmitFailure::NotSent
        }]
    );
    assert_eq!(session.state(), SessionState::Closed);
}

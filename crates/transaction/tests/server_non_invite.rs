//! Non-INVITE server transaction (§17.2.2): Figure 8 over UDP and TCP.

mod common;

use common::*;
use sihai_transaction::{Event, TransactionError};

const BRANCH: &str = "z9hG4bK-opt-1";

#[test]
fn trying_absorbs_proceeding_and_completed_answer_with_last_response() {
    let mut h = Harness::default();
    let options = req("OPTIONS", BRANCH);
    let key = h.recv_new(&options, uac());
    assert_eq!(key.method(), "OPTIONS");

    // Trying: nothing sent yet, so nothing to resend; the TU is not told twice.
    h.recv(&options, uac());
    assert!(h.sent_summary().is_empty());
    assert!(h.event_names().is_empty());

    h.respond(&key, &resp(&options, 100, None)).unwrap();
    h.recv(&options, uac());
    assert_eq!(h.sent_summary(), [(0, "100".into()), (0, "100".into())]);

    h.respond(&key, &resp(&options, 200, Some("t"))).unwrap();
    h.run_until(secs(10));
    h.recv(&options, uac());
    assert_eq!(
        h.sent_summary(),
        [(0, "200".into()), (10_000, "200".into())]
    );
    assert!(h.event_names().is_empty());
    assert!(
        h.respond(&key, &resp(&options, 500, Some("t")))
            .unwrap_err()
            .to_string()
            .contains("Completed")
    );
}

#[test]
fn timer_j_is_64_t1_over_udp() {
    let mut h = Harness::default();
    let bye = req("BYE", BRANCH);
    let key = h.recv_new(&bye, uac());
    h.respond(&key, &resp(&bye, 200, Some("t"))).unwrap();
    h.run_until(ms(31_999));
    assert_eq!(h.layer.len(), 1);
    assert_eq!(h.layer.poll_timeout(), Some(h.t0 + secs(32)));
    assert!(
        h.take_sent().len() == 1,
        "no retransmission of non-INVITE responses on a timer"
    );
    h.run_until(secs(32));
    let events = h.take_events();
    assert!(
        matches!(&events[..], [(at, Event::Terminated { key: k })] if *at == secs(32) && *k == server(&key))
    );
    assert_eq!(h.layer.len(), 0);

    // After J, a retransmission would be a new request: that is why J lasts 64*T1.
    h.recv(&bye, uac());
    assert_eq!(h.event_names(), ["Request BYE"]);
}

#[test]
fn timer_j_is_zero_over_tcp() {
    let mut h = Harness::default();
    let bye = over_tcp(&req("BYE", BRANCH));
    let key = h.recv_new(&bye, uac_tcp());
    h.respond(&key, &resp(&bye, 100, None)).unwrap();
    assert_eq!(h.layer.len(), 1);
    h.respond(&key, &resp(&bye, 200, Some("t"))).unwrap();
    assert_eq!(h.event_names(), ["Terminated"]);
    assert_eq!(h.layer.len(), 0);
    assert_eq!(h.layer.poll_timeout(), None);
    let sent = h.take_sent();
    assert!(sent.iter().all(|(_, t)| t.destination == uac_tcp()));
}

#[test]
fn a_request_with_another_method_or_sent_by_is_another_transaction() {
    let mut h = Harness::default();
    let options = req("OPTIONS", BRANCH);
    let a = h.recv_new(&options, uac());
    // Same branch, different method (not ACK/CANCEL): §17.2.3 makes it distinct.
    let b = h.recv_new(&req("INFO", BRANCH), uac());
    // Same branch and method from another sent-by: distinct too.
    let c = h.recv_new(
        &options.replace("192.0.2.10:5060;", "192.0.2.11:5060;"),
        udp("192.0.2.11:5060"),
    );
    // Host names in sent-by compare case-insensitively.
    let named = options.replace("192.0.2.10:5060;", "trunk.example:5060;");
    let d = h.recv_new(&named, uac());
    h.recv(&named.replace("trunk.example", "TRUNK.Example"), uac());
    assert!(h.event_names().is_empty());
    assert_eq!(h.layer.len(), 4);
    assert_ne!(a, d);
    assert_ne!(a, b);
    assert_ne!(a, c);
}

#[test]
fn response_without_pending_transaction_is_refused() {
    let mut h = Harness::default();
    let options = req("OPTIONS", BRANCH);
    let key = h.recv_new(&options, uac());
    h.respond(&key, &resp(&options, 200, Some("t"))).unwrap();
    h.run_until(secs(40));
    assert!(matches!(
        h.respond(&key, &resp(&options, 200, Some("t"))),
        Err(TransactionError::NoSuchTransaction(k)) if *k == key
    ));
}

#[test]
fn waiting_out_timer_j_keeps_only_the_response_not_the_request() {
    let mut h = Harness::default();
    let request = bytes::Bytes::from(req("BYE", BRANCH));
    let bye = sihai_sip::Message::parse(request.clone()).unwrap();
    h.layer.handle_received(h.now, bye, uac());
    let key = match h.layer.poll_event() {
        Some(Event::Request { key, .. }) => key,
        other => panic!("expected the BYE, got {other:?}"),
    };
    // While the TU has to answer, the key holds on to the request's buffer.
    assert!(!request.is_unique());
    h.respond(&key, &resp(&req("BYE", BRANCH), 200, Some("t")))
        .unwrap();
    drop(key);
    // Completed: a retransmission is still answered, but the request is let go.
    assert!(request.is_unique());
    assert_eq!(h.layer.len(), 1);
    h.run_until(secs(5));
    h.recv(&req("BYE", BRANCH), uac());
    assert_eq!(h.sent_summary(), [(0, "200".into()), (5_000, "200".into())]);
    assert!(h.event_names().is_empty());
}

#[test]
fn a_transport_error_ends_a_completed_transaction_and_only_that_one() {
    let mut h = Harness::default();
    let bye = req("BYE", BRANCH);
    let key = h.recv_new(&bye, uac());
    h.respond(&key, &resp(&bye, 200, Some("t"))).unwrap();
    let other = h.recv_new(&req("BYE", "z9hG4bK-other"), uas());
    h.respond(&other, &resp(&req("BYE", "z9hG4bK-other"), 200, Some("t")))
        .unwrap();
    h.take_sent();
    h.run_until(secs(1));

    h.transport_error(uac());
    assert_eq!(h.event_names(), ["TransportError", "Terminated"]);
    assert_eq!(h.layer.len(), 1);
    // Its state is gone: the same request is new again.
    let again = h.recv_new(&bye, uac());
    h.respond(&again, &resp(&bye, 200, Some("t"))).unwrap();
    // The first one's 32 s deadline passes without touching the second, which has
    // its own.
    h.run_until(secs(32));
    assert_eq!(h.event_names(), ["Terminated"], "only the other peer's BYE");
    assert_eq!(h.layer.len(), 1);
    h.recv(&bye, uac());
    assert_eq!(
        h.sent_summary(),
        [(1_000, "200".into()), (32_000, "200".into())]
    );
    h.run_until(secs(33));
    assert_eq!(h.event_names(), ["Terminated"]);
    assert!(h.layer.is_empty());
    assert_eq!(h.layer.poll_timeout(), None);
}

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

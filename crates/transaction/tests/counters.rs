//! The layer's tallies for the metrics endpoint: first transmissions of responses by
//! method and class, requests sent, responses received; retransmissions are not counted
//! again.

mod common;

use std::sync::Arc;

use common::*;
use sihai_transaction::SipCounters;

fn nonzero_replies_sent(c: &SipCounters) -> Vec<(&'static str, &'static str, u64)> {
    c.replies_sent().filter(|(_, _, n)| *n > 0).collect()
}

#[test]
fn responses_sent_and_received_are_counted_once_by_method_and_class() {
    let mut h = Harness::default();
    let counters = Arc::new(SipCounters::default());
    h.layer.set_counters(counters.clone());

    let invite = req("INVITE", "z9hG4bK-inv-1");
    let key = h.recv_new(&invite, uac());
    h.respond(&key, &resp(&invite, 180, Some("t"))).unwrap();
    // A retransmitted INVITE resends the 180: not a new response.
    h.recv(&invite, uac());
    // The layer answers a CANCEL itself (200), and the INVITE's 487 comes from the TU.
    let cancel = req("CANCEL", "z9hG4bK-inv-1");
    h.recv(&cancel, uac());
    h.respond(&key, &resp(&invite, 487, Some("t"))).unwrap();
    assert_eq!(
        nonzero_replies_sent(&counters),
        [
            ("CANCEL", "2xx", 1),
            ("INVITE", "1xx", 1),
            ("INVITE", "4xx", 1)
        ]
    );

    let bye = req("BYE", "z9hG4bK-bye-9").replace("192.0.2.10:5060", "198.51.100.1:5060");
    h.send(&bye, uas()).unwrap();
    h.recv(&resp(&bye, 200, Some("u")), uas());
    // A retransmitted final response is absorbed by the finished transaction.
    h.recv(&resp(&bye, 200, Some("u")), uas());
    let sent: Vec<_> = counters.requests_sent().filter(|(_, n)| *n > 0).collect();
    assert_eq!(sent, [("BYE", 1)]);
    let received: Vec<_> = counters
        .replies_received()
        .filter(|(_, _, n)| *n > 0)
        .collect();
    assert_eq!(received, [("BYE", "2xx", 1)]);
}

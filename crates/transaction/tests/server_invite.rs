//! INVITE server transaction (§17.2.1): every path through Figure 7, over UDP and TCP.

mod common;

use common::*;
use sihai_sip::Method;
use sihai_transaction::{Event, TimerConfig, TransactionError};

const BRANCH: &str = "z9hG4bK-inv-1";

#[test]
fn invite_surfaces_once_and_retransmissions_get_the_last_provisional() {
    let mut h = Harness::default();
    let invite = req("INVITE", BRANCH);
    let key = h.recv_new(&invite, uac());
    assert_eq!(key.method(), "INVITE");
    assert_eq!(key.branch(), Some(BRANCH));
    assert_eq!(h.layer.len(), 1);

    // Before any response: absorbed, nothing to answer with, nothing for the TU.
    h.recv(&invite, uac());
    assert!(h.sent_summary().is_empty());
    assert!(h.event_names().is_empty());

    h.respond(&key, &resp(&invite, 100, None)).unwrap();
    h.recv(&invite, uac());
    assert_eq!(h.sent_summary(), [(0, "100".into()), (0, "100".into())]);

    h.respond(&key, &resp(&invite, 180, Some("uas-1"))).unwrap();
    h.recv(&invite, uac());
    assert_eq!(h.sent_summary(), [(0, "180".into()), (0, "180".into())]);
    assert!(h.event_names().is_empty());

    // Provisional responses are not retransmitted by the transaction and nothing times
    // out while the TU thinks.
    h.run_until(secs(600));
    assert!(h.sent_summary().is_empty());
    assert_eq!(h.layer.len(), 1);
    assert_eq!(h.layer.poll_timeout(), None);
}

#[test]
fn non_2xx_final_is_retransmitted_by_timer_g_capped_at_t2_until_timer_h() {
    let mut h = Harness::default();
    let invite = req("INVITE", BRANCH);
    let key = h.recv_new(&invite, uac());
    h.respond(&key, &resp(&invite, 486, Some("uas-1"))).unwrap();
    assert_eq!(h.sent_summary(), [(0, "486".into())]);

    h.run_until(secs(40));
    let times: Vec<u128> = h.take_sent().iter().map(|(at, _)| at.as_millis()).collect();
    // T1, 2T1, 4T1, then T2 = 4 s until H = 64*T1 = 32 s.
    assert_eq!(
        times,
        [
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    let events = h.take_events();
    assert_eq!(
        events.iter().map(|(_, e)| describe(e)).collect::<Vec<_>>(),
        ["Timeout", "Terminated"]
    );
    assert_eq!(events[0].0, secs(32));
    assert!(matches!(&events[0].1, Event::Timeout { key: k } if *k == server(&key)));
    assert_eq!(h.layer.len(), 0);
    assert_eq!(h.layer.poll_timeout(), None);
}

#[test]
fn retransmitted_invite_in_completed_gets_the_final_again() {
    let mut h = Harness::default();
    let invite = req("INVITE", BRANCH);
    let key = h.recv_new(&invite, uac());
    h.respond(&key, &resp(&invite, 603, Some("uas-1"))).unwrap();
    h.run_until(ms(200));
    h.recv(&invite, uac());
    assert_eq!(h.sent_summary(), [(0, "603".into()), (200, "603".into())]);
    assert!(h.event_names().is_empty());
}

#[test]
fn ack_confirms_stops_g_and_timer_i_absorbs_ack_retransmissions() {
    let mut h = Harness::default();
    let invite = req("INVITE", BRANCH);
    let key = h.recv_new(&invite, uac());
    h.respond(&key, &resp(&invite, 486, Some("uas-1"))).unwrap();
    h.run_until(ms(1000));
    assert_eq!(h.sent_summary(), [(0, "486".into()), (500, "486".into())]);

    let ack = with_to_tag(&req("ACK", BRANCH), "uas-1");
    h.recv(&ack, uac());
    assert!(
        h.event_names().is_empty(),
        "ACK for a non-2xx belongs to the transaction"
    );

    // Confirmed: ACK and INVITE retransmissions are absorbed, no more G.
    h.run_until(ms(3000));
    h.recv(&ack, uac());
    h.recv(&invite, uac());
    assert!(h.sent_summary().is_empty());
    assert!(h.event_names().is_empty());

    // Timer I = T4 = 5 s after the ACK.
    h.run_until(ms(5999));
    assert_eq!(h.layer.len(), 1);
    h.run_until(ms(6000));
    assert_eq!(h.event_names(), ["Terminated"]);
    assert_eq!(h.layer.len(), 0);
    assert_eq!(h.layer.poll_timeout(), None);

    // Once the transaction is gone, a late ACK is the dialog's problem.
    h.recv(&ack, uac());
    assert_eq!(h.event_names(), ["StrayAck"]);
}

#[test]
fn over_tcp_no_retransmissions_h_still_runs_and_i_is_zero() {
    let mut h = Harness::default();
    let invite = over_tcp(&req("INVITE", BRANCH));
    let key = h.recv_new(&invite, uac_tcp());
    h.respond(&key, &resp(&invite, 486, Some("uas-1"))).unwrap();
    let sent = h.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].1.destination,
        uac_tcp(),
        "answers go back on the connection"
    );

    h.run_until(secs(40));
    assert!(
        h.take_sent().is_empty(),
        "no Timer G over a reliable transport"
    );
    assert_eq!(h.event_names(), ["Timeout", "Terminated"]);

    // And with the ACK: Confirmed lasts zero seconds.
    let key = h.recv_new(&invite, uac_tcp());
    h.respond(&key, &resp(&invite, 486, Some("uas-2"))).unwrap();
    h.recv(
        &over_tcp(&with_to_tag(&req("ACK", BRANCH), "uas-2")),
        uac_tcp(),
    );
    assert_eq!(h.event_names(), ["Terminated"]);
    assert_eq!(h.layer.len(), 0);
    assert_eq!(h.layer.poll_timeout(), None);
}

#[test]
fn timer_h_without_ack_over_udp_uses_configured_t1() {
    let mut h = Harness::new(TimerConfig {
        t1: ms(100),
        t2: ms(400),
        t4: secs(1),
    });
    let invite = req("INVITE", BRANCH);
    let key = h.recv_new(&invite, uac());
    h.respond(&key, &resp(&invite, 500, Some("t"))).unwrap();
    h.take_sent();
    h.run_until(ms(6400));
    let times: Vec<u128> = h.take_sent().iter().map(|(at, _)| at.as_millis()).collect();
    assert_eq!(&times[..4], [100, 300, 700, 1100]);
    assert_eq!(*times.last().unwrap(), 6300);
    assert_eq!(h.event_names(), ["Timeout", "Terminated"]);
}

#[test]
fn two_xx_terminates_at_once_and_its_ack_is_stray() {
    let mut h = Harness::default();
    let invite = req("INVITE", BRANCH);
    let key = h.recv_new(&invite, uac());
    h.respond(&key, &resp(&invite, 180, Some("uas-1"))).unwrap();
    h.respond(&key, &resp(&invite, 200, Some("uas-1"))).unwrap();
    assert_eq!(h.sent_summary(), [(0, "180".into()), (0, "200".into())]);
    assert_eq!(h.event_names(), ["Terminated"]);
    assert_eq!(h.layer.len(), 0);
    assert_eq!(
        h.layer.poll_timeout(),
        None,
        "the layer does not retransmit 2xx: the TU does"
    );

    // The ACK for a 2xx has a branch of its own (§17.1.1.3) and goes to the dialog.
    let ack = with_to_tag(&req("ACK", "z9hG4bK-ack-2xx"), "uas-1");
    h.recv(&ack, uac());
    let events = h.take_events();
    assert!(
        matches!(&events[..], [(_, Event::StrayAck { request, source })]
        if request.method() == Some(Method::Ack) && *source == uac())
    );

    // Even one (wrongly) reusing the INVITE's branch: there is no transaction left.
    h.recv(&with_to_tag(&req("ACK", BRANCH), "uas-1"), uac());
    assert_eq!(h.event_names(), ["StrayAck"]);
    assert!(h.take_sent().is_empty());
}

#[test]
fn ack_before_any_final_is_dropped() {
    let mut h = Harness::default();
    let invite = req("INVITE", BRANCH);
    let key = h.recv_new(&invite, uac());
    h.recv(&req("ACK", BRANCH), uac());
    assert!(h.event_names().is_empty());
    assert_eq!(h.layer.len(), 1);
    // The transaction is unaffected.
    h.respond(&key, &resp(&invite, 486, Some("t"))).unwrap();
    assert_eq!(h.sent_summary(), [(0, "486".into())]);
}

#[test]
fn tu_errors() {
    let mut h = Harness::default();
    let invite = req("INVITE", BRANCH);
    let key = h.recv_new(&invite, uac());
    assert_eq!(
        h.respond(&key, &invite),
        Err(TransactionError::NotAResponse)
    );
    h.respond(&key, &resp(&invite, 404, Some("t"))).unwrap();
    let err = h.respond(&key, &resp(&invite, 200, Some("t"))).unwrap_err();
    assert_eq!(
        err,
        TransactionError::InvalidState {
            key: Box::new(key.clone()),
            status: 200,
            state: "Completed"
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "server transaction server INVITE {BRANCH} from 192.0.2.10:5060 cannot send 200: it is Completed"
        )
    );
    h.run_until(secs(33));
    assert_eq!(
        h.respond(&key, &resp(&invite, 500, Some("t"))),
        Err(TransactionError::NoSuchTransaction(Box::new(key)))
    );
}

#[test]
fn responses_follow_via_received_and_rport_rules() {
    let cases = [
        // rport: the exact source address and port.
        (
            "SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKr;rport",
            udp("203.0.113.5:40000"),
            udp("203.0.113.5:40000"),
        ),
        // sent-by is not the source (NAT): source IP ("received"), sent-by port.
        (
            "SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKr",
            udp("203.0.113.5:40000"),
            udp("203.0.113.5:5070"),
        ),
        // sent-by is the source: its port, 5060 by default.
        (
            "SIP/2.0/UDP 203.0.113.5;branch=z9hG4bKr",
            udp("203.0.113.5:40000"),
            udp("203.0.113.5:5060"),
        ),
        // a stream: back on the connection, whatever the Via says.
        (
            "SIP/2.0/TCP 10.0.0.1:5070;branch=z9hG4bKr",
            tcp("203.0.113.5:40001"),
            tcp("203.0.113.5:40001"),
        ),
    ];
    for (via, source, expected) in cases {
        let mut h = Harness::default();
        let invite = req("INVITE", "X").replace("SIP/2.0/UDP 192.0.2.10:5060;branch=X", via);
        let key = h.recv_new(&invite, source);
        h.respond(&key, &resp(&invite, 100, None)).unwrap();
        h.respond(&key, &resp(&invite, 486, Some("t"))).unwrap();
        h.run_until(secs(1));
        // Retransmissions of the final follow the same route.
        h.recv(&invite, source);
        let sent = h.take_sent();
        assert!(sent.len() >= 3, "{via}");
        assert!(
            sent.iter().all(|(_, t)| t.destination == expected),
            "{via}: {sent:?}"
        );
    }
}

#[test]
fn transport_error_reports_and_terminates() {
    let mut h = Harness::default();
    let invite = req("INVITE", BRANCH);
    let key = h.recv_new(&invite, uac());
    let other = h.recv_new(
        &req("INVITE", "z9hG4bK-other").replace("192.0.2.10:5060", "192.0.2.99:5060"),
        udp("192.0.2.99:5060"),
    );
    h.respond(&key, &resp(&invite, 486, Some("t"))).unwrap();
    h.transport_error(udp("198.51.100.77:5060"));
    assert!(
        h.event_names().is_empty(),
        "an unrelated peer's failure touches nothing"
    );
    h.transport_error(uac());
    let events = h.take_events();
    assert!(matches!(&events[0].1, Event::TransportError { key: k } if *k == server(&key)));
    assert!(matches!(&events[1].1, Event::Terminated { key: k } if *k == server(&key)));
    assert_eq!(events.len(), 2);
    assert_eq!(h.layer.len(), 1);
    assert!(h.respond(&other, &resp(&invite, 486, Some("t"))).is_ok());
}

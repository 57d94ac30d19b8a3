//! INVITE client transaction (§17.1.1): Figure 5 over UDP and TCP, the ACK for non-2xx,
//! and the §9.1 CANCEL guard.

mod common;

use common::*;
use sihai_sip::Method;
use sihai_transaction::{Event, TimerConfig, TransactionError};

const BRANCH: &str = "z9hG4bK-out-1";

/// What we send: our own Via, towards the callee.
fn our(method: &str) -> String {
    req(method, BRANCH).replace("192.0.2.10:5060", "198.51.100.1:5060")
}

#[test]
fn timer_a_doubles_without_cap_until_timer_b() {
    let mut h = Harness::default();
    let key = h.send(&our("INVITE"), uas()).unwrap();
    assert_eq!((key.method(), key.branch()), ("INVITE", BRANCH));
    h.run_until(secs(40));
    let sent = h.take_sent();
    let times: Vec<u128> = sent.iter().map(|(at, _)| at.as_millis()).collect();
    // 0, then A = 500 ms, 1 s, 2 s, 4 s, 8 s, 16 s; B = 64*T1 = 32 s stops it.
    assert_eq!(times, [0, 500, 1500, 3500, 7500, 15500, 31500]);
    assert!(
        sent.iter()
            .all(|(_, t)| t.destination == uas() && first_word(t) == "INVITE")
    );
    assert!(
        sent.iter().all(|(_, t)| t.payload == sent[0].1.payload),
        "retransmissions are byte-identical"
    );
    let events = h.take_events();
    assert_eq!(
        events.iter().map(|(_, e)| describe(e)).collect::<Vec<_>>(),
        ["Timeout", "Terminated"]
    );
    assert_eq!(events[0].0, secs(32));
    assert!(matches!(&events[0].1, Event::Timeout { key: k } if *k == client(&key)));
    assert_eq!(h.layer.len(), 0);
    assert_eq!(h.layer.poll_timeout(), None);
}

#[test]
fn over_tcp_no_timer_a_but_timer_b() {
    let mut h = Harness::default();
    h.send(&over_tcp(&our("INVITE")), uas_tcp()).unwrap();
    h.run_until(secs(31));
    assert_eq!(h.sent_summary(), [(0, "INVITE".into())]);
    assert_eq!(h.layer.len(), 1);
    h.run_until(secs(32));
    assert_eq!(h.event_names(), ["Timeout", "Terminated"]);
}

#[test]
fn provisional_stops_retransmissions_and_timer_b() {
    let mut h = Harness::default();
    let invite = our("INVITE");
    let key = h.send(&invite, uas()).unwrap();
    h.run_until(ms(700));
    h.recv(&resp(&invite, 100, None), uas());
    h.recv(&resp(&invite, 180, Some("callee")), uas());
    let events = h.take_events();
    assert!(
        matches!(&events[0].1, Event::Response { key: k, response } if *k == key && response.status() == Some(100))
    );
    assert_eq!(describe(&events[1].1), "Response 180");
    h.run_until(secs(300));
    assert_eq!(
        h.sent_summary(),
        [(0, "INVITE".into()), (500, "INVITE".into())]
    );
    assert!(
        h.event_names().is_empty(),
        "no Timer B in Proceeding (§17.1.1.2)"
    );
    assert_eq!(h.layer.len(), 1);
    assert_eq!(h.layer.poll_timeout(), None);

    // The final response still comes through.
    h.recv(&resp(&invite, 200, Some("callee")), uas());
    assert_eq!(h.event_names(), ["Response 200", "Terminated"]);
}

#[test]
fn two_xx_passes_up_and_ends_the_transaction_retransmissions_are_stray() {
    let mut h = Harness::default();
    let invite = our("INVITE");
    let key = h.send(&invite, uas()).unwrap();
    let ok = resp(&invite, 200, Some("callee"));
    h.recv(&ok, uas());
    let events = h.take_events();
    assert!(
        matches!(&events[0].1, Event::Response { key: k, response } if *k == key && response.status() == Some(200))
    );
    assert!(matches!(&events[1].1, Event::Terminated { key: k } if *k == client(&key)));
    assert_eq!(
        h.sent_summary(),
        [(0, "INVITE".into())],
        "the ACK for a 2xx is the TU's"
    );
    assert_eq!(h.layer.poll_timeout(), None);

    h.recv(&ok, uas());
    let events = h.take_events();
    assert!(
        matches!(&events[..], [(_, Event::StrayResponse { response, source })]
        if response.status() == Some(200) && *source == uas())
    );
}

#[test]
fn non_2xx_final_is_acked_once_passed_up_once_and_reacked_on_retransmission() {
    let mut h = Harness::default();
    let invite = our("INVITE");
    let key = h.send(&invite, uas()).unwrap();
    h.run_until(ms(600));
    h.take_sent();
    let busy = resp(&invite, 486, Some("callee"));
    h.recv(&busy, uas());
    let events = h.take_events();
    assert!(
        matches!(&events[..], [(_, Event::Response { key: k, response })] if *k == key && response.status() == Some(486))
    );

    let sent = h.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].1.destination,
        uas(),
        "the ACK goes where the INVITE went (§17.1.1.3)"
    );
    let ack = sent_msg(&sent[0].1);
    let original = parse(&invite);
    assert_eq!(ack.method(), Some(Method::Ack));
    assert_eq!(ack.request_uri(), original.request_uri());
    assert_eq!(
        ack.top_via().unwrap().branch(),
        Some(BRANCH),
        "same branch as the INVITE"
    );
    assert_eq!(ack.cseq().unwrap().seq, 1);
    assert_eq!(ack.cseq().unwrap().method, Method::Ack);
    assert_eq!(ack.to().unwrap().tag(), Some("callee"));
    assert_eq!(ack.from().unwrap().tag(), Some("from-1"));
    assert_eq!(ack.call_id(), original.call_id());

    // The server did not hear our ACK and retransmits its final: ACK again, no event.
    h.run_until(ms(1100));
    h.recv(&busy, uas());
    h.recv(&busy, uas());
    let again = h.take_sent();
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|(_, t)| t.payload == sent[0].1.payload));
    assert!(h.event_names().is_empty());

    // No more INVITE retransmissions after the final.
    h.run_until(ms(600 + 31_999));
    assert!(h.take_sent().is_empty());
    assert_eq!(h.layer.len(), 1);
    // Timer D: 32 s after the final.
    h.run_until(ms(600 + 32_000));
    assert_eq!(h.event_names(), ["Terminated"]);
    assert_eq!(h.layer.len(), 0);
    h.recv(&busy, uas());
    assert_eq!(h.event_names(), ["StrayResponse 486"]);
}

#[test]
fn timer_d_is_zero_over_tcp() {
    let mut h = Harness::default();
    let invite = over_tcp(&our("INVITE"));
    h.send(&invite, uas_tcp()).unwrap();
    h.recv(&resp(&invite, 404, Some("callee")), uas_tcp());
    assert_eq!(h.sent_summary(), [(0, "INVITE".into()), (0, "ACK".into())]);
    assert_eq!(h.event_names(), ["Response 404", "Terminated"]);
    assert_eq!(h.layer.poll_timeout(), None);
}

#[test]
fn timer_d_covers_the_servers_timer_h_when_t1_is_large() {
    let mut h = Harness::new(TimerConfig {
        t1: secs(1),
        ..TimerConfig::default()
    });
    let invite = our("INVITE");
    h.send(&invite, uas()).unwrap();
    h.recv(&resp(&invite, 480, Some("callee")), uas());
    h.take_events();
    h.run_until(ms(63_999));
    assert_eq!(h.layer.len(), 1);
    h.run_until(secs(64));
    assert_eq!(h.event_names(), ["Terminated"]);
}

#[test]
fn two_xx_from_another_fork_after_a_non_2xx_still_reaches_the_tu() {
    let mut h = Harness::default();
    let invite = our("INVITE");
    h.send(&invite, uas()).unwrap();
    h.recv(&resp(&invite, 486, Some("fork-a")), uas());
    h.recv(&resp(&invite, 200, Some("fork-b")), uas());
    assert_eq!(h.event_names(), ["Response 486", "Response 200"]);
    // Provisional responses after the final mean nothing.
    h.recv(&resp(&invite, 180, Some("fork-c")), uas());
    assert!(h.event_names().is_empty());
}

#[test]
fn responses_match_on_branch_and_cseq_method() {
    let mut h = Harness::default();
    let invite = our("INVITE");
    h.send(&invite, uas()).unwrap();
    // Same branch, CSeq method CANCEL: the CANCEL's transaction, not ours (none here).
    let cancel_ok = resp(&invite, 200, Some("callee")).replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    h.recv(&cancel_ok, uas());
    assert_eq!(h.event_names(), ["StrayResponse 200"]);
    // Another branch: not ours either.
    h.recv(
        &resp(&invite, 180, Some("x")).replace(BRANCH, "z9hG4bK-other"),
        uas(),
    );
    assert_eq!(h.event_names(), ["StrayResponse 180"]);
    // No branch at all, no CSeq: stray, never a panic.
    h.recv(
        "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 198.51.100.1\r\n\r\n",
        uas(),
    );
    h.recv("SIP/2.0 180 Ringing\r\n\r\n", uas());
    assert_eq!(h.event_names(), ["StrayResponse 180", "StrayResponse 180"]);
    assert_eq!(h.layer.len(), 1);
}

#[test]
fn cancel_runs_its_own_transaction_and_guards_the_invite() {
    let mut h = Harness::default();
    let invite = our("INVITE");
    let key = h.send(&invite, uas()).unwrap();
    h.run_until(secs(1));
    h.recv(&resp(&invite, 180, Some("callee")), uas());
    let cancel = our("CANCEL");
    let cancel_key = h.send(&cancel, uas()).unwrap();
    assert_eq!(
        (cancel_key.method(), cancel_key.branch()),
        ("CANCEL", BRANCH)
    );
    assert_ne!(cancel_key, key);
    h.recv(&resp(&cancel, 200, Some("callee")), uas());
    let events = h.take_events();
    assert!(matches!(&events[1].1, Event::Response { key: k, .. } if *k == cancel_key));

    // The callee never sends 487: 64*T1 after the CANCEL the INVITE is given up (§9.1).
    h.run_until(ms(32_999));
    assert_eq!(
        h.layer.len(),
        1,
        "the CANCEL's transaction ended with Timer K; the INVITE waits"
    );
    h.run_until(secs(33));
    let events = h.take_events();
    let at_33: Vec<_> = events.iter().filter(|(at, _)| *at == secs(33)).collect();
    assert!(
        matches!(&at_33[..], [(_, Event::Timeout { key: k }), (_, Event::Terminated { .. })] if *k == client(&key))
    );
    assert_eq!(h.layer.len(), 0);
}

#[test]
fn cancel_sent_in_calling_arms_the_guard_once_proceeding() {
    let mut h = Harness::default();
    let invite = our("INVITE");
    h.send(&invite, uas()).unwrap();
    h.send(&our("CANCEL"), uas()).unwrap();
    h.run_until(secs(10));
    h.recv(&resp(&invite, 183, Some("callee")), uas());
    h.take_events();
    h.run_until(ms(41_999));
    assert_eq!(
        h.layer.len(),
        1,
        "the CANCEL's transaction timed out; the INVITE waits"
    );
    assert_eq!(
        h.event_names(),
        ["Timeout", "Terminated"],
        "the CANCEL's Timer F"
    );
    h.run_until(secs(42));
    assert_eq!(h.event_names(), ["Timeout", "Terminated"]);
}

#[test]
fn a_487_after_cancel_ends_the_invite_normally() {
    let mut h = Harness::default();
    let invite = our("INVITE");
    h.send(&invite, uas()).unwrap();
    h.recv(&resp(&invite, 180, Some("callee")), uas());
    let cancel = our("CANCEL");
    h.send(&cancel, uas()).unwrap();
    h.recv(&resp(&cancel, 200, Some("callee")), uas());
    h.recv(&resp(&invite, 487, Some("callee")), uas());
    h.run_until(secs(100));
    let names = h.event_names();
    assert!(!names.contains(&"Timeout".to_string()), "{names:?}");
    assert_eq!(h.layer.len(), 0);
}

#[test]
fn send_request_refusals() {
    let mut h = Harness::default();
    let invite = our("INVITE");
    assert!(matches!(
        h.send(&invite.replace(BRANCH, "1234"), uas()),
        Err(TransactionError::NotRfc3261Branch { branch: Some(b) }) if b == "1234"
    ));
    assert!(matches!(
        h.send(&invite.replace(&format!(";branch={BRANCH}"), ""), uas()),
        Err(TransactionError::NotRfc3261Branch { branch: None })
    ));
    assert!(matches!(
        h.send(&invite.replace(BRANCH, "z9hG4bK"), uas()),
        Err(TransactionError::NotRfc3261Branch { .. })
    ));
    assert_eq!(
        h.send(&our("ACK"), uas()),
        Err(TransactionError::AckIsNotATransaction)
    );
    assert!(matches!(
        h.send(&invite.replace("CSeq: 1 INVITE", "CSeq: 1 BYE"), uas()),
        Err(TransactionError::CSeqMismatch { .. })
    ));
    assert!(matches!(
        h.send(&invite.replace("CSeq: 1 INVITE\r\n", ""), uas()),
        Err(TransactionError::CSeq(_))
    ));
    assert!(matches!(
        h.send(&invite.replace("Via: ", "X-Via: "), uas()),
        Err(TransactionError::Via(_))
    ));
    assert_eq!(
        h.send(&resp(&invite, 200, None), uas()),
        Err(TransactionError::NotARequest)
    );
    let key = h.send(&invite, uas()).unwrap();
    assert_eq!(
        h.send(&invite, uas()),
        Err(TransactionError::Duplicate(Box::new(key)))
    );
    assert_eq!(h.layer.len(), 1);
    assert_eq!(h.sent_summary().len(), 1, "refused requests are not sent");
}

#[test]
fn transport_error_fails_only_the_transactions_to_that_peer() {
    let mut h = Harness::default();
    let invite = our("INVITE");
    let key = h.send(&invite, uas()).unwrap();
    let other = h
        .send(
            &our("OPTIONS").replace(BRANCH, "z9hG4bK-o"),
            udp("198.51.100.30:5060"),
        )
        .unwrap();
    h.transport_error(uas());
    let events = h.take_events();
    assert!(
        matches!(&events[..], [(_, Event::TransportError { key: a }), (_, Event::Terminated { key: b })]
        if *a == client(&key) && *b == client(&key))
    );
    assert_eq!(h.layer.len(), 1);
    h.transport_error(uas());
    assert!(h.event_names().is_empty());
    h.transport_error(udp("198.51.100.30:5060"));
    let events = h.take_events();
    assert!(matches!(&events[0].1, Event::TransportError { key: k } if *k == client(&other)));
    assert_eq!(h.layer.poll_timeout(), None);
}

#[test]
fn a_reused_key_does_not_inherit_the_old_transactions_timers() {
    let mut h = Harness::default();
    let invite = our("INVITE");
    h.send(&invite, uas()).unwrap();
    h.run_until(ms(100));
    h.recv(&resp(&invite, 200, Some("callee")), uas());
    h.run_until(ms(200));
    // Same branch again (a TU bug, or a deliberate resend): a fresh transaction whose
    // slot and key are those of the old one, whose A (0.5 s) and B (32 s) are stale.
    h.send(&invite, uas()).unwrap();
    h.take_events();
    h.run_until(secs(40));
    let times: Vec<u128> = h.take_sent().iter().map(|(at, _)| at.as_millis()).collect();
    assert_eq!(times, [0, 200, 700, 1700, 3700, 7700, 15700, 31700]);
    let events = h.take_events();
    assert_eq!(
        events[0].0,
        ms(32_200),
        "Timer B of the new transaction, not the old one"
    );
    assert_eq!(describe(&events[0].1), "Timeout");
}

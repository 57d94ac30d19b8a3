//! Server-side matching (§17.2.3): ACK and CANCEL against their INVITE, RFC 2543
//! peers without the magic cookie, and messages too broken to match.

mod common;

use common::*;
use sihai_transaction::Event;

const BRANCH: &str = "z9hG4bK-inv-7";

#[test]
fn cancel_matching_an_invite_is_answered_200_and_told_to_the_tu() {
    let mut h = Harness::default();
    let invite = req("INVITE", BRANCH);
    let key = h.recv_new(&invite, uac());
    h.respond(&key, &resp(&invite, 180, Some("uas-tag")))
        .unwrap();
    h.take_sent();

    let cancel = req("CANCEL", BRANCH);
    h.recv(&cancel, uac());
    let events = h.take_events();
    assert!(
        matches!(&events[..], [(_, Event::Cancelled { invite })] if *invite == key),
        "{events:?}"
    );
    let sent = h.take_sent();
    assert_eq!(sent.len(), 1);
    let ok = sent_msg(&sent[0].1);
    assert_eq!(ok.status(), Some(200));
    assert_eq!(ok.cseq().unwrap().method.as_str(), "CANCEL");
    assert_eq!(
        ok.to().unwrap().tag(),
        Some("uas-tag"),
        "same To tag as the INVITE's responses (§9.2)"
    );
    assert_eq!(sent[0].1.destination, uac());

    // A retransmitted CANCEL gets the same 200 from its transaction, and no new event.
    h.recv(&cancel, uac());
    let again = h.take_sent();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].1.payload, sent[0].1.payload);
    assert!(h.event_names().is_empty());

    // The TU ends the INVITE with 487, the caller ACKs it.
    h.respond(&key, &resp(&invite, 487, Some("uas-tag")))
        .unwrap();
    h.recv(&with_to_tag(&req("ACK", BRANCH), "uas-tag"), uac());
    assert!(h.event_names().is_empty());
    h.run_until(secs(40));
    assert_eq!(h.event_names(), ["Terminated", "Terminated"]);
    assert_eq!(h.layer.len(), 0);
}

#[test]
fn cancel_matching_nothing_is_answered_481_without_an_event() {
    let mut h = Harness::default();
    let cancel = req("CANCEL", BRANCH);
    h.recv(&cancel, uac());
    assert!(h.event_names().is_empty());
    let sent = h.take_sent();
    assert_eq!(sent.len(), 1);
    let answer = sent_msg(&sent[0].1);
    assert_eq!(answer.status(), Some(481));
    assert!(
        answer.to().unwrap().tag().is_some(),
        "a final response carries a To tag"
    );
    // Its transaction absorbs retransmissions with the same 481.
    h.recv(&cancel, uac());
    assert_eq!(h.take_sent()[0].1.payload, sent[0].1.payload);
    h.run_until(secs(32));
    assert_eq!(h.event_names(), ["Terminated"]);

    // Over TCP there is nothing to absorb: the transaction ends with the answer.
    h.recv(&over_tcp(&cancel), uac_tcp());
    assert_eq!(h.sent_summary(), [(32_000, "481".into())]);
    assert_eq!(h.event_names(), ["Terminated"]);
}

#[test]
fn cancel_after_the_final_response_gets_200_but_no_event() {
    let mut h = Harness::default();
    let invite = req("INVITE", BRANCH);
    let key = h.recv_new(&invite, uac());
    h.respond(&key, &resp(&invite, 486, Some("busy"))).unwrap();
    h.recv(&req("CANCEL", BRANCH), uac());
    assert!(h.event_names().is_empty());
    let sent = h.take_sent();
    assert_eq!(sent_msg(&sent.last().unwrap().1).status(), Some(200));

    // After a 2xx the INVITE transaction is gone (RFC 3261): 481.
    let invite2 = req("INVITE", "z9hG4bK-inv-8");
    let key2 = h.recv_new(&invite2, uac());
    h.respond(&key2, &resp(&invite2, 200, Some("ok"))).unwrap();
    h.take_events();
    h.recv(&req("CANCEL", "z9hG4bK-inv-8"), uac());
    assert!(h.event_names().is_empty());
    assert_eq!(
        sent_msg(&h.take_sent().last().unwrap().1).status(),
        Some(481)
    );
}

#[test]
fn cancel_with_a_different_sent_by_does_not_match() {
    let mut h = Harness::default();
    let invite = req("INVITE", BRANCH);
    h.recv_new(&invite, uac());
    h.recv(
        &req("CANCEL", BRANCH).replace("192.0.2.10:5060;", "192.0.2.66:5060;"),
        udp("192.0.2.66:5060"),
    );
    assert!(h.event_names().is_empty());
    assert_eq!(sent_msg(&h.take_sent()[0].1).status(), Some(481));
}

#[test]
fn ack_for_2xx_is_stray_ack_for_non_2xx_is_absorbed() {
    let mut h = Harness::default();
    let a = req("INVITE", "z9hG4bK-a");
    let ka = h.recv_new(&a, uac());
    let b = req("INVITE", "z9hG4bK-b");
    let kb = h.recv_new(&b, uac());
    h.respond(&ka, &resp(&a, 200, Some("ta"))).unwrap();
    h.respond(&kb, &resp(&b, 404, Some("tb"))).unwrap();
    h.take_events();
    h.recv(&with_to_tag(&req("ACK", "z9hG4bK-ack-for-a"), "ta"), uac());
    h.recv(&with_to_tag(&req("ACK", "z9hG4bK-b"), "tb"), uac());
    let events = h.take_events();
    assert!(
        matches!(&events[..], [(_, Event::StrayAck { request, source })]
        if request.top_via().unwrap().branch() == Some("z9hG4bK-ack-for-a") && *source == uac())
    );
}

/// An RFC 2543 peer: a branch without the cookie, or none.
fn legacy(method: &str) -> String {
    req(method, "1").replace(";branch=1", "")
}

#[test]
fn rfc2543_retransmission_and_ack_are_matched_by_headers() {
    let mut h = Harness::default();
    let invite = legacy("INVITE");
    let key = h.recv_new(&invite, uac());
    assert_eq!(key.branch(), None);
    h.respond(&key, &resp(&invite, 100, None)).unwrap();
    h.recv(&invite, uac());
    assert!(
        h.event_names().is_empty(),
        "a retransmission, not a new request"
    );
    assert_eq!(h.sent_summary(), [(0, "100".into()), (0, "100".into())]);

    h.respond(&key, &resp(&invite, 486, Some("busy-tag")))
        .unwrap();
    h.recv(&invite, uac());
    assert_eq!(h.sent_summary(), [(0, "486".into()), (0, "486".into())]);

    // An ACK whose To tag is not that of our final response is not ours.
    h.recv(&with_to_tag(&legacy("ACK"), "other-tag"), uac());
    assert_eq!(h.event_names(), ["StrayAck"]);
    // The right ACK confirms: absorbed, Timer G stops.
    h.recv(&with_to_tag(&legacy("ACK"), "busy-tag"), uac());
    assert!(h.event_names().is_empty());
    h.run_until(secs(5));
    assert!(
        h.take_sent().is_empty(),
        "Confirmed: no more retransmissions of the 486"
    );
    assert_eq!(h.event_names(), ["Terminated"], "Timer I");
}

#[test]
fn rfc2543_requests_differing_in_any_identifying_header_are_new() {
    let mut h = Harness::default();
    let invite = req("INVITE", "not-a-cookie");
    h.recv_new(&invite, uac());
    for variant in [
        invite.replace("CSeq: 1 INVITE", "CSeq: 2 INVITE"),
        invite.replace("Call-ID: call-1", "Call-ID: call-2"),
        invite.replace("tag=from-1", "tag=from-2"),
        invite.replace("INVITE sip:4001234567@", "INVITE sip:4001234568@"),
        with_to_tag(&invite, "in-dialog"),
        invite.replace("branch=not-a-cookie", "branch=not-a-cookie-2"),
    ] {
        h.recv_new(&variant, uac());
    }
    assert_eq!(h.layer.len(), 7);
}

#[test]
fn rfc2543_reinvite_and_its_cancel_and_ack() {
    let mut h = Harness::default();
    // In dialog: the INVITE already has a To tag, and so do its CANCEL and ACK.
    let reinvite = with_to_tag(&legacy("INVITE"), "dlg");
    let key = h.recv_new(&reinvite, uac());
    h.recv(&with_to_tag(&legacy("CANCEL"), "dlg"), uac());
    assert_eq!(h.event_names(), ["Cancelled"]);
    assert_eq!(sent_msg(&h.take_sent()[0].1).status(), Some(200));
    h.respond(&key, &resp(&reinvite, 487, None)).unwrap();
    h.recv(&with_to_tag(&legacy("ACK"), "dlg"), uac());
    assert!(h.event_names().is_empty());
    // A CANCEL without the tag names another (nonexistent) INVITE.
    h.recv(&legacy("CANCEL"), uac());
    assert!(h.event_names().is_empty());
    assert_eq!(
        sent_msg(&h.take_sent().last().unwrap().1).status(),
        Some(481)
    );
}

#[test]
fn rfc2543_non_invite_retransmission() {
    let mut h = Harness::default();
    let options = legacy("OPTIONS");
    let key = h.recv_new(&options, uac());
    h.respond(&key, &resp(&options, 200, Some("t"))).unwrap();
    h.recv(&options, uac());
    assert!(h.event_names().is_empty());
    assert_eq!(h.sent_summary(), [(0, "200".into()), (0, "200".into())]);
}

#[test]
fn unmatchable_requests_are_dropped_quietly() {
    let mut h = Harness::default();
    // No Via: no transaction can exist and no answer can be routed.
    h.recv(
        "OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n",
        uac(),
    );
    // RFC 2543 request without the headers that identify it.
    h.recv(
        "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n",
        uac(),
    );
    // Nor an ACK without one (the caller's validation refuses all three anyway).
    h.recv("ACK sip:a@b SIP/2.0\r\n\r\n", uac());
    assert!(h.take_sent().is_empty());
    assert!(h.event_names().is_empty());
    assert_eq!(h.layer.len(), 0);
}

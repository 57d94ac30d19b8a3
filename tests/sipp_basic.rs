//! sipp, the load tool carriers use, against the running daemon over UDP and TCP:
//! keep-alives, an INVITE answered with a final response and its ACK absorbed, and a
//! retransmitted INVITE answered from its transaction.

mod support;

use support::{Daemon, sipp_uac};

#[test]
fn options_keepalive_over_udp_and_tcp() {
    let daemon = Daemon::start("");
    sipp_uac(&daemon, "options.xml", "u1", 50, 50);
    sipp_uac(&daemon, "options.xml", "t1", 50, 50);
}

#[test]
fn invite_gets_final_response_and_ack_is_absorbed() {
    let daemon = Daemon::start("");
    sipp_uac(&daemon, "invite_final.xml", "u1", 30, 30);
    sipp_uac(&daemon, "invite_final.xml", "t1", 30, 30);
}

#[test]
fn retransmitted_invite_is_answered_from_the_transaction() {
    let daemon = Daemon::start("");
    // sipp exits 0 only if all 60 calls got their 404; it drops every 100 and 35 % of
    // the 404s, so it must have retransmitted, and each retransmission was answered by
    // the transaction. A lost 404 is recovered either by sipp's INVITE retransmission
    // or by our own Timer G retransmission of the 404, whichever comes first (both at
    // ~500 ms), so about one lost 404 in two makes sipp retransmit: ~10 INVITE
    // retransmissions per run, none at all about once in 40,000 runs; a call fails only
    // if about twelve 404s in a row are lost before sipp's 30 s timeout.
    let run = sipp_uac(&daemon, "invite_retransmitted.xml", "u1", 60, 30);
    assert!(
        run.sent("INVITE") > 60,
        "sipp never had to retransmit: {} INVITEs sent",
        run.sent("INVITE")
    );
}

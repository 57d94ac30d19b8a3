//! 来电弹屏 in the core, on the virtual clock: a call of an enterprise with a CRM asks
//! once and rings nobody until the answer or the timeout; the answer's name and customer
//! id reach the phone's INVITE and the CDR; no answer rings at the timeout with the
//! plain number; the cache answers a repeat caller without a lookup. The daemon's side
//! (the HTTP) is played by the test through `on_crm_answer`.

use super::billing::Clock;
use super::*;
use sihai_call::b2bua::{CUSTOMER_ID_HEADER, CallerIdentity, CrmAnswer};
use sihai_sip::NameAddr;

/// `acme` with a CRM answering within 300 ms; its first phone takes several calls at
/// once, so that each call of a test rings it.
fn with_crm(config: &str) -> String {
    config
        .replace(
            "name = \"Acme\"\n",
            "name = \"Acme\"\ncrm_lookup_url = \"http://127.0.0.1:9/who\"\ncrm_timeout_ms = 300\n",
        )
        .replace(
            "ring_timeout_s = 5 }",
            "ring_timeout_s = 5, capacity = 10 }",
        )
}

/// The `n`th call of the same caller (its own Call-ID and branch).
fn call(n: u32) -> Bytes {
    Bytes::from(
        CALL.replace("z9hG4bKcall1", &format!("z9hG4bKcall{n}"))
            .replace("call-1@carrier", &format!("call-{n}@carrier")),
    )
}

fn known(name: &str, customer_id: &str) -> CrmAnswer {
    CrmAnswer::Known(CallerIdentity::new(Some(name), Some(customer_id)).expect("usable"))
}

fn invites_now(core: &mut Core) -> Vec<Message> {
    requests_to_phones(&parsed(&drain(core)), Method::Invite)
}

fn display_of(header: &str) -> Option<String> {
    NameAddr::parse(header)
        .ok()
        .and_then(|a| a.display.map(str::to_owned))
}

#[test]
fn an_answer_before_the_timeout_puts_the_name_and_customer_id_on_the_phones_invite() {
    let mut core = core_with(&with_crm(CONFIG));
    let clock = Clock::new();
    let t0 = clock.t0;
    core.handle_received(t0, clock.wall(t0), call(1), udp_peer());
    let sent = parsed(&drain(&mut core));
    assert_eq!(statuses_to_caller(&sent), vec![100]);
    assert!(
        requests_to_phones(&sent, Method::Invite).is_empty(),
        "nothing rings while the CRM is asked"
    );
    let lookup = core.poll_crm_lookup().expect("the CRM is asked");
    assert_eq!(lookup.url, "http://127.0.0.1:9/who");
    assert_eq!(lookup.caller, "13800138000");
    assert_eq!(lookup.number, "4001234567");
    assert_eq!(lookup.timeout, Duration::from_millis(300));
    assert!(core.poll_crm_lookup().is_none(), "asked once per call");

    let t1 = t0 + Duration::from_millis(120);
    core.handle_timeout(t1, clock.wall(t1));
    assert!(invites_now(&mut core).is_empty(), "still within the wait");
    core.on_crm_answer(
        t1,
        clock.wall(t1),
        lookup.lookup,
        known("张 \"三\"", "C1024"),
    );
    let invites = invites_now(&mut core);
    assert_eq!(invites.len(), 1, "the answer rings the phone at once");
    let leg = &invites[0];
    assert_eq!(
        display_of(leg.header(HeaderName::From).unwrap()).as_deref(),
        Some(r#""张 \"三\"""#),
        "quoted and escaped per RFC 3261"
    );
    assert!(leg.from().unwrap().uri.starts_with("sip:13800138000@"));
    assert_eq!(
        display_of(leg.header(HeaderName::PAssertedIdentity).unwrap()).as_deref(),
        Some(r#""张 \"三\"""#)
    );
    assert_eq!(leg.header_named(CUSTOMER_ID_HEADER), Some("C1024"));

    // The first phone is busy: the second gets the name too; then it is busy as well.
    phone_says(&mut core, t1, leg, 486, "p1", None);
    let second = invites_now(&mut core);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].header_named(CUSTOMER_ID_HEADER), Some("C1024"));
    phone_says(&mut core, t1, &second[0], 486, "p2", None);
    drain(&mut core);
    let (cdr, _) = core.poll_record().expect("a CDR");
    assert_eq!(cdr.customer_id.as_deref(), Some("C1024"));
}

#[test]
fn no_answer_rings_at_the_timeout_with_the_plain_number() {
    let mut core = core_with(&with_crm(CONFIG));
    let clock = Clock::new();
    let t0 = clock.t0;
    core.handle_received(t0, clock.wall(t0), call(1), udp_peer());
    drain(&mut core);
    let lookup = core.poll_crm_lookup().expect("the CRM is asked");
    assert_eq!(
        core.poll_timeout(),
        Some(t0 + Duration::from_millis(300)),
        "the call wakes at the CRM timeout"
    );
    let before = t0 + Duration::from_millis(299);
    core.handle_timeout(before, clock.wall(before));
    assert!(invites_now(&mut core).is_empty());
    let at = t0 + Duration::from_millis(300);
    core.handle_timeout(at, clock.wall(at));
    let invites = invites_now(&mut core);
    assert_eq!(invites.len(), 1, "the phone rings at the timeout");
    assert_eq!(
        display_of(invites[0].header(HeaderName::From).unwrap()),
        None
    );
    assert_eq!(invites[0].header_named(CUSTOMER_ID_HEADER), None);

    // The late answer rings nothing more, and fills the cache for the next call.
    let late = at + Duration::from_millis(500);
    core.on_crm_answer(
        late,
        clock.wall(late),
        lookup.lookup,
        known("张三", "C1024"),
    );
    assert!(invites_now(&mut core).is_empty(), "no second INVITE");
    core.handle_received(late, clock.wall(late), call(2), udp_peer());
    assert!(core.poll_crm_lookup().is_none(), "answered from the cache");
    let invites = invites_now(&mut core);
    assert_eq!(invites.len(), 1, "the repeat caller rings at once");
    assert_eq!(
        display_of(invites[0].header(HeaderName::From).unwrap()).as_deref(),
        Some("\"张三\"")
    );

    // The metrics: one lookup timed out (and its late answer was a known caller), one
    // answered from the cache.
    core.publish_gauges();
    let counted: Vec<u64> = core
        .stats
        .crm_lookups
        .iter()
        .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
        .collect();
    assert_eq!(
        crate::stats::CRM_RESULTS
            .iter()
            .copied()
            .zip(counted)
            .collect::<Vec<_>>(),
        [
            ("cached", 1),
            ("known", 1),
            ("unknown", 0),
            ("failed", 0),
            ("timed_out", 1)
        ]
    );
}

#[test]
fn the_cache_answers_a_repeat_caller_and_failures_are_asked_again() {
    let mut core = core_with(&with_crm(CONFIG));
    let clock = Clock::new();
    let t0 = clock.t0;
    core.handle_received(t0, clock.wall(t0), call(1), udp_peer());
    drain(&mut core);
    let first = core.poll_crm_lookup().expect("asked");
    core.on_crm_answer(t0, clock.wall(t0), first.lookup, CrmAnswer::Failed);
    let invites = invites_now(&mut core);
    assert_eq!(invites.len(), 1, "a failed lookup rings at once");
    assert_eq!(invites[0].header_named(CUSTOMER_ID_HEADER), None);

    // A failure is not cached: the next call asks again; "not a customer" is cached.
    core.handle_received(t0, clock.wall(t0), call(2), udp_peer());
    drain(&mut core);
    let second = core.poll_crm_lookup().expect("asked again after a failure");
    core.on_crm_answer(t0, clock.wall(t0), second.lookup, CrmAnswer::Unknown);
    assert_eq!(invites_now(&mut core).len(), 1);
    core.handle_received(t0, clock.wall(t0), call(3), udp_peer());
    assert!(core.poll_crm_lookup().is_none(), "not a customer: cached");
    assert_eq!(invites_now(&mut core).len(), 1, "rings at once");

    // The cache forgets after its TTL.
    let later = t0 + sihai_call::b2bua::CRM_CACHE_TTL;
    core.handle_received(later, clock.wall(later), call(4), udp_peer());
    assert!(core.poll_crm_lookup().is_some(), "asked again once stale");
}

#[test]
fn numbers_without_a_crm_ring_at_once_and_ask_nothing() {
    let mut core = core();
    let t0 = Instant::now();
    core.handle_received(t0, wall(), call(1), udp_peer());
    assert_eq!(invites_now(&mut core).len(), 1);
    assert!(core.poll_crm_lookup().is_none());
}

#[test]
fn a_caller_who_cancels_while_the_crm_is_asked_gets_487_and_no_phone_rings() {
    let mut core = core_with(&with_crm(CONFIG));
    let clock = Clock::new();
    let t0 = clock.t0;
    core.handle_received(t0, clock.wall(t0), call(1), udp_peer());
    drain(&mut core);
    let lookup = core.poll_crm_lookup().expect("asked");
    let cancel = "CANCEL sip:4001234567@127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bKcall1;rport\r\n\
        From: <sip:+8613800138000@192.0.2.7>;tag=carrier\r\nTo: <sip:4001234567@127.0.0.1>\r\n\
        Call-ID: call-1@carrier\r\nCSeq: 1 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    core.handle_received(
        t0,
        clock.wall(t0),
        Bytes::from_static(cancel.as_bytes()),
        udp_peer(),
    );
    let sent = parsed(&drain(&mut core));
    assert!(statuses_to_caller(&sent).contains(&487), "{sent:?}");
    assert!(requests_to_phones(&sent, Method::Invite).is_empty());
    let at = t0 + Duration::from_millis(300);
    core.handle_timeout(at, clock.wall(at));
    core.on_crm_answer(at, clock.wall(at), lookup.lookup, known("张三", "C1"));
    assert!(
        invites_now(&mut core).is_empty(),
        "the ended call rings nobody"
    );
    assert!(core.poll_record().is_some(), "its CDR");
}

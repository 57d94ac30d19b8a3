//! Announcements instead of bare error codes, on the virtual clock: the caller gets
//! `183` with the relay's SDP, hears the number's prompt the configured number of
//! times, then the final status that fits; the CDR keeps its outcome and names the
//! prompt.

use super::*;

/// The plain number's plan announces busy, no answer, suspended and refused callers
/// twice; `4000000003`'s plan is never open and announces that once; `4000000001` is
/// suspended. The enterprise has a webhook, so missed-call alerts can be seen.
fn announced_config() -> String {
    CONFIG
        .replace(
            "name = \"Acme\"\n",
            "name = \"Acme\"\nalert_webhook = \"http://127.0.0.1:9/missed\"\n",
        )
        .replace(
            "group = \"sales\"\n[[group]]",
            "group = \"sales\"\nblacklist = [\"13900000000\"]\n\
             announcements = { busy = \"busy\", no_answer = \"no-answer\", suspended = \"suspended\", refused = \"refused\" }\n\
             announcement_plays = 2\n[[group]]",
        )
        + r#"
[[number]]
number = "4000000001"
enterprise = "acme"
status = "suspended"
plan = "main"
[[number]]
number = "4000000003"
enterprise = "acme"
status = "active"
plan = "closed"
[[plan]]
name = "closed"
enterprise = "acme"
group = "sales"
schedule = "never"
announcements = { after_hours = "after-hours" }
[[schedule]]
name = "never"
[[prompt]]
name = "after-hours"
file = "after-hours.wav"
[[prompt]]
name = "busy"
file = "busy.wav"
[[prompt]]
name = "no-answer"
file = "no-answer.wav"
[[prompt]]
name = "suspended"
file = "suspended.wav"
[[prompt]]
name = "refused"
file = "refused.wav"
"#
}

/// 100 ms prompts of one constant sample each (five 20 ms packets per play), so a
/// packet tells which one plays.
const ANNOUNCEMENT_LEVELS: [(&str, i16); 5] = [
    ("after-hours", 1500),
    ("busy", 2500),
    ("no-answer", 3500),
    ("suspended", 4500),
    ("refused", 5500),
];

fn announcing_core_with(config: &str) -> Core {
    let mut core = anchored_core_with(config);
    core.set_prompts(Arc::new(levelled_prompts(&ANNOUNCEMENT_LEVELS)));
    core
}

fn levelled_prompts(
    levels: &[(&str, i16)],
) -> std::collections::HashMap<String, sihai_media::Prompt> {
    levels
        .iter()
        .map(|&(name, level)| (name.to_string(), sihai_media::Prompt::new(&[level; 800])))
        .collect()
}

/// The announcement a packet to the caller carries (by its first sample), if any.
fn announcement_of(payload: &[u8]) -> Option<&'static str> {
    let packet = sihai_media::RtpPacket::parse(payload).ok()?;
    let sample = sihai_media::Law::Ulaw.decode(*packet.payload().first()?);
    ANNOUNCEMENT_LEVELS
        .iter()
        .find(|(_, level)| (i32::from(sample) - i32::from(*level)).abs() < 200)
        .map(|(name, _)| *name)
}

/// What the caller got over `ms` of virtual time in 20 ms steps: the signalling, and
/// the name of the announcement each RTP packet carried ("?" for other audio).
struct Heard {
    sent: Vec<(Peer, Message)>,
    packets: Vec<&'static str>,
}

impl Heard {
    fn count(&self, name: &str) -> usize {
        self.packets.iter().filter(|p| **p == name).count()
    }
}

fn run_for(core: &mut Core, now: &mut Instant, ms: u64, heard: &mut Heard) {
    for _ in 0..ms / 20 {
        take_media(core, heard);
        *now += Duration::from_millis(20);
        core.handle_timeout(*now, wall());
        heard.sent.extend(parsed(&drain(core)));
    }
    take_media(core, heard);
}

fn take_media(core: &mut Core, heard: &mut Heard) {
    while let Some(t) = core.poll_media_transmit() {
        heard
            .packets
            .push(announcement_of(&t.payload).unwrap_or("?"));
    }
}

/// The offered call to `number` from `caller` (as the carrier writes it).
fn offered_call(number: &str, caller: &str) -> Bytes {
    let text = String::from_utf8(call_with_offer().to_vec()).unwrap();
    Bytes::from(
        text.replace("4001234567", number)
            .replace("+8613800138000", caller),
    )
}

/// Sends `invite` and returns what came back at once, the clock, and the ports opened.
fn place(core: &mut Core, invite: Bytes) -> (Heard, Instant, Vec<u16>) {
    let t0 = Instant::now();
    core.handle_received(t0, wall(), invite, udp_peer());
    let mut heard = Heard {
        sent: parsed(&drain(core)),
        packets: Vec::new(),
    };
    take_media(core, &mut heard);
    let opened = std::iter::from_fn(|| core.poll_port_event())
        .filter_map(|e| match e {
            sihai_call::media::PortEvent::Open(port) => Some(port),
            sihai_call::media::PortEvent::Close(_) => None,
        })
        .collect();
    (heard, t0, opened)
}

fn to_caller(sent: &[(Peer, Message)], status: u16) -> Option<Message> {
    sent.iter()
        .find(|(p, m)| *p == udp_peer() && m.status() == Some(status))
        .map(|(_, m)| m.clone())
}

#[track_caller]
fn assert_all_ports_back(core: &mut Core) {
    assert_eq!(core.active_calls(), 0);
    assert_eq!(
        core.media_ports_available(),
        Some(5),
        "ports back in the pool"
    );
}

#[test]
fn after_hours_is_announced_as_early_media_then_refused_with_480() {
    let mut core = announcing_core_with(&announced_config());
    let (mut heard, mut now, opened) = place(&mut core, offered_call("4000000003", "13800138000"));
    assert_eq!(statuses_to_caller(&heard.sent), [100, 183]);
    assert_eq!(opened.len(), 2, "the caller's call is anchored: {opened:?}");
    let progress = to_caller(&heard.sent, 183).unwrap();
    let sdp = audio_of(&progress);
    assert_eq!(
        (sdp.address.to_string().as_str(), sdp.port),
        ("127.0.0.1", opened[0])
    );
    assert!(
        requests_to_phones(&heard.sent, Method::Invite).is_empty(),
        "no phone rings"
    );
    run_for(&mut core, &mut now, 300, &mut heard);
    assert_eq!(
        heard.count("after-hours"),
        5,
        "one play: {:?}",
        heard.packets
    );
    assert_eq!(heard.packets.len(), 5, "nothing but the announcement");
    let refusal = to_caller(&heard.sent, 480).expect("480 once it has played");
    assert_eq!(
        refusal.to().unwrap().tag(),
        progress.to().unwrap().tag(),
        "the final response ends the early dialog the 183 began"
    );
    assert_all_ports_back(&mut core);
    let (cdr, alert) = core.poll_record().expect("a CDR");
    assert_eq!(cdr.outcome, sihai_store::Outcome::AfterHours);
    assert_eq!(cdr.announcement.as_deref(), Some("after-hours"));
    assert_eq!(cdr.hangup_cause.as_deref(), Some("after_hours"));
    assert!(
        alert.is_some_and(|a| a.payload.contains("after_hours")),
        "the enterprise still hears of the missed call"
    );
}

#[test]
fn all_phones_busy_hear_the_busy_announcement_twice_then_486() {
    let mut core = announcing_core_with(&announced_config());
    let (mut heard, mut now, _) = place(&mut core, offered_call("4001234567", "13800138000"));
    let first = requests_to_phones(&heard.sent, Method::Invite).remove(0);
    phone_says(&mut core, now, &first, 486, "ph1", None);
    let second = requests_to_phones(&parsed(&drain(&mut core)), Method::Invite).remove(0);
    phone_says(&mut core, now, &second, 486, "ph2", None);
    heard.sent.extend(parsed(&drain(&mut core)));
    take_media(&mut core, &mut heard);
    assert_eq!(statuses_to_caller(&heard.sent), [100, 183], "no 486 yet");
    run_for(&mut core, &mut now, 400, &mut heard);
    assert_eq!(heard.count("busy"), 10, "two plays: {:?}", heard.packets);
    assert_eq!(statuses_to_caller(&heard.sent), [100, 183, 486]);
    assert_all_ports_back(&mut core);
    let (cdr, alert) = core.poll_record().expect("a CDR");
    assert_eq!(cdr.outcome, sihai_store::Outcome::Busy);
    assert_eq!(cdr.announcement.as_deref(), Some("busy"));
    let results: Vec<&str> = cdr.attempts.iter().map(|a| a.result.as_str()).collect();
    assert_eq!(results, ["486", "486"]);
    assert!(alert.is_some(), "missed-call alerts are unchanged");
}

#[test]
fn nobody_answering_hears_the_announcement_after_ringback_without_a_second_183() {
    let mut core = announcing_core_with(&announced_config());
    let (mut heard, mut now, _) = place(&mut core, offered_call("4001234567", "13800138000"));
    let first = requests_to_phones(&heard.sent, Method::Invite).remove(0);
    phone_says(&mut core, now, &first, 180, "ph1", None);
    heard.sent.extend(parsed(&drain(&mut core)));
    run_for(&mut core, &mut now, 100, &mut heard);
    assert!(
        heard.count("?") >= 5,
        "the ringing tone plays: {:?}",
        heard.packets
    );
    phone_says(&mut core, now, &first, 480, "ph1", None);
    let second = requests_to_phones(&parsed(&drain(&mut core)), Method::Invite).remove(0);
    phone_says(&mut core, now, &second, 408, "ph2", None);
    heard.sent.extend(parsed(&drain(&mut core)));
    heard.packets.clear();
    run_for(&mut core, &mut now, 400, &mut heard);
    assert_eq!(heard.count("no-answer"), 10, "{:?}", heard.packets);
    assert_eq!(
        statuses_to_caller(&heard.sent),
        [100, 183, 480],
        "one 183 for ringback and announcement both"
    );
    let (cdr, _) = core.poll_record().expect("a CDR");
    assert_eq!(cdr.outcome, sihai_store::Outcome::NoAnswer);
    assert_eq!(cdr.announcement.as_deref(), Some("no-answer"));
    assert!(cdr.ring_at.is_some());
    assert_all_ports_back(&mut core);
}

#[test]
fn suspended_numbers_and_refused_callers_hear_theirs_and_raise_no_alert() {
    for (number, caller, prompt, status, outcome) in [
        (
            "4000000001",
            "13800138000",
            "suspended",
            480,
            sihai_store::Outcome::Rejected,
        ),
        (
            "4001234567",
            "13900000000",
            "refused",
            603,
            sihai_store::Outcome::Blacklisted,
        ),
    ] {
        let mut core = announcing_core_with(&announced_config());
        let (mut heard, mut now, _) = place(&mut core, offered_call(number, caller));
        assert_eq!(statuses_to_caller(&heard.sent), [100, 183], "{prompt}");
        run_for(&mut core, &mut now, 400, &mut heard);
        assert_eq!(heard.count(prompt), 10, "{prompt}: {:?}", heard.packets);
        assert_eq!(statuses_to_caller(&heard.sent), [100, 183, status]);
        assert_all_ports_back(&mut core);
        let (cdr, alert) = core.poll_record().expect("a CDR");
        assert_eq!(cdr.outcome, outcome);
        assert_eq!(cdr.announcement.as_deref(), Some(prompt));
        assert_eq!(cdr.hangup_cause, Some(status.to_string()));
        assert!(
            alert.is_none(),
            "{prompt}: refused on purpose, nobody is told"
        );
    }
}

#[test]
fn a_caller_cancelling_the_announcement_gets_487_and_the_outcome_stays() {
    let mut core = announcing_core_with(&announced_config());
    let invite = offered_call("4000000003", "13800138000");
    let (mut heard, mut now, _) = place(&mut core, invite.clone());
    run_for(&mut core, &mut now, 40, &mut heard);
    let cancel = MessageBuilder::cancel_for(&Message::parse(invite).unwrap()).build();
    core.handle_received(now, wall(), cancel.wire(), udp_peer());
    let sent = parsed(&drain(&mut core));
    let mut statuses = statuses_to_caller(&sent);
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [200, 487],
        "200 for the CANCEL, 487 for the INVITE"
    );
    assert_all_ports_back(&mut core);
    let (cdr, _) = core.poll_record().expect("a CDR");
    assert_eq!(cdr.outcome, sihai_store::Outcome::AfterHours);
    assert_eq!(cdr.announcement.as_deref(), Some("after-hours"));
    assert_eq!(cdr.hangup_side, Some(sihai_store::HangupSide::Caller));
    assert_eq!(cdr.hangup_cause.as_deref(), Some("CANCEL"));
    // Nothing plays on: the relay is gone with the call.
    run_for(&mut core, &mut now, 100, &mut heard);
    assert!(core.poll_media_transmit().is_none());
}

#[test]
fn without_relay_offer_or_announcement_the_bare_status_goes_at_once() {
    // The relay off: nothing to play on.
    let mut core = core_with(&announced_config());
    core.set_prompts(Arc::new(levelled_prompts(&ANNOUNCEMENT_LEVELS)));
    let (heard, _, _) = place(&mut core, offered_call("4000000003", "13800138000"));
    assert_eq!(statuses_to_caller(&heard.sent), [100, 480]);
    let (cdr, alert) = core.poll_record().unwrap();
    assert_eq!(
        (cdr.outcome, cdr.announcement),
        (sihai_store::Outcome::AfterHours, None)
    );
    assert!(alert.is_some());

    // No SDP offer (a late offer): nothing to answer with early media.
    let mut core = announcing_core_with(&announced_config());
    let late = String::from_utf8(offered_call("4000000003", "13800138000").to_vec()).unwrap();
    let (head, _) = late.split_once("Content-Type").unwrap();
    let (heard, _, opened) = place(
        &mut core,
        Bytes::from(format!("{head}Content-Length: 0\r\n\r\n")),
    );
    assert_eq!(statuses_to_caller(&heard.sent), [100, 480]);
    assert!(opened.is_empty());
    assert_eq!(core.poll_record().unwrap().0.announcement, None);

    // The prompt did not load: the bare status, no ports held.
    let mut core = anchored_core_with(&announced_config());
    let (heard, _, opened) = place(&mut core, offered_call("4000000003", "13800138000"));
    assert_eq!(statuses_to_caller(&heard.sent), [100, 480]);
    assert!(opened.is_empty());
    assert_all_ports_back(&mut core);

    // Unknown numbers and strangers are no enterprise's callers: never an announcement,
    // even from a number that has one.
    let mut core = announcing_core_with(&announced_config());
    let (heard, _, opened) = place(&mut core, offered_call("4009999999", "13800138000"));
    assert_eq!(statuses_to_caller(&heard.sent), [100, 404]);
    assert!(opened.is_empty());
    let stranger = Peer::new(Transport::Udp, "198.51.100.1:5060".parse().unwrap());
    let invite = String::from_utf8(offered_call("4000000001", "13800138000").to_vec())
        .unwrap()
        .replace("192.0.2.7:5062;branch", "198.51.100.1:5060;branch");
    core.handle_received(Instant::now(), wall(), Bytes::from(invite), stranger);
    let codes: Vec<u16> = parsed(&drain(&mut core))
        .iter()
        .filter_map(|(_, m)| m.status())
        .collect();
    // Turned away statelessly before any call exists: one 403, no 100.
    assert_eq!(codes, [403]);
    assert_eq!(core.poll_port_event(), None);
    assert_all_ports_back(&mut core);
}

#[test]
fn a_plan_without_announcements_still_refuses_with_the_bare_status() {
    let mut core = announcing_core_with(&announced_config().replace(
        "announcements = { busy = \"busy\", no_answer = \"no-answer\", suspended = \"suspended\", refused = \"refused\" }\n",
        "",
    ));
    let (mut heard, now, _) = place(&mut core, offered_call("4001234567", "13800138000"));
    let first = requests_to_phones(&heard.sent, Method::Invite).remove(0);
    phone_says(&mut core, now, &first, 486, "ph1", None);
    let second = requests_to_phones(&parsed(&drain(&mut core)), Method::Invite).remove(0);
    phone_says(&mut core, now, &second, 486, "ph2", None);
    heard.sent.extend(parsed(&drain(&mut core)));
    assert_eq!(statuses_to_caller(&heard.sent), [100, 486]);
    assert_all_ports_back(&mut core);
    assert_eq!(core.poll_record().unwrap().0.announcement, None);
}

#[test]
fn a_number_at_its_concurrency_limit_announces_busy_and_keeps_its_count() {
    let config = announced_config().replace(
        "plan = \"main\"\n[[plan]]",
        "plan = \"main\"\nmax_concurrent = 1\n[[plan]]",
    );
    let mut core = announcing_core_with(&config);
    let (heard, now, _) = place(&mut core, offered_call("4001234567", "13800138000"));
    let leg = requests_to_phones(&heard.sent, Method::Invite).remove(0);
    phone_says(&mut core, now, &leg, 200, "ph1", Some(PHONE_ANSWER));
    assert!(
        to_caller(&parsed(&drain(&mut core)), 200).is_some(),
        "answered"
    );
    for i in 2..4 {
        let invite = String::from_utf8(offered_call("4001234567", "13800138000").to_vec())
            .unwrap()
            .replace("call-1@carrier", &format!("call-{i}@carrier"))
            .replace("z9hG4bKcall1", &format!("z9hG4bKcall{i}"));
        let (mut heard, mut now, _) = place(&mut core, Bytes::from(invite));
        assert_eq!(statuses_to_caller(&heard.sent), [100, 183], "call {i}");
        run_for(&mut core, &mut now, 400, &mut heard);
        assert_eq!(heard.count("busy"), 10, "call {i}: {:?}", heard.packets);
        assert_eq!(
            statuses_to_caller(&heard.sent),
            [100, 183, 486],
            "call {i}: the answered call still holds the number's one place"
        );
        let (cdr, alert) = core.poll_record().expect("a CDR");
        assert_eq!(cdr.outcome, sihai_store::Outcome::Busy);
        assert_eq!(cdr.announcement.as_deref(), Some("busy"));
        assert!(
            alert.is_none(),
            "a limit refusal raises no alert, as before"
        );
    }
    assert_eq!(core.active_calls(), 1, "the answered call goes on");
}

#[test]
fn a_call_the_menu_answered_hears_the_announcement_before_the_bye() {
    let config = format!("{CONFIG}{MENU_CONFIG}").replace(
        "menu = \"acme-menu\"\nhunt_timeout_s = 30\n",
        "menu = \"acme-menu\"\nhunt_timeout_s = 30\nannouncements = { busy = \"busy\" }\n",
    ) + "[[prompt]]\nname = \"busy\"\nfile = \"busy.wav\"\n";
    let mut core = anchored_core_with(&config);
    let mut levels: Vec<(&str, i16)> = PROMPT_LEVELS.to_vec();
    levels.push(("busy", 2500));
    core.set_prompts(Arc::new(levelled_prompts(&levels)));
    let (tag, caller_port, mut now) = answered_by_menu(&mut core);
    let mut heard = Heard {
        sent: Vec::new(),
        packets: Vec::new(),
    };
    run_for(&mut core, &mut now, 100, &mut heard);
    let mut seq = 100;
    press(&mut core, now, caller_port, &mut seq, '1');
    heard.sent.extend(parsed(&drain(&mut core)));
    run_for(&mut core, &mut now, 40, &mut heard);
    let first = requests_to_phones(&heard.sent, Method::Invite).remove(0);
    phone_says(&mut core, now, &first, 486, "ph1", None);
    let second = requests_to_phones(&parsed(&drain(&mut core)), Method::Invite).remove(0);
    phone_says(&mut core, now, &second, 486, "ph2", None);
    heard.sent = parsed(&drain(&mut core));
    heard.packets.clear();
    assert!(
        !heard
            .sent
            .iter()
            .any(|(p, m)| *p == udp_peer() && m.method() == Some(Method::Bye)),
        "no BYE before the announcement"
    );
    run_for(&mut core, &mut now, 200, &mut heard);
    assert_eq!(heard.count("busy"), 5, "{:?}", heard.packets);
    assert!(
        statuses_to_caller(&heard.sent).is_empty(),
        "the caller was answered: no 183, no 486"
    );
    let bye = heard
        .sent
        .iter()
        .find(|(p, m)| *p == udp_peer() && m.method() == Some(Method::Bye))
        .map(|(_, m)| m.clone())
        .expect("a BYE once it has played");
    assert_eq!(bye.from().unwrap().tag(), Some(tag.as_str()));
    let (cdr, _) = core.poll_record().expect("a CDR");
    assert_eq!(cdr.outcome, sihai_store::Outcome::Busy);
    assert_eq!(cdr.announcement.as_deref(), Some("busy"));
    assert_eq!(cdr.menu_path.as_deref(), Some("1"));
    assert_all_ports_back(&mut core);
}

#[test]
fn with_few_relay_ports_free_a_refused_caller_gets_the_bare_status() {
    let mut core = announcing_core_with(&announced_config());
    // Two ringing calls hold four of the five port pairs.
    for i in 2..4 {
        let invite = String::from_utf8(offered_call("4001234567", "13800138000").to_vec())
            .unwrap()
            .replace("call-1@carrier", &format!("call-{i}@carrier"))
            .replace("z9hG4bKcall1", &format!("z9hG4bKcall{i}"));
        let (heard, _, _) = place(&mut core, Bytes::from(invite));
        assert_eq!(requests_to_phones(&heard.sent, Method::Invite).len(), 1);
    }
    assert_eq!(core.media_ports_available(), Some(1));
    let (heard, _, opened) = place(&mut core, offered_call("4000000003", "13800138000"));
    assert_eq!(
        statuses_to_caller(&heard.sent),
        [100, 480],
        "calls before messages"
    );
    assert!(opened.is_empty());
    let (cdr, _) = core.poll_record().expect("a CDR");
    assert_eq!(
        (cdr.outcome, cdr.announcement),
        (sihai_store::Outcome::AfterHours, None)
    );
}

#[test]
fn a_shutdown_cuts_an_announcement_short_with_its_status_and_the_outcome_stays() {
    let mut core = announcing_core_with(&announced_config());
    let (mut heard, mut now, _) = place(&mut core, offered_call("4000000003", "13800138000"));
    assert_eq!(statuses_to_caller(&heard.sent), [100, 183]);
    run_for(&mut core, &mut now, 40, &mut heard);
    assert!(heard.count("after-hours") > 0, "it is playing");
    core.shut_down(now, wall(), Duration::ZERO);
    let sent = parsed(&drain(&mut core));
    assert_eq!(
        statuses_to_caller(&sent),
        [480],
        "the status the announcement was explaining, not 503"
    );
    assert_all_ports_back(&mut core);
    let (cdr, _) = core.poll_record().expect("a CDR");
    assert_eq!(cdr.outcome, sihai_store::Outcome::AfterHours);
    assert_eq!(cdr.announcement.as_deref(), Some("after-hours"));
    assert_eq!(cdr.hangup_side, Some(sihai_store::HangupSide::System));
    assert_eq!(cdr.hangup_cause.as_deref(), Some("shutdown"));
}

//! Non-INVITE client transaction (§17.1.2): Figure 6 over UDP and TCP.

mod common;

use common::*;
use sihai_transaction::{Event, TimerConfig};

const BRANCH: &str = "z9hG4bK-bye-1";

fn our(method: &str) -> String {
    req(method, BRANCH).replace("192.0.2.10:5060", "198.51.100.1:5060")
}

fn times(h: &mut Harness) -> Vec<u128> {
    h.take_sent().iter().map(|(at, _)| at.as_millis()).collect()
}

#[test]
fn timer_e_doubles_to_t2_until_timer_f() {
    let mut h = Harness::default();
    let key = h.send(&our("BYE"), uas()).unwrap();
    h.run_until(secs(40));
    // 0, then E = 500 ms, 1 s, 2 s, then T2 = 4 s; F = 32 s.
    assert_eq!(
        times(&mut h),
        [
            0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    let events = h.take_events();
    assert_eq!(
        events.iter().map(|(_, e)| describe(e)).collect::<Vec<_>>(),
        ["Timeout", "Terminated"]
    );
    assert_eq!(events[0].0, secs(32));
    assert!(matches!(&events[0].1, Event::Timeout { key: k } if *k == client(&key)));
    assert_eq!(h.layer.poll_timeout(), None);
}

#[test]
fn in_proceeding_timer_e_fires_every_t2() {
    let mut h = Harness::default();
    let bye = our("BYE");
    h.send(&bye, uas()).unwrap();
    // E fired at 500 ms and was re-armed for 1 s, due at 1.5 s.
    h.run_until(ms(600));
    h.recv(&resp(&bye, 100, None), uas());
    assert_eq!(h.event_names(), ["Response 100"]);
    h.run_until(ms(14_000));
    // Proceeding: 1.5 s (the armed E), then every T2, not 3.5 s as in Trying.
    assert_eq!(times(&mut h), [0, 500, 1500, 5500, 9500, 13500]);
    // F still bounds it in Proceeding.
    h.run_until(secs(32));
    h.take_sent();
    assert_eq!(h.event_names(), ["Timeout", "Terminated"]);
}

#[test]
fn final_response_passes_up_once_and_timer_k_absorbs_retransmissions() {
    let mut h = Harness::default();
    let bye = our("BYE");
    let key = h.send(&bye, uas()).unwrap();
    h.run_until(ms(700));
    h.recv(&resp(&bye, 180, Some("t")), uas());
    h.recv(&resp(&bye, 200, Some("t")), uas());
    let events = h.take_events();
    assert!(
        matches!(&events[1].1, Event::Response { key: k, response } if *k == key && response.status() == Some(200))
    );
    assert_eq!(events.len(), 2);
    h.recv(&resp(&bye, 200, Some("t")), uas());
    h.recv(&resp(&bye, 180, Some("t")), uas());
    assert!(h.event_names().is_empty());

    // No more retransmissions once Completed; K = T4 = 5 s.
    h.run_until(ms(5699));
    assert_eq!(times(&mut h), [0, 500]);
    assert_eq!(h.layer.len(), 1);
    h.run_until(ms(5700));
    assert_eq!(h.event_names(), ["Terminated"]);
    assert_eq!(h.layer.len(), 0);
    h.recv(&resp(&bye, 200, Some("t")), uas());
    assert_eq!(h.event_names(), ["StrayResponse 200"]);
}

#[test]
fn over_tcp_no_timer_e_and_k_is_zero() {
    let mut h = Harness::default();
    let bye = over_tcp(&our("BYE"));
    h.send(&bye, uas_tcp()).unwrap();
    h.run_until(secs(10));
    assert_eq!(times(&mut h), [0]);
    h.recv(&resp(&bye, 404, Some("t")), uas_tcp());
    assert_eq!(h.event_names(), ["Response 404", "Terminated"]);
    assert_eq!(h.layer.poll_timeout(), None);

    // And F over TCP.
    h.send(&bye, uas_tcp()).unwrap();
    h.run_until(secs(10 + 32));
    assert_eq!(h.event_names(), ["Timeout", "Terminated"]);
}

#[test]
fn t2_below_t1_is_raised_and_zero_t1_cannot_spin() {
    let mut h = Harness::new(TimerConfig {
        t1: ms(0),
        t2: ms(0),
        t4: ms(0),
    });
    let bye = our("BYE");
    h.send(&bye, uas()).unwrap();
    // T1 becomes 1 ms: E every 1 ms, F at 64 ms.
    h.run_until(secs(1));
    assert_eq!(times(&mut h).len(), 64);
    assert_eq!(h.event_names(), ["Timeout", "Terminated"]);

    // T4 = 0 makes Timer K immediate, even over UDP.
    h.send(&bye, uas()).unwrap();
    h.recv(&resp(&bye, 200, Some("t")), uas());
    assert_eq!(h.event_names(), ["Response 200", "Terminated"]);
}

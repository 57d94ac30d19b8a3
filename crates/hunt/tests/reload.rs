//! A group's counters across a reload that changes its phone list, on a virtual clock:
//! channels in use and idle times follow each phone by identity, calls started on the
//! old list give their channels back to the right phone of the new one, and capacity
//! is never exceeded by calls still up from before.

use std::time::{Duration, Instant};

use sihai_hunt::*;

const RING: Duration = Duration::from_secs(15);
const OVERALL: Duration = Duration::from_secs(120);

fn phones(n: usize) -> Vec<Phone> {
    vec![
        Phone {
            ring_timeout: RING,
            capacity: 1,
            weight: 1,
            enabled: true,
        };
        n
    ]
}

fn keys(list: &[&'static str]) -> Vec<&'static str> {
    list.to_vec()
}

/// Starts a hunt on the current list and answers the first phone it rings; returns
/// the hunt and that phone (`None`: nothing could ring).
fn answered_call(
    strategy: Strategy,
    n: usize,
    group: &mut KeyedGroupState<&'static str>,
    now: Instant,
) -> (Hunt, Option<PhoneIndex>) {
    let mut hunt = Hunt::new(strategy, phones(n), OVERALL, now, 7);
    hunt.start(group.current(), now);
    let rung = std::iter::from_fn(|| hunt.poll_action()).find_map(|action| match action {
        HuntAction::Ring { phone } => Some(phone),
        HuntAction::Cancel { .. } => None,
    });
    if let Some(phone) = rung {
        hunt.on_outcome(group.current(), phone, PhoneOutcome::Answered, now);
    }
    (hunt, rung)
}

#[test]
fn a_phone_added_in_front_does_not_free_a_busy_phone() {
    let t0 = Instant::now();
    let old = keys(&["alice", "bob"]);
    let mut group = KeyedGroupState::new(old.clone());
    // A call up on alice (index 0 of the old list).
    let (_call, phone) = answered_call(Strategy::Sequential, 2, &mut group, t0);
    assert_eq!(phone, Some(0));

    // The reload puts carol first: alice is now index 1, and still busy.
    let new = keys(&["carol", "alice", "bob"]);
    group.relist(&new);
    assert_eq!(group.active(&"alice"), 1);
    assert_eq!(group.current().active(1), 1);
    assert_eq!(group.current().active(0), 0, "carol starts idle");

    // Two new calls: carol, then bob; alice is skipped at her capacity.
    let (_c1, first) = answered_call(Strategy::Sequential, 3, &mut group, t0);
    let (c2, second) = answered_call(Strategy::Sequential, 3, &mut group, t0);
    assert_eq!(first, Some(0));
    assert_eq!(second, Some(2));
    assert_eq!(c2.skipped(), &[0, 1], "carol and alice were at capacity");
    // A third finds every phone busy.
    let (_c3, third) = answered_call(Strategy::Sequential, 3, &mut group, t0);
    assert_eq!(third, None);

    // The old call ends: it names alice by her old index, 0, which is carol's now.
    let t1 = t0 + Duration::from_secs(60);
    group.with_list(&old, |state| Hunt::release(state, 0, t1));
    assert_eq!(group.active(&"alice"), 0);
    assert_eq!(group.last_ended(&"alice"), Some(t1));
    assert_eq!(group.active(&"carol"), 1, "carol's call is still up");
    let (_c4, fourth) = answered_call(Strategy::Sequential, 3, &mut group, t1);
    assert_eq!(fourth, Some(1), "alice is free again");
}

#[test]
fn a_removed_phone_keeps_its_channel_until_its_call_ends() {
    let t0 = Instant::now();
    let old = keys(&["alice", "bob"]);
    let mut group = KeyedGroupState::new(old.clone());
    let (_a, alice) = answered_call(Strategy::Sequential, 2, &mut group, t0);
    let (_b, bob) = answered_call(Strategy::Sequential, 2, &mut group, t0);
    assert_eq!((alice, bob), (Some(0), Some(1)));
    Hunt::release(group.current(), 0, t0);

    // bob leaves the group, then comes back while his call is still up.
    group.relist(&keys(&["alice"]));
    assert_eq!(group.active(&"bob"), 1);
    assert_eq!(group.current().total_active(), 1);
    group.relist(&keys(&["alice", "bob"]));
    assert_eq!(group.active(&"bob"), 1);
    let (_c, next) = answered_call(Strategy::Sequential, 2, &mut group, t0);
    assert_eq!(next, Some(0));
    let (_c, none) = answered_call(Strategy::Sequential, 2, &mut group, t0);
    assert_eq!(none, None, "bob is still at his capacity");

    // bob's call ends, named by the list it started on.
    group.with_list(&old, |state| Hunt::release(state, 1, t0));
    assert_eq!(group.active(&"bob"), 0);
}

#[test]
fn a_call_ringing_across_the_reload_moves_on_with_the_right_counts() {
    let t0 = Instant::now();
    let old = keys(&["alice", "bob"]);
    let mut group = KeyedGroupState::new(old.clone());
    let mut hunt = Hunt::new(Strategy::Sequential, phones(2), OVERALL, t0, 7);
    hunt.start(group.current(), t0);
    assert_eq!(hunt.poll_action(), Some(HuntAction::Ring { phone: 0 }));
    assert_eq!(group.active(&"alice"), 1);

    // Reload reverses the list while alice rings.
    group.relist(&keys(&["bob", "alice"]));
    // alice does not answer: the old hunt moves on to bob, index 1 of its list.
    let t1 = t0 + RING;
    group.with_list(&old, |state| hunt.handle_timeout(state, t1));
    assert_eq!(hunt.poll_action(), Some(HuntAction::Cancel { phone: 0 }));
    assert_eq!(hunt.poll_action(), Some(HuntAction::Ring { phone: 1 }));
    assert_eq!(group.active(&"alice"), 0);
    assert_eq!(group.active(&"bob"), 1);
    assert_eq!(group.current().active(0), 1, "bob is first in the new list");
}

#[test]
fn idle_times_and_round_robin_follow_the_phones() {
    let t0 = Instant::now();
    let at = |s| t0 + Duration::from_secs(s);
    let mut group = KeyedGroupState::new(keys(&["alice", "bob", "carol"]));
    let (_a, alice) = answered_call(Strategy::Sequential, 3, &mut group, t0);
    let (_b, bob) = answered_call(Strategy::Sequential, 3, &mut group, t0);
    assert_eq!((alice, bob), (Some(0), Some(1)));
    Hunt::release(group.current(), 1, at(50));
    Hunt::release(group.current(), 0, at(60));
    // A round-robin call rings alice and moves the position on to bob.
    let (_c, first) = answered_call(Strategy::RoundRobin, 3, &mut group, at(60));
    assert_eq!(first, Some(0));
    Hunt::release(group.current(), 0, at(70));
    assert_eq!(group.current().round_robin_next(), 1);

    // The reload adds dave after alice and drops carol.
    group.relist(&keys(&["alice", "dave", "bob"]));
    assert_eq!(group.current().round_robin_next(), 2, "bob, wherever he is");
    assert_eq!(group.last_ended(&"bob"), Some(at(50)));
    assert_eq!(group.last_ended(&"alice"), Some(at(70)));
    // Longest idle: dave (never had a call), then bob (50 s), then alice (70 s).
    let mut hunt = Hunt::new(Strategy::LongestIdle, phones(3), OVERALL, at(100), 7);
    hunt.start(group.current(), at(100));
    let mut order = Vec::new();
    while let Some(action) = hunt.poll_action() {
        if let HuntAction::Ring { phone } = action {
            order.push(phone);
            hunt.on_outcome(group.current(), phone, PhoneOutcome::NoAnswer, at(100));
        }
    }
    assert_eq!(order, [1, 2, 0]);
}

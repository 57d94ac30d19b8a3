//! The hunt driven by a virtual clock: every strategy's order, failover, timeouts,
//! capacity, caller cancel and the status a caller hears when nobody answers.

use std::time::{Duration, Instant};

use sihai_hunt::*;

const RING: Duration = Duration::from_secs(15);
const OVERALL: Duration = Duration::from_secs(120);

fn phone() -> Phone {
    Phone {
        ring_timeout: RING,
        capacity: 1,
        weight: 1,
        enabled: true,
    }
}

fn phones(n: usize) -> Vec<Phone> {
    vec![phone(); n]
}

fn disabled() -> Phone {
    Phone {
        enabled: false,
        ..phone()
    }
}

fn secs(t0: Instant, s: u64) -> Instant {
    t0 + Duration::from_secs(s)
}

fn drain(hunt: &mut Hunt) -> Vec<HuntAction> {
    std::iter::from_fn(|| hunt.poll_action()).collect()
}

fn ring(phone: PhoneIndex) -> HuntAction {
    HuntAction::Ring { phone }
}

fn cancel(phone: PhoneIndex) -> HuntAction {
    HuntAction::Cancel { phone }
}

/// Runs a hunt in which every phone it rings reports `NoAnswer` at once, and returns
/// the phones in the order they were rung.
fn ring_order(
    strategy: Strategy,
    phones: Vec<Phone>,
    state: &mut GroupState,
    seed: u64,
) -> Vec<PhoneIndex> {
    let t0 = Instant::now();
    let mut hunt = Hunt::new(strategy, phones, OVERALL, t0, seed);
    hunt.start(state, t0);
    let mut order = Vec::new();
    while let Some(action) = hunt.poll_action() {
        if let HuntAction::Ring { phone } = action {
            order.push(phone);
            hunt.on_outcome(state, phone, PhoneOutcome::NoAnswer, t0);
        }
    }
    assert_eq!(hunt.result(), Some(HuntResult::Failed { status: 480 }));
    assert_eq!(state.total_active(), 0);
    order
}

/// Starts a hunt whose first phone answers at once, then ends the call; returns the
/// phone that answered.
fn answered_call(
    strategy: Strategy,
    phones: Vec<Phone>,
    state: &mut GroupState,
    seed: u64,
    now: Instant,
) -> PhoneIndex {
    let mut hunt = Hunt::new(strategy, phones, OVERALL, now, seed);
    hunt.start(state, now);
    let Some(HuntAction::Ring { phone }) = hunt.poll_action() else {
        panic!("nothing rang")
    };
    hunt.on_outcome(state, phone, PhoneOutcome::Answered, now);
    assert_eq!(hunt.result(), Some(HuntResult::Answered { phone }));
    Hunt::release(state, phone, now + Duration::from_secs(60));
    phone
}

// ---- Orders -------------------------------------------------------------------------

#[test]
fn sequential_rings_in_list_order_skipping_disabled() {
    let mut state = GroupState::new(5);
    let list = vec![phone(), disabled(), phone(), phone(), disabled()];
    assert_eq!(
        ring_order(Strategy::Sequential, list.clone(), &mut state, 1),
        [0, 2, 3]
    );
    // The same again: sequential remembers nothing across calls.
    assert_eq!(
        ring_order(Strategy::Sequential, list, &mut state, 2),
        [0, 2, 3]
    );
}

#[test]
fn round_robin_starts_after_last_calls_first_phone() {
    let mut state = GroupState::new(3);
    assert_eq!(
        ring_order(Strategy::RoundRobin, phones(3), &mut state, 0),
        [0, 1, 2]
    );
    assert_eq!(
        ring_order(Strategy::RoundRobin, phones(3), &mut state, 0),
        [1, 2, 0]
    );
    assert_eq!(
        ring_order(Strategy::RoundRobin, phones(3), &mut state, 0),
        [2, 0, 1]
    );
    assert_eq!(
        ring_order(Strategy::RoundRobin, phones(3), &mut state, 0),
        [0, 1, 2]
    );
}

#[test]
fn round_robin_spreads_calls_evenly() {
    let mut state = GroupState::new(3);
    let t0 = Instant::now();
    let mut count = [0; 3];
    for call in 0..30 {
        count[answered_call(
            Strategy::RoundRobin,
            phones(3),
            &mut state,
            call,
            secs(t0, call * 100),
        )] += 1;
    }
    assert_eq!(count, [10, 10, 10]);
    assert_eq!(state.total_active(), 0);
}

#[test]
fn round_robin_spreads_evenly_over_enabled_phones() {
    let mut state = GroupState::new(4);
    let list = vec![phone(), disabled(), phone(), phone()];
    let t0 = Instant::now();
    let mut count = [0; 4];
    for call in 0..30 {
        count[answered_call(
            Strategy::RoundRobin,
            list.clone(),
            &mut state,
            call,
            secs(t0, call),
        )] += 1;
    }
    assert_eq!(count, [10, 0, 10, 10]);
}

#[test]
fn round_robin_moves_past_a_phone_at_capacity() {
    // Phone 0 is on a call; each new call rings after the phone it actually rang first.
    let mut state = GroupState::new(3);
    let t0 = Instant::now();
    let mut holder = Hunt::new(Strategy::Sequential, phones(3), OVERALL, t0, 0);
    holder.start(&mut state, t0);
    holder.on_outcome(&mut state, 0, PhoneOutcome::Answered, t0);
    let firsts: Vec<_> = (0..4)
        .map(|c| answered_call(Strategy::RoundRobin, phones(3), &mut state, c, t0))
        .collect();
    assert_eq!(firsts, [1, 2, 1, 2]);
}

#[test]
fn random_is_a_seeded_permutation() {
    let mut state = GroupState::new(4);
    let list = vec![phone(), phone(), disabled(), phone()];
    let mut seen = std::collections::HashSet::new();
    for seed in 0..200 {
        let order = ring_order(Strategy::Random, list.clone(), &mut state, seed);
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, [0, 1, 3], "a permutation of the enabled phones");
        assert_eq!(
            order,
            ring_order(Strategy::Random, list.clone(), &mut state, seed),
            "same seed, same order"
        );
        seen.insert(order);
    }
    assert_eq!(seen.len(), 6, "every permutation of three phones shows up");
}

#[test]
fn weighted_first_choice_is_proportional_to_weight() {
    let weights = [1, 2, 3, 0];
    let list: Vec<Phone> = weights
        .iter()
        .map(|&weight| Phone { weight, ..phone() })
        .collect();
    let mut state = GroupState::new(4);
    let calls = 6000;
    let mut first = [0u32; 4];
    for seed in 0..calls {
        let order = ring_order(Strategy::Weighted, list.clone(), &mut state, seed);
        assert_eq!(order.len(), 4, "every enabled phone is tried once");
        assert_eq!(order[3], 3, "weight 0 comes last");
        first[order[0]] += 1;
    }
    // Expected 1000, 2000, 3000; allow 10 %.
    for (i, &w) in weights.iter().enumerate() {
        let expected = f64::from(w) / 6.0 * calls as f64;
        let got = f64::from(first[i]);
        assert!(
            (got - expected).abs() <= 0.1 * calls as f64 / 6.0 * f64::from(w.max(1)),
            "phone {i}: {got} vs {expected}"
        );
    }
    assert_eq!(first[3], 0);
}

#[test]
fn weighted_second_choice_is_drawn_from_the_rest() {
    // Weights 1 and 1 and 8: when phone 2 is not first, it is almost always second.
    let list: Vec<Phone> = [1, 1, 8]
        .iter()
        .map(|&weight| Phone { weight, ..phone() })
        .collect();
    let mut state = GroupState::new(3);
    let (mut not_first, mut second) = (0, 0);
    for seed in 0..4000 {
        let order = ring_order(Strategy::Weighted, list.clone(), &mut state, seed);
        if order[0] != 2 {
            not_first += 1;
            second += usize::from(order[1] == 2);
        }
    }
    // P(second | not first) = 8/9.
    let share = second as f64 / not_first as f64;
    assert!((share - 8.0 / 9.0).abs() < 0.05, "{share}");
}

#[test]
fn longest_idle_rings_never_used_then_longest_idle_first() {
    let mut state = GroupState::new(4);
    let t0 = Instant::now();
    // Phones 2, 0 and 3 took calls, ending in that order; phone 1 never did.
    for (phone, end) in [(2, 10), (0, 20), (3, 30)] {
        let mut hunt = Hunt::new(Strategy::Sequential, phones(4), OVERALL, t0, 0);
        hunt.start(&mut state, t0);
        for p in 0..phone {
            hunt.on_outcome(&mut state, p, PhoneOutcome::Busy, t0);
        }
        hunt.on_outcome(&mut state, phone, PhoneOutcome::Answered, t0);
        assert_eq!(hunt.result(), Some(HuntResult::Answered { phone }));
        Hunt::release(&mut state, phone, secs(t0, end));
    }
    assert_eq!(state.last_ended(1), None);
    assert_eq!(state.last_ended(3), Some(secs(t0, 30)));
    assert_eq!(
        ring_order(Strategy::LongestIdle, phones(4), &mut state, 0),
        [1, 2, 0, 3]
    );
    // Never-used phones keep list order among themselves.
    let mut fresh = GroupState::new(3);
    assert_eq!(
        ring_order(Strategy::LongestIdle, phones(3), &mut fresh, 0),
        [0, 1, 2]
    );
}

#[test]
fn longest_idle_takes_the_longest_idle_each_time() {
    let mut state = GroupState::new(3);
    let t0 = Instant::now();
    let answered: Vec<_> = (0..6)
        .map(|c| {
            answered_call(
                Strategy::LongestIdle,
                phones(3),
                &mut state,
                0,
                secs(t0, c * 100),
            )
        })
        .collect();
    assert_eq!(answered, [0, 1, 2, 0, 1, 2]);
}

// ---- Simultaneous -------------------------------------------------------------------

#[test]
fn simultaneous_first_answer_wins_and_cancels_the_others() {
    let mut state = GroupState::new(4);
    let t0 = Instant::now();
    let list = vec![phone(), phone(), disabled(), phone()];
    let mut hunt = Hunt::new(Strategy::Simultaneous, list, OVERALL, t0, 0);
    hunt.start(&mut state, t0);
    assert_eq!(drain(&mut hunt), [ring(0), ring(1), ring(3)]);
    assert_eq!(state.total_active(), 3);

    hunt.on_outcome(&mut state, 1, PhoneOutcome::Busy, secs(t0, 1));
    assert_eq!(
        drain(&mut hunt),
        [],
        "a busy phone does not end a simultaneous hunt"
    );
    assert_eq!(hunt.result(), None);

    hunt.on_outcome(&mut state, 3, PhoneOutcome::Answered, secs(t0, 4));
    assert_eq!(drain(&mut hunt), [cancel(0)]);
    assert_eq!(hunt.result(), Some(HuntResult::Answered { phone: 3 }));
    assert_eq!(
        hunt.attempts(),
        [
            (1, PhoneOutcome::Busy),
            (3, PhoneOutcome::Answered),
            (0, PhoneOutcome::NoAnswer)
        ]
    );
    assert_eq!(
        (state.active(0), state.active(1), state.active(3)),
        (0, 0, 1)
    );
    assert_eq!(hunt.poll_timeout(), None);

    // A second answer racing the Cancel changes nothing.
    hunt.on_outcome(&mut state, 0, PhoneOutcome::Answered, secs(t0, 4));
    assert_eq!(hunt.result(), Some(HuntResult::Answered { phone: 3 }));
    assert_eq!(state.active(0), 0);
    Hunt::release(&mut state, 3, secs(t0, 100));
    assert_eq!(state.total_active(), 0);
}

#[test]
fn simultaneous_uses_each_phones_ring_timeout() {
    let mut state = GroupState::new(2);
    let t0 = Instant::now();
    let list = vec![
        Phone {
            ring_timeout: Duration::from_secs(10),
            ..phone()
        },
        Phone {
            ring_timeout: Duration::from_secs(20),
            ..phone()
        },
    ];
    let mut hunt = Hunt::new(Strategy::Simultaneous, list, OVERALL, t0, 0);
    hunt.start(&mut state, t0);
    assert_eq!(drain(&mut hunt), [ring(0), ring(1)]);
    assert_eq!(hunt.poll_timeout(), Some(secs(t0, 10)));
    hunt.handle_timeout(&mut state, secs(t0, 10));
    assert_eq!(drain(&mut hunt), [cancel(0)]);
    assert_eq!(hunt.poll_timeout(), Some(secs(t0, 20)));
    hunt.handle_timeout(&mut state, secs(t0, 20));
    assert_eq!(drain(&mut hunt), [cancel(1)]);
    assert_eq!(hunt.result(), Some(HuntResult::Failed { status: 480 }));
    assert_eq!(state.total_active(), 0);
}

#[test]
fn simultaneous_skips_phones_at_capacity() {
    let mut state = GroupState::new(3);
    let t0 = Instant::now();
    let mut other = Hunt::new(Strategy::Sequential, phones(3), OVERALL, t0, 0);
    other.start(&mut state, t0); // phone 0 is ringing for another call
    let mut hunt = Hunt::new(Strategy::Simultaneous, phones(3), OVERALL, t0, 0);
    hunt.start(&mut state, t0);
    assert_eq!(drain(&mut hunt), [ring(1), ring(2)]);
    assert_eq!(hunt.skipped(), [0]);
}

// ---- Timeouts, failover, capacity ---------------------------------------------------

#[test]
fn ring_timeout_cancels_and_rings_the_next_phone() {
    let mut state = GroupState::new(3);
    let t0 = Instant::now();
    let mut hunt = Hunt::new(Strategy::Sequential, phones(3), OVERALL, t0, 0);
    assert_eq!(hunt.poll_timeout(), None, "nothing runs before start");
    hunt.start(&mut state, t0);
    assert_eq!(drain(&mut hunt), [ring(0)]);
    assert_eq!(hunt.poll_timeout(), Some(secs(t0, 15)));

    hunt.handle_timeout(&mut state, secs(t0, 14));
    assert_eq!(drain(&mut hunt), [], "early wake-ups do nothing");

    hunt.handle_timeout(&mut state, secs(t0, 15));
    assert_eq!(drain(&mut hunt), [cancel(0), ring(1)]);
    assert_eq!((state.active(0), state.active(1)), (0, 1));
    assert_eq!(
        hunt.poll_timeout(),
        Some(secs(t0, 30)),
        "the next phone gets its own full ring timeout"
    );

    hunt.on_outcome(&mut state, 1, PhoneOutcome::Answered, secs(t0, 20));
    assert_eq!(drain(&mut hunt), []);
    assert_eq!(hunt.result(), Some(HuntResult::Answered { phone: 1 }));
    assert_eq!(
        hunt.attempts(),
        [(0, PhoneOutcome::NoAnswer), (1, PhoneOutcome::Answered)]
    );
}

#[test]
fn phone_at_capacity_is_skipped() {
    // Phone 0 (capacity 1) is busy with another call, so phone 1 rings first.
    let mut state = GroupState::new(3);
    let t0 = Instant::now();
    let mut first = Hunt::new(Strategy::Sequential, phones(3), OVERALL, t0, 0);
    first.start(&mut state, t0);
    first.on_outcome(&mut state, 0, PhoneOutcome::Answered, secs(t0, 2));
    assert_eq!(state.active(0), 1);

    let mut second = Hunt::new(Strategy::Sequential, phones(3), OVERALL, secs(t0, 5), 0);
    second.start(&mut state, secs(t0, 5));
    assert_eq!(drain(&mut second), [ring(1)]);
    assert_eq!(second.skipped(), [0]);

    // Capacity is checked when a phone's turn comes: once the first call ends, phone 0
    // is free, but the second call has already passed it.
    Hunt::release(&mut state, 0, secs(t0, 6));
    second.on_outcome(&mut state, 1, PhoneOutcome::Busy, secs(t0, 7));
    assert_eq!(drain(&mut second), [ring(2)]);
}

#[test]
fn capacity_counts_concurrent_calls_on_a_trunk() {
    let trunk = Phone {
        capacity: 2,
        ..phone()
    };
    let mut state = GroupState::new(2);
    let t0 = Instant::now();
    let mut hunts: Vec<Hunt> = (0..3)
        .map(|_| Hunt::new(Strategy::Sequential, vec![trunk, phone()], OVERALL, t0, 0))
        .collect();
    let rung: Vec<_> = hunts
        .iter_mut()
        .map(|h| {
            h.start(&mut state, t0);
            drain(h)
        })
        .collect();
    assert_eq!(rung, [vec![ring(0)], vec![ring(0)], vec![ring(1)]]);
    assert_eq!((state.active(0), state.active(1)), (2, 1));
}

#[test]
fn failover_on_busy() {
    let mut state = GroupState::new(2);
    let t0 = Instant::now();
    let mut hunt = Hunt::new(Strategy::Sequential, phones(2), OVERALL, t0, 0);
    hunt.start(&mut state, t0);
    assert_eq!(drain(&mut hunt), [ring(0)]);
    hunt.on_outcome(
        &mut state,
        0,
        PhoneOutcome::from_final_status(486).unwrap(),
        secs(t0, 1),
    );
    assert_eq!(
        drain(&mut hunt),
        [ring(1)],
        "no Cancel for a leg that already ended"
    );
    assert_eq!(state.active(0), 0);
    hunt.on_outcome(
        &mut state,
        1,
        PhoneOutcome::from_final_status(600).unwrap(),
        secs(t0, 2),
    );
    assert_eq!(hunt.result(), Some(HuntResult::Failed { status: 486 }));
    assert_eq!(
        hunt.attempts(),
        [(0, PhoneOutcome::Busy), (1, PhoneOutcome::Busy)]
    );
}

#[test]
fn decline_ends_the_hunt_for_that_phone_only() {
    let mut state = GroupState::new(3);
    let t0 = Instant::now();
    let mut hunt = Hunt::new(Strategy::Sequential, phones(3), OVERALL, t0, 0);
    hunt.start(&mut state, t0);
    hunt.on_outcome(
        &mut state,
        0,
        PhoneOutcome::from_final_status(603).unwrap(),
        secs(t0, 1),
    );
    assert_eq!(drain(&mut hunt), [ring(0), ring(1)]);
    hunt.on_outcome(&mut state, 1, PhoneOutcome::Failed(503), secs(t0, 2));
    assert_eq!(drain(&mut hunt), [ring(2)]);
    hunt.on_outcome(&mut state, 2, PhoneOutcome::Answered, secs(t0, 3));
    assert_eq!(hunt.result(), Some(HuntResult::Answered { phone: 2 }));
    assert_eq!(
        hunt.attempts(),
        [
            (0, PhoneOutcome::Declined),
            (1, PhoneOutcome::Failed(503)),
            (2, PhoneOutcome::Answered)
        ]
    );
}

#[test]
fn overall_timeout_cancels_and_finishes() {
    let mut state = GroupState::new(3);
    let t0 = Instant::now();
    let mut hunt = Hunt::new(
        Strategy::Sequential,
        phones(3),
        Duration::from_secs(20),
        t0,
        0,
    );
    hunt.start(&mut state, t0);
    hunt.handle_timeout(&mut state, secs(t0, 15));
    assert_eq!(drain(&mut hunt), [ring(0), cancel(0), ring(1)]);
    assert_eq!(
        hunt.poll_timeout(),
        Some(secs(t0, 20)),
        "the overall deadline comes before phone 1's"
    );
    hunt.handle_timeout(&mut state, secs(t0, 20));
    assert_eq!(drain(&mut hunt), [cancel(1)]);
    assert_eq!(hunt.result(), Some(HuntResult::Failed { status: 480 }));
    assert_eq!(
        hunt.attempts(),
        [(0, PhoneOutcome::NoAnswer), (1, PhoneOutcome::NoAnswer)]
    );
    assert_eq!(hunt.poll_timeout(), None);
    assert_eq!(state.total_active(), 0);
}

#[test]
fn overall_timeout_keeps_a_better_failure() {
    let mut state = GroupState::new(2);
    let t0 = Instant::now();
    let mut hunt = Hunt::new(
        Strategy::Sequential,
        phones(2),
        Duration::from_secs(20),
        t0,
        0,
    );
    hunt.start(&mut state, t0);
    hunt.on_outcome(&mut state, 0, PhoneOutcome::Busy, secs(t0, 1));
    hunt.handle_timeout(&mut state, secs(t0, 20));
    assert_eq!(hunt.result(), Some(HuntResult::Failed { status: 486 }));
}

#[test]
fn overall_timeout_simultaneous_cancels_all() {
    let mut state = GroupState::new(3);
    let t0 = Instant::now();
    let mut hunt = Hunt::new(
        Strategy::Simultaneous,
        phones(3),
        Duration::from_secs(10),
        t0,
        0,
    );
    hunt.start(&mut state, t0);
    assert_eq!(hunt.poll_timeout(), Some(secs(t0, 10)));
    hunt.handle_timeout(&mut state, secs(t0, 10));
    assert_eq!(
        drain(&mut hunt),
        [ring(0), ring(1), ring(2), cancel(0), cancel(1), cancel(2)]
    );
    assert_eq!(hunt.result(), Some(HuntResult::Failed { status: 480 }));
    assert_eq!(state.total_active(), 0);
}

#[test]
fn started_after_its_deadline_rings_nothing() {
    let mut state = GroupState::new(2);
    let t0 = Instant::now();
    let mut hunt = Hunt::new(
        Strategy::Sequential,
        phones(2),
        Duration::from_secs(5),
        t0,
        0,
    );
    hunt.start(&mut state, secs(t0, 5));
    assert_eq!(drain(&mut hunt), []);
    assert_eq!(hunt.result(), Some(HuntResult::Failed { status: 480 }));
}

#[test]
fn huge_timeouts_do_not_overflow() {
    let mut state = GroupState::new(1);
    let t0 = Instant::now();
    let forever = Phone {
        ring_timeout: Duration::MAX,
        ..phone()
    };
    let mut hunt = Hunt::new(Strategy::Sequential, vec![forever], Duration::MAX, t0, 0);
    hunt.start(&mut state, t0);
    assert_eq!(drain(&mut hunt), [ring(0)]);
    assert_eq!(hunt.poll_timeout(), None, "nothing to wake up for");
    hunt.on_outcome(&mut state, 0, PhoneOutcome::NoAnswer, secs(t0, 1));
    assert_eq!(hunt.result(), Some(HuntResult::Failed { status: 480 }));
}

// ---- Caller cancel ------------------------------------------------------------------

#[test]
fn caller_cancel_cancels_everything_ringing() {
    let mut state = GroupState::new(3);
    let t0 = Instant::now();
    let mut hunt = Hunt::new(Strategy::Simultaneous, phones(3), OVERALL, t0, 0);
    hunt.start(&mut state, t0);
    hunt.on_outcome(&mut state, 1, PhoneOutcome::Busy, secs(t0, 1));
    hunt.on_cancelled_by_caller(&mut state, secs(t0, 3));
    assert_eq!(
        drain(&mut hunt),
        [ring(0), ring(1), ring(2), cancel(0), cancel(2)]
    );
    assert_eq!(hunt.result(), Some(HuntResult::Failed { status: 487 }));
    assert_eq!(state.total_active(), 0);

    // The 487s the cancelled legs then get are ignored.
    hunt.on_outcome(&mut state, 0, PhoneOutcome::Failed(487), secs(t0, 3));
    assert_eq!(state.total_active(), 0);
    assert_eq!(hunt.attempts().len(), 3);
}

#[test]
fn caller_cancel_sequential_and_before_start() {
    let mut state = GroupState::new(2);
    let t0 = Instant::now();
    let mut hunt = Hunt::new(Strategy::Sequential, phones(2), OVERALL, t0, 0);
    hunt.start(&mut state, t0);
    hunt.on_cancelled_by_caller(&mut state, secs(t0, 3));
    assert_eq!(drain(&mut hunt), [ring(0), cancel(0)]);
    assert_eq!(hunt.result(), Some(HuntResult::Failed { status: 487 }));

    let mut early = Hunt::new(Strategy::Sequential, phones(2), OVERALL, t0, 0);
    early.on_cancelled_by_caller(&mut state, t0);
    early.start(&mut state, t0);
    assert_eq!(drain(&mut early), []);
    assert_eq!(early.result(), Some(HuntResult::Failed { status: 487 }));
    assert_eq!(state.total_active(), 0);
}

#[test]
fn caller_cancel_after_answer_is_ignored() {
    let mut state = GroupState::new(1);
    let t0 = Instant::now();
    let mut hunt = Hunt::new(Strategy::Sequential, phones(1), OVERALL, t0, 0);
    hunt.start(&mut state, t0);
    hunt.on_outcome(&mut state, 0, PhoneOutcome::Answered, t0);
    hunt.on_cancelled_by_caller(&mut state, t0);
    assert_eq!(hunt.result(), Some(HuntResult::Answered { phone: 0 }));
    assert_eq!(state.active(0), 1);
}

// ---- Stray inputs -------------------------------------------------------------------

#[test]
fn outcomes_for_phones_not_ringing_are_ignored() {
    let mut state = GroupState::new(3);
    let t0 = Instant::now();
    let mut hunt = Hunt::new(Strategy::Sequential, phones(3), OVERALL, t0, 0);
    hunt.on_outcome(&mut state, 0, PhoneOutcome::Answered, t0); // before start
    hunt.start(&mut state, t0);
    hunt.on_outcome(&mut state, 1, PhoneOutcome::Answered, t0); // not rung yet
    hunt.on_outcome(&mut state, 99, PhoneOutcome::Busy, t0); // no such phone
    assert_eq!(drain(&mut hunt), [ring(0)]);
    assert_eq!(hunt.result(), None);
    assert_eq!(hunt.attempts(), []);

    hunt.handle_timeout(&mut state, secs(t0, 15));
    hunt.on_outcome(&mut state, 0, PhoneOutcome::Answered, secs(t0, 15)); // raced the Cancel
    assert_eq!(drain(&mut hunt), [cancel(0), ring(1)]);
    assert_eq!(hunt.result(), None);
    assert_eq!((state.active(0), state.active(1)), (0, 1));
    hunt.start(&mut state, secs(t0, 16)); // a second start does nothing
    assert_eq!(drain(&mut hunt), []);
}

#[test]
fn release_of_an_unknown_phone_is_harmless() {
    let mut state = GroupState::new(1);
    Hunt::release(&mut state, 5, Instant::now());
    Hunt::release(&mut state, 0, Instant::now());
    assert_eq!(state.total_active(), 0);
}

#[test]
fn state_grows_to_fit_a_longer_list() {
    let mut state = GroupState::new(1);
    let t0 = Instant::now();
    let mut hunt = Hunt::new(Strategy::RoundRobin, phones(3), OVERALL, t0, 0);
    hunt.start(&mut state, t0);
    assert_eq!(state.len(), 3);
    assert_eq!(state.round_robin_next(), 1);
}

// ---- The status a caller hears ------------------------------------------------------

/// Sequential hunt over `outcomes.len()` phones, each ending with its outcome in turn
/// (`None`: its ring timeout).
fn failed_status(outcomes: &[Option<PhoneOutcome>]) -> u16 {
    let mut state = GroupState::new(outcomes.len());
    let t0 = Instant::now();
    let mut hunt = Hunt::new(Strategy::Sequential, phones(outcomes.len()), OVERALL, t0, 0);
    hunt.start(&mut state, t0);
    let mut now = t0;
    for (phone, outcome) in outcomes.iter().enumerate() {
        match outcome {
            Some(outcome) => hunt.on_outcome(&mut state, phone, *outcome, now),
            None => {
                now = hunt.poll_timeout().unwrap();
                hunt.handle_timeout(&mut state, now);
            }
        }
    }
    assert_eq!(state.total_active(), 0);
    match hunt.result() {
        Some(HuntResult::Failed { status }) => status,
        other => panic!("{other:?}"),
    }
}

#[test]
fn best_failure_precedence() {
    use PhoneOutcome::*;
    let table: &[(&[Option<PhoneOutcome>], u16)] = &[
        (&[Some(Busy)], 486),
        (&[Some(NoAnswer)], 480),
        (&[None], 480),
        (&[Some(Declined)], 603),
        (&[Some(Declined), Some(Declined)], 603),
        (&[Some(Failed(503))], 503),
        // Busy beats no answer, whichever came first.
        (&[Some(NoAnswer), Some(Busy)], 486),
        (&[Some(Busy), None], 486),
        // No answer beats a decline and a failure.
        (&[Some(Failed(503)), None], 480),
        (&[Some(Declined), Some(NoAnswer)], 480),
        // A decline beats a failure.
        (&[Some(Failed(503)), Some(Declined)], 603),
        (&[Some(Declined), Some(Failed(500))], 603),
        // Among failures: 4xx over 5xx, then the first seen.
        (&[Some(Failed(503)), Some(Failed(404))], 404),
        (&[Some(Failed(503)), Some(Failed(502))], 503),
        (&[Some(Failed(403)), Some(Failed(404))], 403),
        // Statuses that cannot go to the caller as they are.
        (&[Some(Failed(0))], 502),
        (&[Some(Failed(302))], 502),
        (&[Some(Failed(1000))], 502),
    ];
    for (outcomes, status) in table {
        assert_eq!(failed_status(outcomes), *status, "{outcomes:?}");
    }
}

#[test]
fn busy_everywhere_when_all_phones_are_at_capacity() {
    let mut state = GroupState::new(2);
    let t0 = Instant::now();
    let full = Phone {
        capacity: 0,
        ..phone()
    };
    for strategy in [
        Strategy::Sequential,
        Strategy::Simultaneous,
        Strategy::RoundRobin,
    ] {
        let mut hunt = Hunt::new(strategy, vec![full, full], OVERALL, t0, 0);
        hunt.start(&mut state, t0);
        assert_eq!(drain(&mut hunt), []);
        assert_eq!(
            hunt.result(),
            Some(HuntResult::Failed { status: 486 }),
            "{strategy:?}"
        );
        assert_eq!(hunt.skipped(), [0, 1]);
        assert_eq!(hunt.attempts(), []);
    }
    assert_eq!(
        state.round_robin_next(),
        0,
        "a call that rang nobody leaves the position"
    );
}

#[test]
fn capacity_skip_counts_as_busy() {
    let mut state = GroupState::new(2);
    let t0 = Instant::now();
    let list = vec![
        Phone {
            capacity: 0,
            ..phone()
        },
        phone(),
    ];
    let mut hunt = Hunt::new(Strategy::Sequential, list, OVERALL, t0, 0);
    hunt.start(&mut state, t0);
    hunt.on_outcome(&mut state, 1, PhoneOutcome::NoAnswer, t0);
    assert_eq!(hunt.result(), Some(HuntResult::Failed { status: 486 }));
}

#[test]
fn no_phone_enabled_is_480() {
    let t0 = Instant::now();
    for list in [vec![disabled(), disabled()], vec![]] {
        for strategy in [
            Strategy::Sequential,
            Strategy::RoundRobin,
            Strategy::Random,
            Strategy::Simultaneous,
            Strategy::Weighted,
            Strategy::LongestIdle,
        ] {
            let mut state = GroupState::new(list.len());
            let mut hunt = Hunt::new(strategy, list.clone(), OVERALL, t0, 0);
            hunt.start(&mut state, t0);
            assert_eq!(drain(&mut hunt), []);
            assert_eq!(
                hunt.result(),
                Some(HuntResult::Failed { status: 480 }),
                "{strategy:?}"
            );
            assert_eq!(hunt.poll_timeout(), None);
        }
    }
}

#[test]
fn final_status_mapping() {
    use PhoneOutcome::*;
    let table = [
        (100, None),
        (183, None),
        (200, Some(Answered)),
        (202, Some(Answered)),
        (486, Some(Busy)),
        (600, Some(Busy)),
        (408, Some(NoAnswer)),
        (480, Some(NoAnswer)),
        (603, Some(Declined)),
        (604, Some(Declined)),
        (606, Some(Declined)),
        (404, Some(Failed(404))),
        (487, Some(Failed(487))),
        (500, Some(Failed(500))),
        (503, Some(Failed(503))),
        (302, Some(Failed(302))),
    ];
    for (status, outcome) in table {
        assert_eq!(PhoneOutcome::from_final_status(status), outcome, "{status}");
    }
}

#[test]
fn compact_keeps_the_result_and_what_the_record_needs() {
    let t0 = Instant::now();
    let mut state = GroupState::new(4);
    let mut hunt = Hunt::new(Strategy::Sequential, phones(4), OVERALL, t0, 0);
    hunt.compact(); // not started: nothing to release, nothing breaks
    hunt.start(&mut state, t0);
    assert_eq!(drain(&mut hunt), vec![ring(0)]);
    hunt.compact(); // still hunting: a no-op
    hunt.on_outcome(&mut state, 0, PhoneOutcome::Busy, t0);
    assert_eq!(drain(&mut hunt), vec![ring(1)]);
    hunt.on_outcome(&mut state, 1, PhoneOutcome::Answered, t0);
    assert!(drain(&mut hunt).is_empty());
    hunt.compact();
    assert_eq!(hunt.result(), Some(HuntResult::Answered { phone: 1 }));
    assert_eq!(
        hunt.attempts(),
        &[(0, PhoneOutcome::Busy), (1, PhoneOutcome::Answered)]
    );
    assert_eq!(hunt.poll_action(), None);
    Hunt::release(&mut state, 1, secs(t0, 5));
    assert_eq!(state.total_active(), 0);
}

//! Random groups, several concurrent calls hunting them through one shared
//! [`GroupState`], and random event sequences: outcomes (for ringing phones and stray
//! ones), caller cancels, clocks jumping, releases. Whatever the order, nothing panics,
//! the actions are consistent with what is ringing, no phone ever exceeds its capacity,
//! the channel counts always equal the legs ringing plus the answered calls not yet
//! released, and once every call has finished and been released they are all zero.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use sihai_hunt::{
    GroupState, Hunt, HuntAction, HuntResult, Phone, PhoneIndex, PhoneOutcome, Strategy as Hunting,
};

const STRATEGIES: [Hunting; 6] = [
    Hunting::Sequential,
    Hunting::RoundRobin,
    Hunting::Random,
    Hunting::Simultaneous,
    Hunting::Weighted,
    Hunting::LongestIdle,
];

fn phone_strategy() -> impl Strategy<Value = Phone> {
    (
        1u64..40_000_000,
        0u32..4,
        0u32..5,
        prop::bool::weighted(0.85),
    )
        .prop_map(|(ring_us, capacity, weight, enabled)| Phone {
            ring_timeout: Duration::from_micros(ring_us),
            capacity,
            weight,
            enabled,
        })
}

fn outcome_strategy() -> impl Strategy<Value = PhoneOutcome> {
    prop_oneof![
        2 => Just(PhoneOutcome::Answered),
        2 => Just(PhoneOutcome::Busy),
        2 => Just(PhoneOutcome::NoAnswer),
        1 => Just(PhoneOutcome::Declined),
        1 => prop::sample::select(vec![0u16, 302, 404, 487, 500, 502, 503, 603]).prop_map(PhoneOutcome::Failed),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    /// Call `n` (a new one if there are fewer) starts hunting.
    Start(usize, usize, u64),
    /// A leg of call `n` ends: a ringing one picked by `k`, or (if `stray`) any phone.
    Outcome {
        call: usize,
        k: usize,
        stray: bool,
        outcome: PhoneOutcome,
    },
    CallerCancel(usize),
    /// The clock moves on by this many microseconds and every due timer runs.
    Advance(u64),
    /// The answered call `n` hangs up.
    Release(usize),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0usize..6, 0usize..6, any::<u64>()).prop_map(|(c, s, seed)| Op::Start(c, s, seed)),
        5 => (0usize..6, 0usize..8, prop::bool::weighted(0.1), outcome_strategy())
            .prop_map(|(call, k, stray, outcome)| Op::Outcome { call, k, stray, outcome }),
        1 => (0usize..6).prop_map(Op::CallerCancel),
        3 => (0u64..30_000_000).prop_map(Op::Advance),
        1 => (0usize..6).prop_map(Op::Release),
    ]
}

/// One call as the B2BUA would see it: the hunt plus the legs it believes ring.
struct Call {
    hunt: Hunt,
    ringing: BTreeSet<PhoneIndex>,
    rung: BTreeSet<PhoneIndex>,
    /// The answered phone, until released.
    holding: Option<PhoneIndex>,
    released: bool,
}

struct World {
    phones: Vec<Phone>,
    state: GroupState,
    calls: Vec<Call>,
    now: Instant,
}

impl World {
    /// Applies the hunt's actions to the model, checking each makes sense.
    fn drain(&mut self, i: usize) -> Result<(), TestCaseError> {
        let call = &mut self.calls[i];
        while let Some(action) = call.hunt.poll_action() {
            match action {
                HuntAction::Ring { phone } => {
                    prop_assert!(self.phones[phone].enabled, "rang disabled phone {}", phone);
                    prop_assert!(call.rung.insert(phone), "rang phone {} twice", phone);
                    call.ringing.insert(phone);
                }
                HuntAction::Cancel { phone } => {
                    prop_assert!(
                        call.ringing.remove(&phone),
                        "cancelled phone {} not ringing",
                        phone
                    );
                }
            }
        }
        if call.hunt.result().is_some() {
            prop_assert!(
                call.ringing.is_empty(),
                "finished with legs ringing: {:?}",
                call.ringing
            );
            prop_assert_eq!(call.hunt.poll_timeout(), None);
        }
        if let Some(HuntResult::Answered { phone }) = call.hunt.result()
            && call.holding.is_none()
            && !call.released
        {
            prop_assert!(call.rung.contains(&phone));
            call.holding = Some(phone);
        }
        if let Some(HuntResult::Failed { status }) = call.hunt.result() {
            prop_assert!((400..=699).contains(&status), "status {}", status);
        }
        if call.hunt.strategy() != Hunting::Simultaneous {
            prop_assert!(call.ringing.len() <= 1, "one at a time: {:?}", call.ringing);
        }
        Ok(())
    }

    fn check(&self) -> Result<(), TestCaseError> {
        for (phone, spec) in self.phones.iter().enumerate() {
            let expected = self
                .calls
                .iter()
                .map(|c| {
                    u32::from(c.ringing.contains(&phone)) + u32::from(c.holding == Some(phone))
                })
                .sum::<u32>();
            prop_assert_eq!(
                self.state.active(phone),
                expected,
                "phone {} channel count",
                phone
            );
            prop_assert!(
                self.state.active(phone) <= spec.capacity,
                "phone {} over capacity",
                phone
            );
        }
        for call in &self.calls {
            // A hunt with legs ringing always has a timer (these timeouts are finite);
            // a finished one never has.
            prop_assert_eq!(call.hunt.poll_timeout().is_some(), !call.ringing.is_empty());
        }
        Ok(())
    }

    fn run_timers(&mut self) -> Result<(), TestCaseError> {
        for i in 0..self.calls.len() {
            if self.calls[i]
                .hunt
                .poll_timeout()
                .is_some_and(|t| t <= self.now)
            {
                self.calls[i].hunt.handle_timeout(&mut self.state, self.now);
                self.drain(i)?;
            }
            prop_assert!(
                self.calls[i]
                    .hunt
                    .poll_timeout()
                    .is_none_or(|t| t > self.now),
                "timer not consumed"
            );
        }
        Ok(())
    }

    fn release(&mut self, i: usize) {
        let call = &mut self.calls[i];
        if let Some(phone) = call.holding.take() {
            Hunt::release(&mut self.state, phone, self.now);
            call.released = true;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_event_sequences(
        phones in prop::collection::vec(phone_strategy(), 0..7),
        overall_us in 1u64..120_000_000,
        ops in prop::collection::vec(op_strategy(), 0..80),
    ) {
        let t0 = Instant::now();
        let mut world = World { state: GroupState::new(phones.len()), phones, calls: Vec::new(), now: t0 };
        let overall = Duration::from_micros(overall_us);

        for op in ops {
            match op {
                Op::Start(c, s, seed) => {
                    if c >= world.calls.len() {
                        let hunt = Hunt::new(STRATEGIES[s], world.phones.clone(), overall, world.now, seed);
                        world.calls.push(Call { hunt, ringing: BTreeSet::new(), rung: BTreeSet::new(), holding: None, released: false });
                    }
                    let i = c.min(world.calls.len() - 1);
                    world.calls[i].hunt.start(&mut world.state, world.now);
                    world.drain(i)?;
                }
                Op::Outcome { call, k, stray, outcome } => {
                    if world.calls.is_empty() { continue; }
                    let i = call % world.calls.len();
                    let c = &world.calls[i];
                    let phone = if stray || c.ringing.is_empty() {
                        k
                    } else {
                        *c.ringing.iter().nth(k % c.ringing.len()).unwrap()
                    };
                    // A leg that ends is no longer ringing, whatever the hunt makes of it; a
                    // stray outcome (phone not ringing) must change nothing.
                    world.calls[i].ringing.remove(&phone);
                    world.calls[i].hunt.on_outcome(&mut world.state, phone, outcome, world.now);
                    world.drain(i)?;
                }
                Op::CallerCancel(c) => {
                    if world.calls.is_empty() { continue; }
                    let i = c % world.calls.len();
                    let before = world.calls[i].hunt.result();
                    world.calls[i].hunt.on_cancelled_by_caller(&mut world.state, world.now);
                    world.drain(i)?;
                    if before.is_none() {
                        prop_assert_eq!(world.calls[i].hunt.result(), Some(HuntResult::Failed { status: 487 }));
                    }
                }
                Op::Advance(us) => {
                    world.now += Duration::from_micros(us);
                    world.run_timers()?;
                }
                Op::Release(c) => {
                    if world.calls.is_empty() { continue; }
                    let i = c % world.calls.len();
                    world.release(i);
                }
            }
            world.check()?;
        }

        // Let every call finish: start those not started, run the clock, and hang up.
        for i in 0..world.calls.len() {
            world.calls[i].hunt.start(&mut world.state, world.now);
            world.drain(i)?;
        }
        for _ in 0..1000 {
            let Some(next) = world.calls.iter().filter_map(|c| c.hunt.poll_timeout()).min() else { break };
            world.now = world.now.max(next);
            world.run_timers()?;
            world.check()?;
        }
        for i in 0..world.calls.len() {
            prop_assert!(world.calls[i].hunt.result().is_some(), "call {} never finished", i);
            world.release(i);
        }
        world.check()?;
        prop_assert_eq!(world.state.total_active(), 0);
    }
}

//! The order in which a strategy tries the enabled phones, fixed when a hunt starts.
//!
//! Randomness comes from a seeded SplitMix64 generator of our own rather than `rand`:
//! a seed must give the same order on every build (tests and a replayed call depend on
//! it), which `rand`'s `StdRng` does not promise across versions, and a hunt needs a
//! handful of draws, not a cryptographic generator.

use crate::{GroupState, Phone, PhoneIndex, Strategy};

/// SplitMix64 (Steele, Lea and Flood, 2014): tiny, fast, and every seed, 0 included,
/// gives a good stream.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`), by multiply-and-shift; the bias, below `n / 2^64`,
    /// is far under anything a phone list could show.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// The enabled phones in the order `strategy` tries them. For
/// [`Strategy::Simultaneous`] the order is only the order of the Ring actions.
pub(crate) fn order(
    strategy: Strategy,
    phones: &[Phone],
    state: &GroupState,
    rng: &mut Rng,
) -> Vec<PhoneIndex> {
    let enabled = |i: &PhoneIndex| phones[*i].enabled;
    let mut order: Vec<PhoneIndex> = match strategy {
        Strategy::RoundRobin => {
            let start = if phones.is_empty() {
                0
            } else {
                state.round_robin_next() % phones.len()
            };
            (start..phones.len())
                .chain(0..start)
                .filter(enabled)
                .collect()
        }
        _ => (0..phones.len()).filter(enabled).collect(),
    };
    match strategy {
        Strategy::Sequential | Strategy::RoundRobin | Strategy::Simultaneous => {}
        Strategy::Random => {
            // Fisher–Yates.
            for i in (1..order.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                order.swap(i, j);
            }
        }
        Strategy::Weighted => order = weighted(order, phones, rng),
        Strategy::LongestIdle => {
            // `None` (never used) sorts first; the sort is stable, so ties keep list order.
            order.sort_by_key(|&i| state.last_ended(i));
        }
    }
    order
}

/// Weighted draws without replacement: each draw picks among the phones left with
/// probability proportional to weight. Weight-0 phones follow in list order.
fn weighted(candidates: Vec<PhoneIndex>, phones: &[Phone], rng: &mut Rng) -> Vec<PhoneIndex> {
    let (mut left, zero): (Vec<PhoneIndex>, Vec<PhoneIndex>) =
        candidates.into_iter().partition(|&i| phones[i].weight > 0);
    let mut total: u64 = left.iter().map(|&i| u64::from(phones[i].weight)).sum();
    let mut order = Vec::with_capacity(left.len() + zero.len());
    while !left.is_empty() {
        let mut ticket = rng.below(total);
        let pos = left
            .iter()
            .position(|&i| {
                let w = u64::from(phones[i].weight);
                if ticket < w {
                    true
                } else {
                    ticket -= w;
                    false
                }
            })
            .unwrap_or(left.len() - 1);
        let phone = left.remove(pos);
        total -= u64::from(phones[phone].weight);
        order.push(phone);
    }
    order.extend(zero);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = Rng::new(0);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            let n = rng.below(7) as usize;
            seen[n] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn same_seed_same_stream() {
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        // The SplitMix64 reference stream for seed 0 (as in Vigna's splitmix64.c).
        assert_eq!(Rng::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
    }
}

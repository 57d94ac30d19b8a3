//! Acceptance bounds for counts that a correct implementation draws at random, so that
//! a distribution test fails for a correct daemon with a stated, tiny probability
//! and for a wrong one (a strategy that ignores weights, or always picks the first
//! phone) almost surely.

use std::ops::RangeInclusive;

/// The counts of a Binomial(`n`, `p`) variable accepted at false-failure probability
/// at most `alpha`: the widest tails cut off hold at most `alpha / 2` each, computed
/// exactly from the probability mass function (no normal approximation, which is poor
/// this far out in the tails).
pub fn binomial_acceptance(n: u64, p: f64, alpha: f64) -> RangeInclusive<u64> {
    assert!(0.0 < p && p < 1.0 && n > 0, "Binomial({n}, {p})");
    let pmf = binomial_pmf(n, p);
    let mut lo = 0;
    let mut below = 0.0;
    while lo < n && below + pmf[lo as usize] <= alpha / 2.0 {
        below += pmf[lo as usize];
        lo += 1;
    }
    let mut hi = n;
    let mut above = 0.0;
    while hi > lo && above + pmf[hi as usize] <= alpha / 2.0 {
        above += pmf[hi as usize];
        hi -= 1;
    }
    lo..=hi
}

/// P(X = k) for k in 0..=n, by the ratio of successive terms in log space (so that
/// (1 - p)^n underflowing for large n does not zero the whole table).
fn binomial_pmf(n: u64, p: f64) -> Vec<f64> {
    let mut log = Vec::with_capacity(n as usize + 1);
    let mut term = n as f64 * (1.0 - p).ln();
    log.push(term);
    for k in 0..n {
        term += ((n - k) as f64).ln() - ((k + 1) as f64).ln() + p.ln() - (1.0 - p).ln();
        log.push(term);
    }
    log.into_iter().map(f64::exp).collect()
}

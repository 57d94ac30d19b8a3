//! A token bucket on the caller's clock: the SMSC contract's messages per second, with a
//! burst of one second's worth. Kept in integer nanosecond-tokens so that no rounding
//! drifts the rate over a long run.

use std::time::{Duration, Instant};

const NANOS_PER_SECOND: u128 = 1_000_000_000;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    per_second: u32,
    capacity: u32,
    tokens: u32,
    /// Fractions of a token, in units of 1/1e9 token, not yet a whole one.
    partial: u128,
    last_refill: Instant,
}

impl TokenBucket {
    /// `per_second` of 0 means unlimited. Starts full.
    pub fn new(per_second: u32, now: Instant) -> TokenBucket {
        let capacity = per_second.max(1);
        TokenBucket {
            per_second,
            capacity,
            tokens: capacity,
            partial: 0,
            last_refill: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last_refill);
        self.last_refill = self.last_refill.max(now);
        if self.tokens >= self.capacity {
            self.partial = 0;
            return;
        }
        self.partial += elapsed.as_nanos() * u128::from(self.per_second);
        let whole = self.partial / NANOS_PER_SECOND;
        self.partial %= NANOS_PER_SECOND;
        let room = u128::from(self.capacity - self.tokens);
        if whole >= room {
            self.tokens = self.capacity;
            self.partial = 0;
        } else {
            self.tokens += whole as u32;
        }
    }

    /// Takes a token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        if self.per_second == 0 {
            return true;
        }
        self.refill(now);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    /// When the next token will be there (`now` if one is).
    pub fn next_token_at(&mut self, now: Instant) -> Instant {
        if self.per_second == 0 {
            return now;
        }
        self.refill(now);
        if self.tokens > 0 {
            return now;
        }
        let missing = NANOS_PER_SECOND - self.partial;
        let per_second = u128::from(self.per_second);
        let nanos = missing.div_ceil(per_second);
        now + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_one_second_then_one_token_per_interval() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(4, start);
        for _ in 0..4 {
            assert!(bucket.try_take(start));
        }
        assert!(!bucket.try_take(start));
        assert_eq!(
            bucket.next_token_at(start),
            start + Duration::from_millis(250)
        );
        assert!(!bucket.try_take(start + Duration::from_millis(249)));
        assert!(bucket.try_take(start + Duration::from_millis(250)));
        assert!(!bucket.try_take(start + Duration::from_millis(250)));
    }

    #[test]
    fn over_a_long_run_the_rate_holds_exactly() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(3, start);
        let mut sent = 0;
        // Poll every 7 ms for 10 s: 3 in the initial burst plus 3 per second.
        for step in 0..=(10_000 / 7) {
            let now = start + Duration::from_millis(step * 7);
            while bucket.try_take(now) {
                sent += 1;
            }
        }
        assert_eq!(sent, 3 + 29);
    }

    #[test]
    fn zero_means_unlimited() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(0, start);
        for _ in 0..1000 {
            assert!(bucket.try_take(start));
        }
    }
}

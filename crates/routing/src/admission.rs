//! Per-number limits: how many calls a 400 number may carry at once, and how many new
//! calls per second it accepts. These are the only routing inputs with state, kept in
//! counters the daemon owns; the checks themselves are pure and clocked by the caller.

use std::time::{Duration, Instant};

/// Why admission refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// At its concurrent-call limit: `486 Busy Here`.
    Concurrency,
    /// Over its calls-per-second limit: `503 Service Unavailable`.
    Rate,
}

impl Refusal {
    pub fn status(self) -> u16 {
        match self {
            Refusal::Concurrency => 486,
            Refusal::Rate => 503,
        }
    }
}

/// The counters for one 400 number.
#[derive(Debug, Clone)]
pub struct NumberLimits {
    active: u32,
    /// Token bucket: `tokens` calls may start now; refilled at `rate` per second up to
    /// `rate` (a one-second burst).
    tokens: f64,
    refilled_at: Option<Instant>,
}

impl Default for NumberLimits {
    fn default() -> Self {
        NumberLimits {
            active: 0,
            tokens: 0.0,
            refilled_at: None,
        }
    }
}

impl NumberLimits {
    /// Admits a new call against the limits, counting it active if admitted.
    pub fn admit(
        &mut self,
        max_concurrent: Option<u32>,
        max_cps: Option<u32>,
        now: Instant,
    ) -> Result<(), Refusal> {
        if max_concurrent.is_some_and(|max| self.active >= max) {
            return Err(Refusal::Concurrency);
        }
        if let Some(rate) = max_cps {
            let rate = f64::from(rate);
            let elapsed = self.refilled_at.map_or(Duration::from_secs(1), |at| {
                now.saturating_duration_since(at)
            });
            self.tokens = (self.tokens + elapsed.as_secs_f64() * rate).min(rate);
            self.refilled_at = Some(now);
            if self.tokens < 1.0 {
                return Err(Refusal::Rate);
            }
            self.tokens -= 1.0;
        }
        self.active += 1;
        Ok(())
    }

    /// A call admitted earlier has ended.
    pub fn release(&mut self) {
        self.active = self.active.saturating_sub(1);
    }

    pub fn active(&self) -> u32 {
        self.active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_limit() {
        let mut l = NumberLimits::default();
        let now = Instant::now();
        assert_eq!(l.admit(Some(2), None, now), Ok(()));
        assert_eq!(l.admit(Some(2), None, now), Ok(()));
        assert_eq!(l.admit(Some(2), None, now), Err(Refusal::Concurrency));
        l.release();
        assert_eq!(l.admit(Some(2), None, now), Ok(()));
        assert_eq!(l.active(), 2);
    }

    #[test]
    fn rate_limit_refills_over_time() {
        let mut l = NumberLimits::default();
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(l.admit(None, Some(5), t0), Ok(()));
        }
        assert_eq!(l.admit(None, Some(5), t0), Err(Refusal::Rate));
        assert_eq!(
            l.admit(None, Some(5), t0 + Duration::from_millis(100)),
            Err(Refusal::Rate)
        );
        assert_eq!(
            l.admit(None, Some(5), t0 + Duration::from_millis(210)),
            Ok(())
        );
        assert_eq!(Refusal::Rate.status(), 503);
        assert_eq!(Refusal::Concurrency.status(), 486);
    }
}

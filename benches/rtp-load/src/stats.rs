//! Per-stream interarrival jitter (RFC 3550 §6.4.1, §A.8) and percentiles.

/// The value at quantile `q` (0..=1) of sorted `values`, nearest rank.
pub fn percentile<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// RFC 3550's running jitter estimate for one stream: for consecutive packets i-1, i
/// with send times S and arrival times R, D = (R_i − R_{i−1}) − (S_i − S_{i−1}) and
/// J += (|D| − J) / 16. Which clock counts as "sent" decides what the figure shows;
/// see [`StreamJitter`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Jitter {
    last_transit_ns: Option<i64>,
    estimate_ns: f64,
    /// Sum of the estimate after each packet inside the measured window, and how many:
    /// the stream's figure is the mean over the window, steadier than the estimate
    /// after the last packet, which only reflects the last ~16 packets.
    sum_ns: f64,
    samples: u64,
}

impl Jitter {
    /// One packet: `transit_ns` = arrival time − send time, on whatever clocks.
    pub fn update(&mut self, transit_ns: i64, in_window: bool) {
        if let Some(last) = self.last_transit_ns {
            let d = (transit_ns - last).unsigned_abs() as f64;
            self.estimate_ns += (d - self.estimate_ns) / 16.0;
            if in_window {
                self.sum_ns += self.estimate_ns;
                self.samples += 1;
            }
        }
        self.last_transit_ns = Some(transit_ns);
    }

    /// The mean estimate over the window, in ms; `None` without samples.
    pub fn mean_ms(&self) -> Option<f64> {
        (self.samples > 0).then(|| self.sum_ns / self.samples as f64 / 1e6)
    }
}

/// The three views of one received stream's jitter.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamJitter {
    /// Arrival against the stream's nominal 20 ms grid: what a phone's jitter buffer
    /// sees (the sender's pacing error plus the relay's).
    pub at_receiver: Jitter,
    /// Arrival against the moment the packet actually left the generator: what the
    /// relay (and the two loopback hops, and our receiving thread) added.
    pub added: Jitter,
    /// The moment the packet left against its nominal time: the generator's own
    /// pacing error, to tell apart from the relay's.
    pub sender: Jitter,
}

/// Mean and maximum over streams of each view, in ms.
#[derive(Debug, Clone, Copy, Default)]
pub struct JitterSummary {
    pub at_receiver_ms: f64,
    pub added_ms: f64,
    pub sender_ms: f64,
    pub added_max_stream_ms: f64,
    pub streams: usize,
}

pub fn summarize<'a>(streams: impl IntoIterator<Item = &'a StreamJitter>) -> JitterSummary {
    let mut sum = JitterSummary::default();
    for stream in streams {
        let (Some(receiver), Some(added), Some(sender)) = (
            stream.at_receiver.mean_ms(),
            stream.added.mean_ms(),
            stream.sender.mean_ms(),
        ) else {
            continue;
        };
        sum.at_receiver_ms += receiver;
        sum.added_ms += added;
        sum.sender_ms += sender;
        sum.added_max_stream_ms = sum.added_max_stream_ms.max(added);
        sum.streams += 1;
    }
    if sum.streams > 0 {
        let n = sum.streams as f64;
        sum.at_receiver_ms /= n;
        sum.added_ms /= n;
        sum.sender_ms /= n;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_transit_has_no_jitter() {
        let mut jitter = Jitter::default();
        for _ in 0..100 {
            jitter.update(1_000_000, true);
        }
        assert_eq!(jitter.mean_ms(), Some(0.0));
    }

    #[test]
    fn alternating_transit_converges_on_the_difference() {
        // Transit alternating 0 and 2 ms: |D| is always 2 ms, so J tends to 2 ms.
        let mut jitter = Jitter::default();
        for i in 0..1000 {
            jitter.update(if i % 2 == 0 { 0 } else { 2_000_000 }, i >= 500);
        }
        let mean = jitter.mean_ms().unwrap();
        assert!((mean - 2.0).abs() < 0.01, "{mean}");
    }

    #[test]
    fn packets_before_the_window_only_prime_the_estimate() {
        let mut jitter = Jitter::default();
        jitter.update(0, false);
        jitter.update(5_000_000, false);
        assert_eq!(jitter.mean_ms(), None);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.5), Some(50));
        assert_eq!(percentile(&values, 0.99), Some(99));
        assert_eq!(percentile(&values, 1.0), Some(100));
        assert_eq!(percentile(&values, 0.0), Some(1));
        assert_eq!(percentile::<u32>(&[], 0.5), None);
    }
}

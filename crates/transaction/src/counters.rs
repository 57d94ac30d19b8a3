//! What the endpoint's SIP traffic was, by method and response class: tallies the
//! signalling loop bumps (relaxed atomic adds, never a lock) and a metrics scrape reads
//! from another thread. Named after what Kamailio's and OpenSIPS's core statistics
//! count (`rcv_requests_invite`, `sent_replies` by class), so that dashboards built for
//! those read the same way.

use std::sync::atomic::{AtomicU64, Ordering};

use sihai_sip::Method;

/// Methods are counted by name when they are one of [`Method::STANDARD`]; anything
/// else counts as `"other"` (an unbounded set of extension methods must not become an
/// unbounded set of label values).
const METHODS: usize = Method::STANDARD.len() + 1;

fn method_label(index: usize) -> &'static str {
    Method::STANDARD.get(index).map_or("other", |m| m.as_str())
}

/// Response classes `1xx` to `6xx`.
pub const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"];

/// Messages by method (and class, for responses).
#[derive(Debug, Default)]
pub struct SipCounters {
    requests_received: [AtomicU64; METHODS],
    requests_sent: [AtomicU64; METHODS],
    replies_received: [[AtomicU64; CLASSES.len()]; METHODS],
    replies_sent: [[AtomicU64; CLASSES.len()]; METHODS],
}

fn method_index(method: &str) -> usize {
    Method::STANDARD
        .iter()
        .position(|m| m.as_str() == method)
        .unwrap_or(METHODS - 1)
}

/// `None` for a status outside 100..=699, which a validated message never has.
fn class_index(status: u16) -> Option<usize> {
    let class = usize::from(status / 100);
    (1..=CLASSES.len()).contains(&class).then(|| class - 1)
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl SipCounters {
    pub fn request_received(&self, method: &str) {
        bump(&self.requests_received[method_index(method)]);
    }

    pub fn request_sent(&self, method: &str) {
        bump(&self.requests_sent[method_index(method)]);
    }

    /// A response to a `method` request arrived.
    pub fn reply_received(&self, method: &str, status: u16) {
        if let Some(class) = class_index(status) {
            bump(&self.replies_received[method_index(method)][class]);
        }
    }

    /// A response to a `method` request was sent (its first transmission).
    pub fn reply_sent(&self, method: &str, status: u16) {
        if let Some(class) = class_index(status) {
            bump(&self.replies_sent[method_index(method)][class]);
        }
    }

    /// Each method's count of requests received, in [`Method::STANDARD`] order, then
    /// `"other"`.
    pub fn requests_received(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        per_method(&self.requests_received)
    }

    pub fn requests_sent(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        per_method(&self.requests_sent)
    }

    /// Each (method, class) count of responses received.
    pub fn replies_received(&self) -> impl Iterator<Item = (&'static str, &'static str, u64)> + '_ {
        per_class(&self.replies_received)
    }

    pub fn replies_sent(&self) -> impl Iterator<Item = (&'static str, &'static str, u64)> + '_ {
        per_class(&self.replies_sent)
    }
}

fn per_method(counts: &[AtomicU64]) -> impl Iterator<Item = (&'static str, u64)> + '_ {
    counts
        .iter()
        .enumerate()
        .map(|(i, c)| (method_label(i), c.load(Ordering::Relaxed)))
}

fn per_class(
    counts: &[[AtomicU64; CLASSES.len()]],
) -> impl Iterator<Item = (&'static str, &'static str, u64)> + '_ {
    counts.iter().enumerate().flat_map(|(i, row)| {
        CLASSES
            .iter()
            .zip(row)
            .map(move |(class, c)| (method_label(i), *class, c.load(Ordering::Relaxed)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_and_classes_are_counted_and_unknown_methods_fold_into_other() {
        let counters = SipCounters::default();
        counters.request_received("INVITE");
        counters.request_received("INVITE");
        counters.request_received("FROBNICATE");
        counters.reply_sent("INVITE", 180);
        counters.reply_sent("INVITE", 486);
        counters.reply_sent("INVITE", 99); // not a status: not counted
        let received: Vec<_> = counters
            .requests_received()
            .filter(|(_, n)| *n > 0)
            .collect();
        assert_eq!(received, [("INVITE", 2), ("other", 1)]);
        let sent: Vec<_> = counters.replies_sent().filter(|(_, _, n)| *n > 0).collect();
        assert_eq!(sent, [("INVITE", "1xx", 1), ("INVITE", "4xx", 1)]);
    }
}

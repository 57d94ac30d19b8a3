//! The node's figures in the Prometheus text format, for `GET /metrics`.
//!
//! Everything here is read at scrape time from the atomics the signalling loop, the
//! transaction layer, the alert worker and the API write ([`Stats`], [`ApiCounters`]):
//! a scrape takes no lock the signalling loop takes and the loop never waits for a
//! scrape. The text is encoded by the Prometheus project's own client
//! (`prometheus-client`), through a collector, so names, `# HELP`/`# TYPE` lines,
//! label escaping and the `_total` suffix of counters follow the format exactly.
//!
//! Names follow what operators know from the Kamailio and OpenSIPS exporters where they
//! overlap (requests received and replies sent by method and class, transactions,
//! calls by state), under the `sihai_` prefix. No label is a number, a caller or an
//! enterprise: per-enterprise figures are the analytics API's, and a label per caller
//! would grow without bound.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use sihai_records::Outcome;

use crate::stats::{CRM_RESULTS, HUNT_RESULTS, LatencyHistogram, NodeView, Stats};

/// API requests by route template and status: the API's middleware counts, a scrape
/// reads. The API is not the signalling path, so a short lock is fine here; the set
/// of labels is bounded by the routes (templates, never concrete paths) and the
/// statuses they answer.
#[derive(Debug, Default)]
pub struct ApiCounters {
    requests: Mutex<HashMap<(String, u16), u64>>,
}

impl ApiCounters {
    /// One request to `route` (its template, e.g. `/api/v1/enterprises/{id}`; `"other"`
    /// for what matched no route) answered with `status`.
    pub fn count(&self, route: &str, status: u16) {
        if let Ok(mut requests) = self.requests.lock() {
            *requests.entry((route.to_owned(), status)).or_default() += 1;
        }
    }

    fn read(&self) -> Vec<((String, u16), u64)> {
        let mut all: Vec<_> = self
            .requests
            .lock()
            .map(|r| r.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default();
        all.sort();
        all
    }
}

/// Renders every metric of the node now.
pub fn render(view: &NodeView, api: &Arc<ApiCounters>) -> String {
    let mut registry = Registry::with_prefix("sihai");
    registry.register_collector(Box::new(NodeCollector {
        stats: view.stats.clone(),
        store: view.store.clone(),
        started_at: view.started_at,
        api: api.clone(),
    }));
    let mut text = String::new();
    // Writing into a String cannot fail; an encoder error would be a bug in a label.
    if let Err(err) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        tracing::error!(%err, "cannot encode the metrics");
    }
    text
}

#[derive(Debug)]
struct NodeCollector {
    stats: Arc<Stats>,
    store: Arc<sihai_store::WriterStats>,
    started_at: Timestamp,
    api: Arc<ApiCounters>,
}

fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// One metric without labels.
fn single(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    value: u64,
) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    match kind {
        MetricType::Counter => metric.encode_counter::<NoLabelSet, _, u64>(&value, None),
        _ => metric.encode_gauge(&value),
    }
}

/// One metric with a value per label set.
fn labelled<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    values: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in values {
        let mut family = metric.encode_family(&labels)?;
        match kind {
            MetricType::Counter => family.encode_counter::<NoLabelSet, _, u64>(&value, None)?,
            _ => family.encode_gauge(&value)?,
        }
    }
    Ok(())
}

fn histogram(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    histogram: &LatencyHistogram,
) -> fmt::Result {
    let (sum, count, buckets) = histogram.read();
    encoder
        .encode_descriptor(name, help, None, MetricType::Histogram)?
        .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
}

impl Collector for NodeCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        use MetricType::{Counter, Gauge};
        let s = &self.stats;

        single(
            &mut e,
            "start_time_seconds",
            "When the daemon started (Unix time).",
            Gauge,
            u64::try_from(self.started_at.as_second()).unwrap_or(0),
        )?;

        single(
            &mut e,
            "draining",
            "1 while the node drains before stopping (new calls and OPTIONS get 503), else 0.",
            Gauge,
            load(&s.draining),
        )?;

        single(
            &mut e,
            "calls_refused_draining",
            "New calls answered 503 because the node was draining (no CDR is written for them).",
            Counter,
            load(&s.calls_refused_draining),
        )?;

        // SIP, as Kamailio's core and sl/tm statistics count it.
        single(
            &mut e,
            "sip_messages_received",
            "SIP messages received (requests and responses, retransmissions included).",
            Counter,
            load(&s.received),
        )?;
        labelled(
            &mut e,
            "sip_requests_received",
            "SIP requests received, by method (retransmissions included).",
            Counter,
            s.sip.requests_received().map(|(m, n)| ([("method", m)], n)),
        )?;
        labelled(
            &mut e,
            "sip_replies_sent",
            "SIP responses sent, by the request's method and the response class (first transmissions).",
            Counter,
            s.sip
                .replies_sent()
                .map(|(m, c, n)| ([("method", m), ("class", c)], n)),
        )?;
        labelled(
            &mut e,
            "sip_requests_sent",
            "SIP requests sent in client transactions, by method.",
            Counter,
            s.sip.requests_sent().map(|(m, n)| ([("method", m)], n)),
        )?;
        labelled(
            &mut e,
            "sip_replies_received",
            "SIP responses received to our requests, by method and class.",
            Counter,
            s.sip
                .replies_received()
                .map(|(m, c, n)| ([("method", m), ("class", c)], n)),
        )?;
        labelled(
            &mut e,
            "sip_dropped",
            "SIP messages dropped or refused before a transaction, by reason.",
            Counter,
            [
                ("unparsable", &s.unparsable),
                ("malformed_request", &s.rejected_requests),
                ("malformed_or_stray_response", &s.dropped_responses),
                ("stray_ack", &s.stray_acks),
                ("untrusted_rejected", &s.untrusted_rejected),
                ("untrusted_dropped", &s.untrusted_dropped),
                ("scanner", &s.scanners_dropped),
                ("flood_limited", &s.flood_limited),
            ]
            .map(|(reason, c)| ([("reason", reason)], load(c))),
        )?;
        single(
            &mut e,
            "sip_transaction_timeouts",
            "Client transactions that timed out (no final response).",
            Counter,
            load(&s.transaction_timeouts),
        )?;
        single(
            &mut e,
            "sip_transport_errors",
            "Messages that could not be sent.",
            Counter,
            load(&s.transport_errors),
        )?;
        single(
            &mut e,
            "sip_transactions",
            "SIP transactions in progress (live or absorbing retransmissions).",
            Gauge,
            load(&s.transactions),
        )?;

        // Calls.
        let in_progress = load(&s.calls_in_progress);
        let talking = load(&s.calls_talking).min(in_progress);
        labelled(
            &mut e,
            "calls",
            "Calls in progress, by state: setup (screening, menu, hunting, ringing) or talking (bridged to the phone that answered).",
            Gauge,
            [("setup", in_progress - talking), ("talking", talking)]
                .map(|(state, n)| ([("state", state)], n)),
        )?;
        single(
            &mut e,
            "calls_offered",
            "New calls (initial INVITEs handed to call control).",
            Counter,
            load(&s.calls_offered),
        )?;
        labelled(
            &mut e,
            "calls_ended",
            "Finished calls by outcome, as their CDRs record it.",
            Counter,
            Outcome::ALL
                .iter()
                .zip(&s.outcomes)
                .map(|(o, c)| ([("outcome", o.as_str())], load(c))),
        )?;
        single(
            &mut e,
            "call_talk_seconds",
            "Talk time of finished calls, seconds (with calls_ended{outcome=\"answered\"}: the average call duration).",
            Counter,
            load(&s.talk_seconds),
        )?;
        labelled(
            &mut e,
            "hunt_attempts",
            "Phones tried by hunts, by result.",
            Counter,
            HUNT_RESULTS
                .iter()
                .zip(&s.hunt_attempts)
                .map(|(r, c)| ([("result", *r)], load(c))),
        )?;
        histogram(
            &mut e,
            "session_request_delay_seconds",
            "RFC 6076 session request delay: the INVITE's arrival to the first ringing, answer or final response, every finished call.",
            &s.session_request_delay,
        )?;
        histogram(
            &mut e,
            "answer_delay_seconds",
            "The INVITE's arrival to the answer, answered calls.",
            &s.answer_delay,
        )?;

        labelled(
            &mut e,
            "crm_lookups",
            "CRM caller lookups (来电弹屏) by how they came out: from the cache, or the CRM's answer (known, unknown: not a customer, failed); timed_out counts the calls that rang without waiting longer.",
            Counter,
            CRM_RESULTS
                .iter()
                .zip(&s.crm_lookups)
                .map(|(r, c)| ([("result", *r)], load(c))),
        )?;

        // The relay.
        let ports = load(&s.relay_ports);
        let free = load(&s.relay_ports_free).min(ports);
        labelled(
            &mut e,
            "relay_port_pairs",
            "The RTP relay's port pairs, by state (0 with the relay off).",
            Gauge,
            [("free", free), ("in_use", ports - free)].map(|(state, n)| ([("state", state)], n)),
        )?;
        single(
            &mut e,
            "relay_packets",
            "RTP packets the relay forwarded, counted when their call ends.",
            Counter,
            load(&s.relay_packets),
        )?;
        single(
            &mut e,
            "relay_dropped_packets",
            "RTP packets the relay dropped (wrong source, payload type, sequence, no destination...), counted when their call ends.",
            Counter,
            load(&s.relay_dropped),
        )?;

        // Prepaid billing.
        single(
            &mut e,
            "billing_reservations_open",
            "Calls holding a prepaid reservation or waiting for the store to grant one.",
            Gauge,
            load(&s.reservations_open),
        )?;
        single(
            &mut e,
            "billing_cutoffs",
            "Answered calls ended because their money ran out.",
            Counter,
            load(&s.billing_cutoffs),
        )?;

        // The store's CDR writer: the final responses of ended calls wait for its
        // commits.
        single(
            &mut e,
            "store_queued_cdrs",
            "CDRs recorded and not committed to the store yet (on PostgreSQL, those spooled during an outage included).",
            Gauge,
            load(&self.store.queued),
        )?;
        histogram(
            &mut e,
            "store_commit_seconds",
            "How long each commit of a batch of CDRs took.",
            &self.store.commits,
        )?;
        single(
            &mut e,
            "store_commit_failures",
            "Commits of CDR batches that failed (each is retried; on PostgreSQL an unreachable database spools them).",
            Counter,
            load(&self.store.commit_failures),
        )?;

        // The notice outbox.
        single(
            &mut e,
            "alerts_delivered",
            "Missed-call and account notices delivered.",
            Counter,
            load(&s.alerts_delivered),
        )?;
        single(
            &mut e,
            "alerts_failed_attempts",
            "Notice delivery attempts that failed (each is retried with backoff).",
            Counter,
            load(&s.alerts_failed),
        )?;
        single(
            &mut e,
            "alerts_given_up",
            "Notices given up after their last attempt.",
            Counter,
            load(&s.alerts_given_up),
        )?;
        single(
            &mut e,
            "alerts_backlog",
            "Notices in the outbox not delivered yet.",
            Gauge,
            load(&s.alerts_backlog),
        )?;

        // The admin API.
        let api = self.api.read();
        labelled(
            &mut e,
            "api_requests",
            "Admin API requests, by route template and status.",
            Counter,
            api.iter().map(|((route, status), n)| {
                (
                    [("route", route.clone()), ("status", status.to_string())],
                    *n,
                )
            }),
        )?;
        Ok(())
    }
}

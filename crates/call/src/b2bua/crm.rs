//! 来电弹屏: the caller's name and customer id from the enterprise's CRM, on the phones'
//! INVITE.
//!
//! A routed call whose enterprise has a `crm_lookup_url` asks for the caller once
//! ([`CrmLookupRequest`], taken with [`B2bua::poll_crm_lookup`]); the daemon does the
//! HTTP off the event loop and feeds the answer back with [`B2bua::on_crm_answer`]. A
//! call that is about to ring waits for it with its hunt not started, at most until the
//! enterprise's timeout on the call's own timer; then the phones ring with whatever is
//! known (a name, or the plain number). A call answered by a voice menu first does not
//! wait: the lookup runs while the caller listens, and the answer is used if it came.
//! Answers (including "not a customer") are cached per (enterprise, caller), so that a
//! caller who rings again is not looked up again; failures are not cached.
//! Calls of enterprises without a CRM never reach this file's work.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use sihai_transaction::TransactionLayer;
use tracing::debug;

use super::B2bua;
use super::call::CallId;
use super::groups::with_group_state;

/// How long an answer is reused for the same caller of the same enterprise: a caller
/// who rings back within minutes is the same customer, while a CRM record edited now
/// shows on calls a few minutes later.
pub const CRM_CACHE_TTL: Duration = Duration::from_secs(300);
/// Callers remembered at most, across enterprises: ~200 bytes each, so a few MB at
/// worst; past it the oldest answers go first.
pub const CRM_CACHE_CAPACITY: usize = 20_000;
/// Characters of a display name kept: a phone's screen shows fewer.
const MAX_NAME_CHARS: usize = 64;
/// Characters of a customer id kept.
const MAX_CUSTOMER_ID_CHARS: usize = 64;

/// The header the customer id travels in to the phones. No registered SIP header
/// carries a CRM record's id (`Call-Info` needs a URI the CRM does not give), so it is a
/// private one; the `X-` prefix keeps it clear of any header that may be registered
/// later, and it is the form phones and CTI clients are configured to pick up and show.
pub const CUSTOMER_ID_HEADER: &str = "X-Customer-Id";

/// What the daemon asks the CRM: `GET url?caller=..&number=..`, given up after
/// `timeout`. Its answer goes to [`B2bua::on_crm_answer`] with `lookup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmLookupRequest {
    pub lookup: u64,
    pub url: String,
    pub timeout: Duration,
    /// The normalised caller number.
    pub caller: String,
    /// The 400 number dialled.
    pub number: String,
}

/// How the CRM lookups of this node's calls came out, since start: each call to an
/// enterprise with a CRM is counted once by where its answer came from (the cache, or
/// the CRM: known, not a customer, failed), and once more in `timed_out` when it stopped
/// waiting and rang without the answer (which, arriving later, is still counted by its
/// kind).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CrmCounts {
    pub cached: u64,
    pub known: u64,
    pub unknown: u64,
    pub failed: u64,
    pub timed_out: u64,
}

/// What came back from the CRM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrmAnswer {
    /// The CRM knows the caller.
    Known(CallerIdentity),
    /// The CRM answered that the caller is not a customer (cached like a name).
    Unknown,
    /// No usable answer (timeout, connection, status, garbage): not cached.
    Failed,
}

/// A caller as the CRM knows them, made safe to put into SIP headers: at least one of
/// the two is present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    name: Option<String>,
    customer_id: Option<String>,
}

impl CallerIdentity {
    /// The identity from a CRM's fields, cleaned: the name loses control characters and
    /// surrounding space and is cut to 64 characters; a customer id that is not 1 to 64
    /// visible ASCII characters is dropped (it goes into a header and a CSV as is).
    /// `None` when nothing usable is left.
    pub fn new(name: Option<&str>, customer_id: Option<&str>) -> Option<CallerIdentity> {
        let name = name
            .map(|n| {
                n.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_NAME_CHARS)
                    .collect::<String>()
                    .trim()
                    .to_owned()
            })
            .filter(|n| !n.is_empty());
        let customer_id = customer_id
            .map(str::trim)
            .filter(|id| {
                (1..=MAX_CUSTOMER_ID_CHARS).contains(&id.len())
                    && id.bytes().all(|b| b.is_ascii_graphic())
            })
            .map(str::to_owned);
        (name.is_some() || customer_id.is_some()).then_some(CallerIdentity { name, customer_id })
    }

    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub fn customer_id(&self) -> Option<&str> {
        self.customer_id.as_deref()
    }

    /// The name as a quoted-string display name (RFC 3261 §25.1: `"` and `\` escaped
    /// as quoted-pairs; UTF-8 is allowed as is; control characters were removed).
    pub fn quoted_name(&self) -> Option<String> {
        let name = self.name.as_deref()?;
        let mut quoted = String::with_capacity(name.len() + 2);
        quoted.push('"');
        for c in name.chars() {
            if matches!(c, '"' | '\\') {
                quoted.push('\\');
            }
            quoted.push(c);
        }
        quoted.push('"');
        Some(quoted)
    }
}

/// (enterprise id, caller number): whom an answer is about.
type CallerKey = (String, String);
/// A cached answer (`None`: not a customer) and when it expires.
type CachedAnswer = (Option<Arc<CallerIdentity>>, Instant);

/// Answers by (enterprise, caller), each kept [`CRM_CACHE_TTL`]; `None` inside is "not a
/// customer". Bounded: the oldest entries are dropped first.
#[derive(Default)]
pub(super) struct CrmCache {
    entries: HashMap<CallerKey, CachedAnswer>,
    /// Insertion order with each entry's expiry, to evict the oldest; an entry
    /// re-inserted since is recognised by its expiry differing.
    order: VecDeque<(CallerKey, Instant)>,
}

impl CrmCache {
    /// The cached answer, when there is a fresh one.
    fn get(
        &self,
        enterprise: &str,
        caller: &str,
        now: Instant,
    ) -> Option<Option<Arc<CallerIdentity>>> {
        // A tuple key of borrowed strings cannot look up owned ones; the few bytes
        // copied cost less than a second map.
        let (answer, expires) = self
            .entries
            .get(&(enterprise.to_owned(), caller.to_owned()))?;
        (now < *expires).then(|| answer.clone())
    }

    fn insert(
        &mut self,
        enterprise: String,
        caller: String,
        answer: Option<Arc<CallerIdentity>>,
        now: Instant,
    ) {
        let expires = now + CRM_CACHE_TTL;
        let key = (enterprise, caller);
        self.order.push_back((key.clone(), expires));
        self.entries.insert(key, (answer, expires));
        while self.entries.len() > CRM_CACHE_CAPACITY
            || self.order.front().is_some_and(|(_, at)| *at <= now)
        {
            let Some((old, at)) = self.order.pop_front() else {
                break;
            };
            if self.entries.get(&old).is_some_and(|(_, e)| *e == at) {
                self.entries.remove(&old);
            }
        }
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// What a routed call does about the CRM.
pub(super) enum CrmStart {
    /// No CRM, an anonymous caller: nothing.
    None,
    /// Known from the cache (`None` inside: not a customer).
    Cached(Option<Arc<CallerIdentity>>),
    /// Ask, and wait until this instant at most.
    Ask(CrmLookupRequest, Instant),
}

/// The lookup a call is waiting for.
pub(super) struct Outstanding {
    pub(super) call: CallId,
    pub(super) enterprise: String,
    pub(super) caller: String,
}

impl B2bua {
    /// The next CRM lookup to do.
    pub fn poll_crm_lookup(&mut self) -> Option<CrmLookupRequest> {
        self.crm_lookups.pop_front()
    }

    /// Lookups asked and not answered yet.
    pub fn crm_lookups_outstanding(&self) -> usize {
        self.crm_outstanding.len()
    }

    /// Callers in the CRM cache.
    pub fn crm_cache_len(&self) -> usize {
        self.crm_cache.len()
    }

    /// How the CRM lookups came out so far.
    pub fn crm_counts(&self) -> CrmCounts {
        self.crm_counts
    }

    /// What the call routed to `route` does about the CRM (the call is to be `id`).
    pub(super) fn crm_start(
        &mut self,
        route: &sihai_routing::Route,
        id: CallId,
        now: Instant,
    ) -> CrmStart {
        let Some(crm) = route.number.enterprise.crm.as_ref() else {
            return CrmStart::None;
        };
        if route.caller.is_anonymous() {
            return CrmStart::None;
        }
        let enterprise = &route.number.enterprise.id;
        let caller = route.caller.as_str();
        if let Some(answer) = self.crm_cache.get(enterprise, caller, now) {
            self.crm_counts.cached += 1;
            return CrmStart::Cached(answer);
        }
        self.crm_outstanding.insert(
            id,
            Outstanding {
                call: id,
                enterprise: enterprise.clone(),
                caller: caller.to_owned(),
            },
        );
        CrmStart::Ask(
            CrmLookupRequest {
                lookup: id,
                url: crm.url.clone(),
                timeout: crm.timeout,
                caller: caller.to_owned(),
                number: route.number.number.clone(),
            },
            now + crm.timeout,
        )
    }

    /// The CRM's answer to lookup `lookup`. A call still waiting for it rings now, with
    /// the caller's name when there is one; a call already ringing (its timeout passed)
    /// only leaves the answer in the cache for the next call.
    pub fn on_crm_answer(
        &mut self,
        tx: &mut TransactionLayer,
        lookup: u64,
        answer: CrmAnswer,
        now: Instant,
        wall: Timestamp,
    ) {
        let Some(outstanding) = self.crm_outstanding.remove(&lookup) else {
            return;
        };
        let identity = match answer {
            CrmAnswer::Known(identity) => {
                self.crm_counts.known += 1;
                Some(Arc::new(identity))
            }
            CrmAnswer::Unknown => {
                self.crm_counts.unknown += 1;
                None
            }
            CrmAnswer::Failed => {
                self.crm_counts.failed += 1;
                debug!(
                    call = outstanding.call,
                    "CRM lookup failed; ringing with the number"
                );
                self.ring_after_crm(tx, outstanding.call, now, wall);
                return;
            }
        };
        self.crm_cache.insert(
            outstanding.enterprise,
            outstanding.caller,
            identity.clone(),
            now,
        );
        let Some(call) = self.calls.get_mut(&outstanding.call) else {
            return;
        };
        // Phones already ringing keep the INVITE they got; later ones (a hunt moving
        // on, a menu's choice) carry the name.
        call.caller_identity = identity;
        self.ring_after_crm(tx, outstanding.call, now, wall);
    }

    /// Starts the hunt of a call that waited for the CRM; nothing for a call that no
    /// longer waits (its timeout passed, it went to its menu, or it ended).
    pub(super) fn ring_after_crm(
        &mut self,
        tx: &mut TransactionLayer,
        id: CallId,
        now: Instant,
        wall: Timestamp,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.crm_wait_until.take().is_none() {
            return;
        }
        with_group_state(&mut self.groups, &call.route.group, |state| {
            call.hunt.start(state, now)
        });
        self.drive(tx, id, now, wall);
    }

    /// Runs the call's CRM timer: past the wait, the phones ring without the answer.
    /// Returns true when it started the hunt.
    pub(super) fn crm_timer(
        &mut self,
        tx: &mut TransactionLayer,
        id: CallId,
        now: Instant,
        wall: Timestamp,
    ) -> bool {
        let due = self
            .calls
            .get(&id)
            .and_then(|c| c.crm_wait_until)
            .is_some_and(|at| at <= now);
        if due {
            self.crm_counts.timed_out += 1;
            debug!(
                call = id,
                "no CRM answer within the timeout; ringing with the number"
            );
            self.ring_after_crm(tx, id, now, wall);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_cleaned_for_headers() {
        let who = CallerIdentity::new(Some(" 张\r\n三 "), Some("C1024")).expect("usable");
        assert_eq!(who.name(), Some("张三"));
        assert_eq!(who.customer_id(), Some("C1024"));
        let quoted = CallerIdentity::new(Some(r#"Bob "the" \ Boss"#), None).expect("usable");
        assert_eq!(
            quoted.quoted_name().as_deref(),
            Some(r#""Bob \"the\" \\ Boss""#)
        );
        assert_eq!(quoted.customer_id(), None);
        // A customer id that could break a header or a CSV line is dropped.
        assert_eq!(
            CallerIdentity::new(None, Some("C 1\r\nVia: x")),
            None,
            "nothing usable is left"
        );
        assert_eq!(CallerIdentity::new(Some("\u{7}"), Some("")), None);
        let long = CallerIdentity::new(Some(&"名".repeat(100)), None).expect("usable");
        assert_eq!(long.name().map(|n| n.chars().count()), Some(MAX_NAME_CHARS));
    }

    #[test]
    fn cache_expires_and_stays_bounded() {
        let mut cache = CrmCache::default();
        let t0 = Instant::now();
        let who = CallerIdentity::new(Some("张三"), None).map(Arc::new);
        cache.insert("acme".into(), "13800138000".into(), who.clone(), t0);
        assert_eq!(cache.get("acme", "13800138000", t0), Some(who));
        assert_eq!(cache.get("other", "13800138000", t0), None);
        assert_eq!(cache.get("acme", "13800138000", t0 + CRM_CACHE_TTL), None);
        for n in 0..CRM_CACHE_CAPACITY + 10 {
            cache.insert("acme".into(), n.to_string(), None, t0);
        }
        assert_eq!(cache.len(), CRM_CACHE_CAPACITY);
        assert_eq!(cache.get("acme", "0", t0), None, "the oldest went first");
        assert_eq!(cache.get("acme", "10", t0), Some(None));
    }
}

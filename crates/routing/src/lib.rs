//! Routing decisions for 400-number calls, as pure functions over a [`RoutingTable`]
//! snapshot, the call's identities and an instant: no I/O, no clock of its own, no
//! shared mutable state. One module per step, in the order a call meets them:
//!
//! 1. [`number`]: normalise the dialled number and the caller;
//! 2. [`route`]: source trunk → number → status → screening ([`lists`], anonymous,
//!    blocked regions) → [`schedule`] → caller region rules → the group to hunt;
//! 3. [`admission`]: per-number concurrent-call and calls-per-second limits, the only
//!    step with state (counters the daemon owns).

pub mod admission;
pub mod lists;
pub mod model;
pub mod number;
pub mod route;
pub mod schedule;

pub use model::{Group, NumberEntry, Phone, Plan, RoutingTable, Trunk};
pub use number::{Caller, normalise_400, normalise_caller};
pub use route::{CallRequest, Decision, RejectKind, Rejection, Route, route};

/// A province or city name without its administrative suffix, so that `北京市`,
/// `北京` and a data set's `北京` compare equal.
pub fn region_name(name: &str) -> &str {
    const SUFFIXES: [&str; 8] = [
        "壮族自治区",
        "回族自治区",
        "维吾尔自治区",
        "特别行政区",
        "自治区",
        "自治州",
        "省",
        "市",
    ];
    let name = name.trim();
    for suffix in SUFFIXES {
        if let Some(stem) = name.strip_suffix(suffix)
            && !stem.is_empty()
        {
            return stem;
        }
    }
    name
}

#[cfg(test)]
mod tests {
    #[test]
    fn region_names() {
        assert_eq!(super::region_name("北京市"), "北京");
        assert_eq!(super::region_name("广东省"), "广东");
        assert_eq!(super::region_name("广西壮族自治区"), "广西");
        assert_eq!(super::region_name("香港特别行政区"), "香港");
        assert_eq!(super::region_name("深圳"), "深圳");
        assert_eq!(super::region_name("市"), "市");
    }
}

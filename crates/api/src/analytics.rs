//! Traffic analysis (话务分析) of an enterprise, or of one of its numbers, over whole
//! Asia/Shanghai days: `GET /api/v1/enterprises/{enterprise}/analytics`. The figures are
//! the store's day rollups of the range merged, with the CDRs the rollup job has not
//! folded yet (the last seconds') folded live, so they are exact to the last call
//! without reading the range's CDRs (`AnalyticsStore::analysis`); then one look for
//! which of the range's distinct callers called before it.

use std::str::FromStr;

use axum::Json;
use axum::extract::{Path, Query, State};
use jiff::civil::Date;
use serde::Deserialize;
use sihai_analytics::{DayRange, Report};
use sihai_store::StoreError;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::{Api, blocking};

/// The query: `from` and `to` (inclusive days, `YYYY-MM-DD`), `number` optional.
#[derive(Debug, Default, Deserialize)]
pub struct AnalyticsQuery {
    from: Option<String>,
    to: Option<String>,
    number: Option<String>,
}

fn day(name: &str, value: Option<&str>) -> Result<Date, ApiError> {
    let value = value.ok_or_else(|| {
        ApiError::BadRequest(format!("{name} is needed: a day such as 2026-03-01"))
    })?;
    Date::from_str(value).map_err(|_| {
        ApiError::BadRequest(format!(
            "{name} must be a day such as 2026-03-01, not {value:?}"
        ))
    })
}

impl AnalyticsQuery {
    fn range(&self) -> Result<DayRange, ApiError> {
        let first = day("from", self.from.as_deref())?;
        let last = day("to", self.to.as_deref())?;
        DayRange::new(first, last).map_err(|e| ApiError::BadRequest(e.to_string()))
    }
}

/// `GET /api/v1/enterprises/{enterprise}/analytics?from=YYYY-MM-DD&to=YYYY-MM-DD`.
#[utoipa::path(get, path = "/api/v1/enterprises/{enterprise}/analytics", tag = "records", params(
        ("enterprise" = String, Path, description = "The enterprise's id"),
        ("from" = String, Query, description = "The first day, YYYY-MM-DD (Asia/Shanghai)"),
        ("to" = String, Query, description = "The last day, inclusive; at most 366 days after from"),
        ("number" = Option<String>, Query, description = "Only calls to this 400 number"),
    ),
    responses((status = 200, description = "The range's figures: totals, answer rate, refusals by reason, talk and ring time, every day, every hour, weekday x hour, provinces, cities, new and returning callers, per phone, menu choices, cost", content_type = "application/json"),
        (status = 400, description = "A bad range", body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 404, description = "Not your enterprise", body = crate::error::ErrorBody)))]
pub async fn analytics(
    State(api): State<Api>,
    caller: Caller,
    Path(enterprise): Path<String>,
    Query(query): Query<AnalyticsQuery>,
) -> Result<Json<Report>, ApiError> {
    if !caller.sees(&enterprise) {
        return Err(ApiError::NotFound);
    }
    let range = query.range()?;
    let number = query
        .number
        .as_deref()
        .map(|n| sihai_routing::normalise_400(n).unwrap_or_else(|| n.to_owned()));
    let (rollups, cdrs) = (api.analytics.clone(), api.cdrs.clone());
    let report = blocking(move || -> Result<Report, StoreError> {
        let analysis = rollups.analysis(&enterprise, number.as_deref(), range)?;
        let callers: Vec<String> = analysis.callers().map(str::to_owned).collect();
        let returning = cdrs.callers_before(&enterprise, &callers, range.start())?;
        Ok(analysis.finish(&returning))
    })
    .await?;
    Ok(Json(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_is_checked() {
        let q = |from: Option<&str>, to: Option<&str>| AnalyticsQuery {
            from: from.map(str::to_owned),
            to: to.map(str::to_owned),
            number: None,
        };
        assert!(q(Some("2026-03-01"), Some("2026-03-31")).range().is_ok());
        for (from, to) in [
            (None, Some("2026-03-31")),
            (Some("2026-03-01"), None),
            (Some("March"), Some("2026-03-31")),
            (Some("2026-03-31"), Some("2026-03-01")),
            (Some("2025-01-01"), Some("2026-03-01")),
        ] {
            assert!(q(from, to).range().is_err(), "{from:?} {to:?}");
        }
    }
}

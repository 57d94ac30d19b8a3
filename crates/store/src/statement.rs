//! Printing the prepaid ledger for `sihai account ledger` and the monthly statement
//! (话费详单) for `sihai bill`: aligned tables for people, CSV for spreadsheets, with the
//! conventions of [`report`](crate::report) (Asia/Shanghai `YYYY-MM-DD HH:MM:SS`, amounts
//! as yuan with two decimals, `-` or an empty field for a missing value, RFC 4180 CSV
//! with CRLF line ends).
//!
//! Amounts are shown rounded to the fen; every sum is taken over the exact amounts
//! first, so a statement's totals reconcile to the unit, whatever the display shows.

use std::fmt::Write as _;

use jiff::Timestamp;

use crate::report::{csv, region, shanghai_time, table};
use crate::{
    Cdr, CdrFilter, CdrStore, EntryKind, KindTotal, LedgerEntry, LedgerQuery, LedgerStore,
    LedgerTotals, Money, StoreError,
};

/// The ledger's columns, in both headers.
pub const LEDGER_COLUMNS: [&str; 7] = [
    "time",
    "kind",
    "amount",
    "balance_after",
    "reference",
    "actor",
    "note",
];

/// The amount and balance_after columns, right-aligned in the table.
const LEDGER_RIGHT: [usize; 2] = [2, 3];

/// The entries in the order given (oldest first, as the store returns them) as a table.
pub fn format_ledger_table(entries: &[LedgerEntry]) -> String {
    table(&LEDGER_COLUMNS, &ledger_rows(entries), &LEDGER_RIGHT)
}

/// The entries in the order given as CSV, with a header line.
pub fn format_ledger_csv(entries: &[LedgerEntry]) -> String {
    csv(&LEDGER_COLUMNS, &ledger_rows(entries))
}

fn ledger_rows(entries: &[LedgerEntry]) -> Vec<Vec<String>> {
    entries
        .iter()
        .map(|e| {
            vec![
                shanghai_time(e.at),
                e.kind.to_string(),
                e.amount.to_string(),
                e.balance_after.to_string(),
                e.reference.clone(),
                e.actor.clone(),
                e.note.clone().unwrap_or_default(),
            ]
        })
        .collect()
}

/// The call lines' columns, in both the statement's table and its CSV header.
pub const CALL_COLUMNS: [&str; 7] = [
    "time",
    "caller",
    "caller_region",
    "number",
    "answered_by",
    "billed_seconds",
    "cost",
];

/// billed_seconds and cost, right-aligned in the table.
const CALL_RIGHT: [usize; 2] = [5, 6];

/// The entry kinds in the order a statement lists their totals.
const TOTALS_ORDER: [EntryKind; 6] = [
    EntryKind::CallCharge,
    EntryKind::Fee,
    EntryKind::MonthlyMinimum,
    EntryKind::SuspensionDayFee,
    EntryKind::Adjustment,
    EntryKind::Recharge,
];

/// One enterprise's account over one period (a month): what `sihai bill` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The enterprise's id.
    pub enterprise: String,
    /// Its display name (the id again when it is no longer configured).
    pub name: String,
    /// The period as shown, e.g. `2026-03`.
    pub period: String,
    /// The balance before the period: the `balance_after` of the last entry before it,
    /// or zero.
    pub opening: Money,
    /// The charged calls set up in the period (cost above zero), oldest first.
    pub calls: Vec<Cdr>,
    /// The period's ledger entries, oldest first (call charges included).
    pub entries: Vec<LedgerEntry>,
    /// The balance at the period's end: the `balance_after` of its last entry, or the
    /// opening balance.
    pub closing: Money,
}

/// Why a statement does not add up: opening plus the period's entries is not closing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the statement of {enterprise} for {period} does not reconcile: opening {} + entries {} \
     = {} but the closing balance is {}",
    opening.exact(), entries.exact(), expected.exact(), closing.exact()
)]
pub struct Unreconciled {
    pub enterprise: String,
    pub period: String,
    pub opening: Money,
    pub entries: Money,
    pub expected: Money,
    pub closing: Money,
}

impl Statement {
    /// Builds the statement from the `balance_before` the period (the last entry
    /// before it, if any), the period's entries (oldest first) and its calls (any
    /// order; those that cost nothing are left out), and checks that it reconciles:
    /// opening + the sum of the entries = closing, to the unit.
    pub fn new(
        enterprise: &str,
        name: &str,
        period: &str,
        balance_before: Option<&LedgerEntry>,
        entries: Vec<LedgerEntry>,
        calls: Vec<Cdr>,
    ) -> Result<Statement, Unreconciled> {
        let opening = balance_before.map_or(Money::ZERO, |e| e.balance_after);
        Statement::with_opening(enterprise, name, period, opening, entries, calls)
    }

    /// [`Statement::new`] from the `opening` balance itself (the `balance_after` of the
    /// last entry before the period, or zero).
    pub fn with_opening(
        enterprise: &str,
        name: &str,
        period: &str,
        opening: Money,
        entries: Vec<LedgerEntry>,
        calls: Vec<Cdr>,
    ) -> Result<Statement, Unreconciled> {
        let closing = entries.last().map_or(opening, |e| e.balance_after);
        let mut calls: Vec<Cdr> = calls
            .into_iter()
            .filter(|c| c.cost.is_some_and(|cost| cost > Money::ZERO))
            .collect();
        calls.sort_by_key(|c| c.setup_at);
        let statement = Statement {
            enterprise: enterprise.to_owned(),
            name: name.to_owned(),
            period: period.to_owned(),
            opening,
            calls,
            entries,
            closing,
        };
        let sum = statement.entries_sum();
        let expected = opening.saturating_add(sum);
        if expected != closing {
            return Err(Unreconciled {
                enterprise: enterprise.to_owned(),
                period: period.to_owned(),
                opening,
                entries: sum,
                expected,
                closing,
            });
        }
        Ok(statement)
    }

    /// The sum of the period's entries.
    pub fn entries_sum(&self) -> Money {
        self.entries
            .iter()
            .fold(Money::ZERO, |sum, e| sum.saturating_add(e.amount))
    }

    /// The sum of each kind of entry in the period, in the statement's order (call
    /// charges, fees, monthly minimum, suspended-day fees, adjustments, recharges);
    /// kinds without an entry are left out.
    pub fn totals(&self) -> Vec<(EntryKind, Money)> {
        TOTALS_ORDER
            .into_iter()
            .filter_map(|kind| {
                let mut of_kind = self.entries.iter().filter(|e| e.kind == kind).peekable();
                of_kind.peek()?;
                Some((
                    kind,
                    of_kind.fold(Money::ZERO, |sum, e| sum.saturating_add(e.amount)),
                ))
            })
            .collect()
    }

    /// The sum of the call lines' costs.
    pub fn calls_cost(&self) -> Money {
        self.calls.iter().fold(Money::ZERO, |sum, c| {
            sum.saturating_add(c.cost.unwrap_or_default())
        })
    }

    /// The entries other than call charges (those are the call lines), oldest first.
    pub fn other_entries(&self) -> impl Iterator<Item = &LedgerEntry> {
        self.entries
            .iter()
            .filter(|e| e.kind != EntryKind::CallCharge)
    }
}

/// CDRs read per query by [`read_statement`].
const READ_PAGE: usize = 2000;

/// Reads the statement of `enterprise` for `since <= t < until` from the stores: what
/// `sihai bill` prints and the admin API's statement download sends, so both follow one
/// set of rules. The opening balance is the store's (the last entry before the period);
/// the period's CDRs are read a page at a time and only the charged ones kept. The
/// outer error is the store's; the inner one a statement that does not reconcile.
pub fn read_statement(
    ledger: &dyn LedgerStore,
    cdrs: &dyn CdrStore,
    (enterprise, name, period): (&str, &str, &str),
    since: Timestamp,
    until: Timestamp,
) -> Result<Result<Statement, Unreconciled>, StoreError> {
    let opening = ledger.ledger_totals(enterprise, since, until)?.opening;
    let entries = ledger.ledger_entries(
        enterprise,
        &LedgerQuery {
            since: Some(since),
            until: Some(until),
            ..LedgerQuery::default()
        },
    )?;
    let mut charged = Vec::new();
    let mut filter = CdrFilter {
        enterprise: Some(enterprise.to_owned()),
        since: Some(since),
        until: Some(until),
        limit: READ_PAGE,
        ..CdrFilter::default()
    };
    loop {
        let page = cdrs.query(&filter)?;
        let next = match page.last() {
            Some(last) if page.len() == READ_PAGE => Some((last.setup_at, last.call_id.clone())),
            _ => None,
        };
        charged.extend(
            page.into_iter()
                .filter(|c| c.cost.is_some_and(|cost| cost > Money::ZERO)),
        );
        match next {
            Some(next) => filter.before = Some(next),
            None => break,
        }
    }
    Ok(Statement::with_opening(
        enterprise, name, period, opening, entries, charged,
    ))
}

/// A period's statement in figures, for any number of calls: what the API's bill
/// answers. The store counts the calls and sums the ledger ([`LedgerTotals`],
/// `CdrStore::charged_calls`), so a month of a million calls is read as a few numbers;
/// it reconciles exactly as [`Statement`] does and lists its totals in the same order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementSummary {
    pub enterprise: String,
    pub name: String,
    pub period: String,
    pub opening: Money,
    pub closing: Money,
    /// The charged calls set up in the period (cost above zero).
    pub calls: u64,
    /// What they cost.
    pub calls_cost: Money,
    /// Per kind with an entry in the period, in the statement's order.
    pub totals: Vec<KindTotal>,
    /// The period's entries other than call charges, oldest first.
    pub other_entries: Vec<LedgerEntry>,
}

impl StatementSummary {
    /// Builds the summary and checks that opening + the sum of the period's entries =
    /// closing, to the unit.
    pub fn new(
        enterprise: &str,
        name: &str,
        period: &str,
        ledger: LedgerTotals,
        (calls, calls_cost): (u64, Money),
        other_entries: Vec<LedgerEntry>,
    ) -> Result<StatementSummary, Unreconciled> {
        let totals: Vec<KindTotal> = TOTALS_ORDER
            .into_iter()
            .filter_map(|kind| ledger.by_kind.iter().find(|t| t.kind == kind).copied())
            .collect();
        let summary = StatementSummary {
            enterprise: enterprise.to_owned(),
            name: name.to_owned(),
            period: period.to_owned(),
            opening: ledger.opening,
            closing: ledger.closing,
            calls,
            calls_cost,
            totals,
            other_entries,
        };
        let sum = summary.entries_sum();
        let expected = summary.opening.saturating_add(sum);
        if expected != summary.closing || summary.totals.len() != ledger.by_kind.len() {
            return Err(Unreconciled {
                enterprise: enterprise.to_owned(),
                period: period.to_owned(),
                opening: summary.opening,
                entries: sum,
                expected,
                closing: summary.closing,
            });
        }
        Ok(summary)
    }

    /// The sum of the period's entries.
    pub fn entries_sum(&self) -> Money {
        self.totals
            .iter()
            .fold(Money::ZERO, |sum, t| sum.saturating_add(t.amount))
    }
}

fn call_rows(calls: &[Cdr]) -> Vec<Vec<String>> {
    calls
        .iter()
        .map(|c| {
            vec![
                shanghai_time(c.setup_at),
                c.caller.clone(),
                region(c),
                c.number.clone(),
                c.answered_by.clone().unwrap_or_default(),
                c.billed_seconds.to_string(),
                c.cost.map(|m| m.to_string()).unwrap_or_default(),
            ]
        })
        .collect()
}

/// The statement for people: a header (enterprise, period, opening balance), the call
/// lines, the other entries (fees, monthly minimum, suspended-day fees, adjustments,
/// recharges), the totals per kind and the closing balance.
pub fn format_statement(statement: &Statement) -> String {
    let s = statement;
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "话费详单 Statement");
    let _ = writeln!(out, "Enterprise:       {} ({})", s.name, s.enterprise);
    let _ = writeln!(out, "Month:            {} (Asia/Shanghai)", s.period);
    let _ = writeln!(out, "Opening balance:  {}", s.opening);
    let _ = writeln!(
        out,
        "\nCalls ({}, {} in all):",
        s.calls.len(),
        s.calls_cost()
    );
    if s.calls.is_empty() {
        out.push_str("  none\n");
    } else {
        out.push_str(&table(&CALL_COLUMNS, &call_rows(&s.calls), &CALL_RIGHT));
    }
    let others: Vec<LedgerEntry> = s.other_entries().cloned().collect();
    let _ = writeln!(
        out,
        "\nFees, monthly minimum, suspended-day fees, adjustments and recharges:"
    );
    if others.is_empty() {
        out.push_str("  none\n");
    } else {
        out.push_str(&format_ledger_table(&others));
    }
    out.push_str("\nTotals:\n");
    let totals = s.totals();
    let width = totals
        .iter()
        .map(|(kind, _)| kind.as_str().len())
        .chain([15])
        .max()
        .unwrap_or(15);
    let amounts: Vec<String> = totals
        .iter()
        .map(|(_, m)| m.to_string())
        .chain([s.opening.to_string(), s.closing.to_string()])
        .collect();
    let money_width = amounts.iter().map(String::len).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "  {:<width$}  {:>money_width$}",
        "opening balance", s.opening
    );
    for (kind, total) in &totals {
        let _ = writeln!(out, "  {:<width$}  {:>money_width$}", kind.as_str(), total);
    }
    let _ = writeln!(
        out,
        "  {:<width$}  {:>money_width$}",
        "closing balance", s.closing
    );
    out
}

/// The statement for spreadsheets: the call lines, with a header line ([`CALL_COLUMNS`]),
/// oldest first. The account's other entries are in `sihai account ledger --csv`.
pub fn format_statement_csv(statement: &Statement) -> String {
    csv(&CALL_COLUMNS, &call_rows(&statement.calls))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Outcome;
    use jiff::Timestamp;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn yuan(s: &str) -> Money {
        s.parse().unwrap()
    }

    fn entry(id: i64, kind: EntryKind, amount: &str, after: &str, at: &str) -> LedgerEntry {
        LedgerEntry {
            id,
            enterprise: "acme".into(),
            kind,
            amount: yuan(amount),
            reference: format!("ref-{id}"),
            at: ts(at),
            actor: "cli".into(),
            note: (kind == EntryKind::Adjustment).then(|| "goodwill, March".into()),
            balance_after: yuan(after),
        }
    }

    fn call(id: &str, setup: &str, cost: Option<&str>) -> Cdr {
        Cdr {
            call_id: id.into(),
            number: "4001234567".into(),
            enterprise: "acme".into(),
            caller: "13812345678".into(),
            caller_province: Some("广东".into()),
            caller_city: Some("深圳".into()),
            answered_by: Some("13900000001".into()),
            attempts: vec![],
            setup_at: ts(setup),
            ring_at: None,
            answer_at: Some(ts(setup)),
            end_at: ts(setup),
            talk_seconds: 61,
            outcome: Outcome::Answered,
            hangup_side: None,
            hangup_cause: None,
            recording: None,
            menu_path: None,
            announcement: None,
            billed_seconds: 120,
            cost: cost.map(yuan),
            tariff: cost.map(|_| "standard".into()),
            customer_id: None,
        }
    }

    #[test]
    fn ledger_table_and_csv_in_shanghai_time() {
        let entries = [
            entry(1, EntryKind::Recharge, "600", "600", "2026-03-01T02:00:00Z"),
            entry(
                2,
                EntryKind::Adjustment,
                "-12.5",
                "587.5",
                "2026-03-02T16:30:00Z",
            ),
        ];
        let table = format_ledger_table(&entries);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines,
            [
                "time                 kind        amount  balance_after  reference  actor  note",
                "-------------------  ----------  ------  -------------  ---------  -----  ---------------",
                "2026-03-01 10:00:00  recharge    600.00         600.00  ref-1      cli    -",
                "2026-03-03 00:30:00  adjustment  -12.50         587.50  ref-2      cli    goodwill, March",
            ],
            "\n{table}"
        );
        let csv = format_ledger_csv(&entries);
        assert_eq!(
            csv.split_terminator("\r\n").collect::<Vec<_>>(),
            [
                "time,kind,amount,balance_after,reference,actor,note",
                "2026-03-01 10:00:00,recharge,600.00,600.00,ref-1,cli,",
                "2026-03-03 00:30:00,adjustment,-12.50,587.50,ref-2,cli,\"goodwill, March\"",
            ]
        );
    }

    #[test]
    fn a_statement_reconciles_and_totals_each_kind() {
        let before = entry(1, EntryKind::Recharge, "100", "100", "2026-02-10T00:00:00Z");
        let entries = vec![
            entry(2, EntryKind::Recharge, "600", "700", "2026-03-01T02:00:00Z"),
            entry(
                3,
                EntryKind::CallCharge,
                "-0.6",
                "699.4",
                "2026-03-01T03:00:00Z",
            ),
            entry(
                4,
                EntryKind::CallCharge,
                "-0.0050",
                "699.395",
                "2026-03-02T03:00:00Z",
            ),
            entry(
                5,
                EntryKind::Adjustment,
                "-12",
                "687.395",
                "2026-03-03T03:00:00Z",
            ),
        ];
        let calls = vec![
            call("b", "2026-03-02T03:00:00Z", Some("0.0050")),
            call("a", "2026-03-01T03:00:00Z", Some("0.6")),
            call("free", "2026-03-01T04:00:00Z", Some("0")),
            call("unbilled", "2026-03-01T05:00:00Z", None),
        ];
        let s = Statement::new("acme", "Acme", "2026-03", Some(&before), entries, calls).unwrap();
        assert_eq!(s.opening, yuan("100"));
        assert_eq!(s.closing, yuan("687.395"));
        assert_eq!(s.opening.saturating_add(s.entries_sum()), s.closing);
        assert_eq!(
            s.calls
                .iter()
                .map(|c| c.call_id.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"],
            "charged calls only, oldest first"
        );
        assert_eq!(s.calls_cost(), yuan("0.605"));
        assert_eq!(
            s.totals(),
            [
                (EntryKind::CallCharge, yuan("-0.605")),
                (EntryKind::Adjustment, yuan("-12")),
                (EntryKind::Recharge, yuan("600")),
            ]
        );
        let text = format_statement(&s);
        assert!(text.contains("Enterprise:       Acme (acme)"), "{text}");
        assert!(text.contains("Opening balance:  100.00"), "{text}");
        assert!(text.contains("Calls (2, 0.61 in all):"), "{text}");
        assert!(text.contains("\n  call_charge       -0.61\n"), "{text}");
        assert!(text.ends_with("\n  closing balance  687.40\n"), "{text}");
        let csv = format_statement_csv(&s);
        assert_eq!(
            csv.split_terminator("\r\n").collect::<Vec<_>>(),
            [
                "time,caller,caller_region,number,answered_by,billed_seconds,cost",
                "2026-03-01 11:00:00,13812345678,广东 深圳,4001234567,13900000001,120,0.60",
                "2026-03-02 11:00:00,13812345678,广东 深圳,4001234567,13900000001,120,0.01",
            ]
        );
    }

    #[test]
    fn the_summary_of_a_period_says_what_its_full_statement_says() {
        let before = entry(1, EntryKind::Recharge, "100", "100", "2026-02-10T00:00:00Z");
        let entries = vec![
            entry(2, EntryKind::Recharge, "600", "700", "2026-03-01T02:00:00Z"),
            entry(
                3,
                EntryKind::CallCharge,
                "-0.6",
                "699.4",
                "2026-03-01T03:00:00Z",
            ),
            entry(4, EntryKind::Fee, "-10", "689.4", "2026-03-02T03:00:00Z"),
        ];
        let calls = vec![call("a", "2026-03-01T03:00:00Z", Some("0.6"))];
        let full = Statement::new(
            "acme",
            "Acme",
            "2026-03",
            Some(&before),
            entries.clone(),
            calls,
        )
        .unwrap();
        // The store's figures for the same period, in its own (any) order of kinds.
        let ledger = LedgerTotals {
            opening: yuan("100"),
            closing: yuan("689.4"),
            by_kind: vec![
                KindTotal {
                    kind: EntryKind::Fee,
                    entries: 1,
                    amount: yuan("-10"),
                },
                KindTotal {
                    kind: EntryKind::Recharge,
                    entries: 1,
                    amount: yuan("600"),
                },
                KindTotal {
                    kind: EntryKind::CallCharge,
                    entries: 1,
                    amount: yuan("-0.6"),
                },
            ],
        };
        let other: Vec<LedgerEntry> = full.other_entries().cloned().collect();
        let summary = StatementSummary::new(
            "acme",
            "Acme",
            "2026-03",
            ledger.clone(),
            (1, yuan("0.6")),
            other.clone(),
        )
        .unwrap();
        assert_eq!(
            (summary.opening, summary.closing),
            (full.opening, full.closing)
        );
        assert_eq!(summary.calls_cost, full.calls_cost());
        assert_eq!(summary.entries_sum(), full.entries_sum());
        assert_eq!(
            summary
                .totals
                .iter()
                .map(|t| (t.kind, t.amount))
                .collect::<Vec<_>>(),
            full.totals()
        );
        assert_eq!(summary.other_entries, other);
        // Figures that do not add up are refused, as a statement's are.
        let wrong = LedgerTotals {
            closing: yuan("689.5"),
            ..ledger
        };
        assert!(
            StatementSummary::new("acme", "Acme", "2026-03", wrong, (1, yuan("0.6")), other)
                .is_err()
        );
    }

    #[test]
    fn an_empty_month_opens_and_closes_at_the_last_balance() {
        let before = entry(1, EntryKind::Recharge, "600", "600", "2026-02-10T00:00:00Z");
        let s = Statement::new("acme", "Acme", "2026-03", Some(&before), vec![], vec![]).unwrap();
        assert_eq!((s.opening, s.closing), (yuan("600"), yuan("600")));
        assert!(s.totals().is_empty());
        let s = Statement::new("acme", "Acme", "2026-03", None, vec![], vec![]).unwrap();
        assert_eq!((s.opening, s.closing), (Money::ZERO, Money::ZERO));
    }

    #[test]
    fn a_gap_in_the_entries_is_refused() {
        let before = entry(1, EntryKind::Recharge, "600", "600", "2026-02-10T00:00:00Z");
        let entries = vec![entry(
            2,
            EntryKind::Fee,
            "-10",
            "580",
            "2026-03-01T02:00:00Z",
        )];
        let err =
            Statement::new("acme", "Acme", "2026-03", Some(&before), entries, vec![]).unwrap_err();
        assert_eq!(err.expected, yuan("590"));
        assert_eq!(err.closing, yuan("580"));
        assert!(err.to_string().contains("does not reconcile"), "{err}");
    }
}

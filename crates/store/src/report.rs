//! Printing CDRs for `sihai cdr`: an aligned table for people, CSV for spreadsheets.
//!
//! Both have the same columns, in this order: `number, caller, region, answered_by,
//! setup, ring, answer, end, talk_s, billed_seconds, cost, outcome, hangup, attempts,
//! recording, menu, announcement, customer_id`. Times are local time in
//! `Asia/Shanghai` (the service's time zone, whatever the machine's), as
//! `YYYY-MM-DD HH:MM:SS`; the table shortens ring, answer and end to `HH:MM:SS` when they
//! fall on the setup's date. `region` is "province city" (one name when they are the
//! same, as for 北京); `hangup` is "side cause" (e.g. `caller BYE`); `attempts` is
//! `phone:result` per phone tried, in order, separated by ", "; `recording` is the WAV
//! file of a recorded call; `menu` the voice-menu keys pressed; `announcement` the
//! prompt an unanswered caller heard before the release; `customer_id` the caller's id
//! in the enterprise's CRM, when its lookup gave one. `billed_seconds` is the talk
//! time the call was charged for (0 when not billed); `cost` what the enterprise's
//! prepaid account was charged, in yuan with two decimals (rounded to the fen; the
//! ledger keeps the exact amount), missing when the call was not billed (no tariff).
//!
//! Missing values print as `-` in the table and as empty fields in the CSV.

use std::sync::OnceLock;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use crate::Cdr;

/// The column names, as printed in both headers.
pub const COLUMNS: [&str; 18] = [
    "number",
    "caller",
    "region",
    "answered_by",
    "setup",
    "ring",
    "answer",
    "end",
    "talk_s",
    "billed_seconds",
    "cost",
    "outcome",
    "hangup",
    "attempts",
    "recording",
    "menu",
    "announcement",
    "customer_id",
];

/// The numeric columns (talk_s, billed_seconds, cost), right-aligned in the table.
const RIGHT_ALIGNED: [usize; 3] = [8, 9, 10];

/// An aligned text table: a header, a rule, one line per CDR, in the order given.
/// Columns are separated by two spaces; CJK characters count as two columns wide.
/// Lines end in `\n` and carry no trailing spaces.
pub fn format_table(cdrs: &[Cdr]) -> String {
    let rows: Vec<Vec<String>> = cdrs
        .iter()
        .map(|cdr| fields(cdr, Style::Table).into_iter().collect())
        .collect();
    table(&COLUMNS, &rows, &RIGHT_ALIGNED)
}

/// An aligned text table of `header` and `rows`: a header, a rule, one line per row.
/// Empty fields print as `-`; the columns whose indices are in `right` are aligned
/// right. Columns are separated by two spaces; CJK characters count as two columns.
/// Lines end in `\n` and carry no trailing spaces.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>], right: &[usize]) -> String {
    let header: Vec<String> = header.iter().map(|c| c.to_string()).collect();
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|f| {
                    if f.is_empty() {
                        "-".to_owned()
                    } else {
                        f.clone()
                    }
                })
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| display_width(h)).collect();
    for row in &rows {
        for (w, f) in widths.iter_mut().zip(row) {
            *w = (*w).max(display_width(f));
        }
    }
    let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();

    let mut out = String::new();
    for row in std::iter::once(&header)
        .chain(std::iter::once(&rule))
        .chain(&rows)
    {
        let mut line = String::new();
        for (i, (field, &width)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = " ".repeat(width - display_width(field));
            if right.contains(&i) {
                line.push_str(&pad);
                line.push_str(field);
            } else {
                line.push_str(field);
                line.push_str(&pad);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// RFC 4180 CSV: a header line, then one line per CDR in the order given, CRLF line
/// ends; fields with a comma, quote or line break are quoted, quotes doubled. UTF-8,
/// no byte-order mark (add one when writing a file for Excel).
pub fn format_csv(cdrs: &[Cdr]) -> String {
    let rows: Vec<Vec<String>> = cdrs
        .iter()
        .map(|cdr| fields(cdr, Style::Csv).into_iter().collect())
        .collect();
    csv(&COLUMNS, &rows)
}

/// RFC 4180 CSV of `header` and `rows` (see [`format_csv`]).
pub(crate) fn csv(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    csv_line(&mut out, header.iter().map(|c| c.to_string()));
    for row in rows {
        csv_line(&mut out, row.iter().cloned());
    }
    out
}

/// Appends one CSV line (CRLF-terminated) to `out`.
pub(crate) fn csv_line(out: &mut String, fields: impl Iterator<Item = String>) {
    for (i, f) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        if f.contains([',', '"', '\r', '\n']) {
            out.push('"');
            out.push_str(&f.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&f);
        }
    }
    out.push_str("\r\n");
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Table,
    Csv,
}

/// One CDR's fields, in [`COLUMNS`] order; empty when missing.
fn fields(cdr: &Cdr, style: Style) -> [String; 18] {
    let setup = local(cdr.setup_at);
    let later = |t: Option<Timestamp>| match t.map(local) {
        None => String::new(),
        Some(dt) if style == Style::Table && dt.date() == setup.date() => {
            dt.strftime("%H:%M:%S").to_string()
        }
        Some(dt) => full(dt),
    };
    let region = region(cdr);
    let hangup = match (cdr.hangup_side, cdr.hangup_cause.as_deref()) {
        (Some(s), Some(c)) => format!("{s} {c}"),
        (Some(s), None) => s.to_string(),
        (None, Some(c)) => c.to_owned(),
        (None, None) => String::new(),
    };
    let attempts = cdr
        .attempts
        .iter()
        .map(|a| format!("{}:{}", a.phone, a.result))
        .collect::<Vec<_>>()
        .join(", ");
    [
        cdr.number.clone(),
        cdr.caller.clone(),
        region,
        cdr.answered_by.clone().unwrap_or_default(),
        full(setup),
        later(cdr.ring_at),
        later(cdr.answer_at),
        later(Some(cdr.end_at)),
        cdr.talk_seconds.to_string(),
        cdr.billed_seconds.to_string(),
        cdr.cost.map(|c| c.to_string()).unwrap_or_default(),
        cdr.outcome.to_string(),
        hangup,
        attempts,
        cdr.recording.clone().unwrap_or_default(),
        cdr.menu_path.clone().unwrap_or_default(),
        cdr.announcement.clone().unwrap_or_default(),
        cdr.customer_id.clone().unwrap_or_default(),
    ]
}

/// The caller's region: "province city", one name when they are the same (北京).
pub(crate) fn region(cdr: &Cdr) -> String {
    match (cdr.caller_province.as_deref(), cdr.caller_city.as_deref()) {
        (Some(p), Some(c)) if p == c => p.to_owned(),
        (Some(p), Some(c)) => format!("{p} {c}"),
        (Some(x), None) | (None, Some(x)) => x.to_owned(),
        (None, None) => String::new(),
    }
}

/// `t` in Asia/Shanghai as `YYYY-MM-DD HH:MM:SS`.
pub fn shanghai_time(t: Timestamp) -> String {
    full(local(t))
}

fn full(dt: DateTime) -> String {
    dt.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// `t` as Asia/Shanghai wall-clock time.
fn local(t: Timestamp) -> DateTime {
    china_time_zone().to_datetime(t)
}

/// Asia/Shanghai from the system's tz database, or UTC+8 (China has not observed DST
/// since 1991) where there is none.
fn china_time_zone() -> &'static TimeZone {
    static TZ: OnceLock<TimeZone> = OnceLock::new();
    TZ.get_or_init(|| {
        TimeZone::get("Asia/Shanghai").unwrap_or_else(|_| TimeZone::fixed(jiff::tz::offset(8)))
    })
}

/// Terminal columns `s` takes: 2 for East Asian wide and fullwidth characters, else 1.
fn display_width(s: &str) -> usize {
    s.chars().map(|c| if is_wide(c) { 2 } else { 1 }).sum()
}

fn is_wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x20000..=0x3FFFD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HangupSide, Outcome, PhoneAttempt};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn answered() -> Cdr {
        Cdr {
            call_id: "c1".into(),
            number: "4001234567".into(),
            enterprise: "acme".into(),
            caller: "13812345678".into(),
            caller_province: Some("广东".into()),
            caller_city: Some("深圳".into()),
            answered_by: Some("13900000002".into()),
            attempts: vec![
                PhoneAttempt {
                    phone: "13900000001".into(),
                    result: "busy".into(),
                },
                PhoneAttempt {
                    phone: "13900000002".into(),
                    result: "answered".into(),
                },
            ],
            // 2026-03-02 09:59:58 in Shanghai.
            setup_at: ts("2026-03-02T01:59:58Z"),
            ring_at: Some(ts("2026-03-02T01:59:59Z")),
            answer_at: Some(ts("2026-03-02T02:00:05Z")),
            end_at: ts("2026-03-02T02:01:10Z"),
            talk_seconds: 65,
            outcome: Outcome::Answered,
            hangup_side: Some(HangupSide::Caller),
            hangup_cause: Some("BYE".into()),
            recording: None,
            menu_path: Some("1>3".into()),
            announcement: None,
            billed_seconds: 65,
            // ¥0.325 shows as 0.33: rounded half away from zero to the fen.
            cost: Some("0.325".parse().unwrap()),
            tariff: Some("standard".into()),
            customer_id: Some("C1024".into()),
        }
    }

    fn missed() -> Cdr {
        Cdr {
            call_id: "c2".into(),
            caller: "anonymous".into(),
            customer_id: None,
            caller_province: Some("北京".into()),
            caller_city: Some("北京".into()),
            answered_by: None,
            attempts: vec![],
            // 23:59:50 in Shanghai, ending after midnight.
            setup_at: ts("2026-03-02T15:59:50Z"),
            ring_at: None,
            answer_at: None,
            end_at: ts("2026-03-02T16:00:20Z"),
            talk_seconds: 0,
            outcome: Outcome::NoAnswer,
            hangup_side: None,
            hangup_cause: Some("timeout, \"all\"".into()),
            recording: None,
            menu_path: None,
            announcement: Some("no-answer".into()),
            billed_seconds: 0,
            cost: None,
            tariff: None,
            ..answered()
        }
    }

    #[test]
    fn table_aligns_columns_in_shanghai_time() {
        let table = format_table(&[answered(), missed()]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        let expected = [
            "number      caller       region     answered_by  setup                ring      answer    end                  talk_s  billed_seconds  cost  outcome    hangup          attempts                                recording  menu  announcement  customer_id",
            "----------  -----------  ---------  -----------  -------------------  --------  --------  -------------------  ------  --------------  ----  ---------  --------------  --------------------------------------  ---------  ----  ------------  -----------",
            "4001234567  13812345678  广东 深圳  13900000002  2026-03-02 09:59:58  09:59:59  10:00:05  10:01:10                 65              65  0.33  answered   caller BYE      13900000001:busy, 13900000002:answered  -          1>3   -             C1024",
            "4001234567  anonymous    北京       -            2026-03-02 23:59:50  -         -         2026-03-03 00:00:20       0               0     -  no_answer  timeout, \"all\"  -                                       -          -     no-answer     -",
        ];
        assert_eq!(lines, expected, "\n{table}");
        assert!(table.lines().all(|l| l == l.trim_end()));
    }

    #[test]
    fn empty_table_is_just_the_header() {
        assert_eq!(format_table(&[]).lines().count(), 2);
    }

    #[test]
    fn csv_quotes_and_uses_full_times() {
        let csv = format_csv(&[answered(), missed()]);
        let lines: Vec<&str> = csv.split_terminator("\r\n").collect();
        assert_eq!(
            lines,
            [
                "number,caller,region,answered_by,setup,ring,answer,end,talk_s,billed_seconds,cost,\
                 outcome,hangup,attempts,recording,menu,announcement,customer_id",
                "4001234567,13812345678,广东 深圳,13900000002,2026-03-02 09:59:58,2026-03-02 09:59:59,\
                 2026-03-02 10:00:05,2026-03-02 10:01:10,65,65,0.33,answered,caller BYE,\
                 \"13900000001:busy, 13900000002:answered\",,1>3,,C1024",
                "4001234567,anonymous,北京,,2026-03-02 23:59:50,,,2026-03-03 00:00:20,0,0,,no_answer,\
                 \"timeout, \"\"all\"\"\",,,,no-answer,",
            ]
        );
        assert!(csv.ends_with("\r\n"));
    }

    #[test]
    fn wide_characters_count_double() {
        assert_eq!(display_width("广东 深圳"), 9);
        assert_eq!(display_width("abc"), 3);
    }
}

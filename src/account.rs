//! `sihai account …` and `sihai bill`: the prepaid accounts, from the store the
//! configuration names. They may run while the daemon runs (SQLite in WAL mode; the
//! daemon notices a recharge made here at its next reservation).

use std::path::Path;

use anyhow::{Context, anyhow, bail};
use jiff::Timestamp;
use sihai_billing::Month;
use sihai_config::{Config, Enterprise};
use sihai_server::billing::{MonthEnds, Standing, review_account, standings};
use sihai_server::payments::{Payment, PaymentError, PaymentKind, post_payment};
use sihai_store::statement;
use sihai_store::{Account, Money, Store};

/// Who the entries posted from the command line are by.
const ACTOR: &str = "cli";

/// The configuration and its store, opened for one command.
pub struct Books {
    pub config: Config,
    pub store: std::sync::Arc<dyn Store>,
}

impl Books {
    /// The configuration as the daemon runs it: node settings from the file, tenant
    /// data from the store (the file's tenant sections synced to it first, as the
    /// daemon would at start).
    pub fn open(path: &Path) -> anyhow::Result<Books> {
        let file = Config::load(path).map_err(|errors| anyhow!("{errors}"))?;
        let store = crate::open_store(&file.store)?;
        let (config, _, _) =
            sihai_server::tenant::prepare(&*store, path, None).with_context(|| {
                format!(
                    "assembling the configuration from {} and the store",
                    path.display()
                )
            })?;
        Ok(Books { config, store })
    }

    /// Commits whatever is queued (alerts a review queued) and stops the writer.
    pub fn close(self) -> anyhow::Result<()> {
        self.store.flush().context("committing to the store")
    }

    /// The enterprise as configured and its account, opening the account of a billed
    /// enterprise that has none yet (as the daemon does at start). An error for an
    /// enterprise that is neither configured nor has an account, or that is configured
    /// but not billed and has no account.
    fn account(&self, id: &str) -> anyhow::Result<(Option<&Enterprise>, Account)> {
        let enterprise = self.config.enterprise(id);
        if enterprise.is_some_and(|e| e.billing.is_some()) {
            let account = self
                .store
                .open_account(id, Timestamp::now())
                .with_context(|| format!("opening the account of {id}"))?;
            return Ok((enterprise, account));
        }
        match self.store.account(id).context("reading the account")? {
            Some(account) => Ok((enterprise, account)),
            None if enterprise.is_some() => bail!(
                "enterprise {id:?} has no prepaid account: it is not billed by sihai (no \
                 `tariff` in its [[enterprise]])"
            ),
            None => bail!("unknown enterprise {id:?}: not in the configuration and no account"),
        }
    }
}

/// `sihai account list`.
pub fn list(books: &Books, json: bool) -> anyhow::Result<()> {
    let standings = standings(&*books.store, &books.config, Timestamp::now())
        .context("reading the accounts")?;
    if json {
        let values: Vec<serde_json::Value> = standings.iter().map(account_json).collect();
        println!("{}", serde_json::to_string_pretty(&values)?);
        return Ok(());
    }
    let mut out = String::new();
    let header = [
        "enterprise",
        "status",
        "balance",
        "reserved",
        "available",
        "low_balance",
    ];
    let rows: Vec<[String; 6]> = standings
        .iter()
        .map(|Standing { account: a, .. }| {
            [
                a.enterprise.clone(),
                a.status.to_string(),
                a.balance.to_string(),
                a.reserved.to_string(),
                a.available().to_string(),
                if a.low_balance_warned { "warned" } else { "-" }.to_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, f) in widths.iter_mut().zip(row) {
            *w = (*w).max(f.chars().count());
        }
    }
    let rule = widths.map(|w| "-".repeat(w));
    let header = header.map(str::to_owned);
    for row in [&header, &rule].into_iter().chain(&rows) {
        let line = format!(
            "{:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {:>w4$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4],
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    print!("{out}");
    Ok(())
}

/// The JSON of `account show` (and each element of `account list --json`): amounts as
/// decimal yuan strings with two decimals, times as RFC 3339, the policy figures a
/// customer cares about (null when the enterprise is no longer billed), and when the
/// account is reclaimed if its balance stays below zero.
fn account_json(standing: &Standing) -> serde_json::Value {
    let account = &standing.account;
    let enterprise = standing.enterprise.as_ref();
    let billing = standing.billing();
    let policy = billing.map(|b| &b.policy);
    let money = |m: Option<Money>| m.map(|m| m.to_string());
    serde_json::json!({
        "enterprise": account.enterprise,
        "name": enterprise.map(|e| e.name.clone()),
        "enterprise_suspended": enterprise.is_some_and(|e| e.suspended),
        "tariff": billing.map(|b| b.tariff.name().to_owned()),
        "balance": account.balance.to_string(),
        "reserved": account.reserved.to_string(),
        "available": account.available().to_string(),
        "status": account.status.as_str(),
        "status_since": account.status_since.to_string(),
        "negative": standing.negative,
        "negative_since": account.negative_since.map(|t| t.to_string()),
        "reclaim_at": standing.reclaim_at.map(|t| t.to_string()),
        "days_until_reclaim": standing.days_until_reclaim,
        "low_balance_warned": account.low_balance_warned,
        "opened_at": account.opened_at.to_string(),
        "min_balance": money(policy.map(|p| p.min_balance)),
        "suspend_below": money(policy.map(|p| p.suspend_below)),
        "low_balance_warning": money(policy.map(|p| p.low_balance_warning)),
        "min_recharge": money(policy.map(|p| p.min_recharge)),
        "monthly_minimum": money(policy.map(|p| p.monthly_minimum)),
        "suspended_daily_fee": money(policy.map(|p| p.suspended_daily_fee)),
        "reclaim_after_days": policy.map(|p| p.reclaim_after_days),
    })
}

/// `sihai account show`.
pub fn show(books: &Books, id: &str, json: bool) -> anyhow::Result<()> {
    let (enterprise, account) = books.account(id)?;
    let value = account_json(&Standing::new(account, enterprise, Timestamp::now()));
    if json {
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    let serde_json::Value::Object(fields) = value else {
        return Ok(());
    };
    let width = fields.keys().map(String::len).max().unwrap_or(0);
    for (key, value) in fields {
        let text = match value {
            serde_json::Value::Null => "-".to_owned(),
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        println!("{key:<width$}  {text}");
    }
    Ok(())
}

/// `sihai account recharge`.
pub fn recharge(
    books: &Books,
    id: &str,
    amount: Money,
    reference: &str,
    note: Option<String>,
    force: bool,
) -> anyhow::Result<()> {
    post(
        books,
        id,
        PaymentKind::Recharge { force },
        amount,
        reference,
        note,
    )
}

/// `sihai account adjust`.
pub fn adjust(
    books: &Books,
    id: &str,
    amount: Money,
    reference: &str,
    note: String,
) -> anyhow::Result<()> {
    post(
        books,
        id,
        PaymentKind::Adjustment,
        amount,
        reference,
        Some(note),
    )
}

/// `sihai account restore`: a reclaimed account becomes active again, as of now; the
/// review that follows suspends it at once if its balance is still below the
/// threshold (so its numbers answer the suspended announcement, not `404`, until paid).
pub fn restore(books: &Books, id: &str) -> anyhow::Result<()> {
    let (_, account) = books.account(id)?;
    if account.status != sihai_store::AccountStatus::Reclaimed {
        bail!(
            "{id} is {}, not reclaimed: nothing to restore",
            account.status
        );
    }
    let now = Timestamp::now();
    books
        .store
        .set_status(id, sihai_store::AccountStatus::Active, now)
        .context("restoring the account")?;
    println!("{id}: restored");
    review_and_show(books, id, now)
}

/// Posts the payment through the rules every door shares (`sihai_server::payments`),
/// which review the account after it (a suspended account above its threshold resumes
/// at once), and prints what was done and where the account stands.
fn post(
    books: &Books,
    id: &str,
    kind: PaymentKind,
    amount: Money,
    reference: &str,
    note: Option<String>,
) -> anyhow::Result<()> {
    let payment = Payment {
        enterprise: id.to_owned(),
        kind,
        amount,
        reference: reference.to_owned(),
        note,
        actor: ACTOR.to_owned(),
        at: Timestamp::now(),
    };
    let receipt = post_payment(&*books.store, &*books.store, &books.config, payment).map_err(
        |err| match &err {
            // What to do about it, in the command line's terms.
            PaymentError::BelowMinimum { .. } => anyhow!(
                "{err}; pass --force to post it anyway (for a correction, use `sihai account \
                 adjust`)"
            ),
            PaymentError::NoteRequired => anyhow!("an adjustment needs a --note saying why"),
            PaymentError::EmptyReference(kind) => {
                anyhow!("--ref must not be empty: it is what makes posting the {kind} idempotent")
            }
            _ => anyhow::Error::new(err),
        },
    )?;
    let entry = &receipt.entry;
    let kind = entry.kind;
    if receipt.new {
        println!(
            "posted {kind} {} to {id} (ref {reference}): balance {}",
            entry.amount.exact(),
            entry.balance_after
        );
    } else {
        println!(
            "already posted: {kind} {} to {id} (ref {reference}) at {} by {}; nothing changed",
            entry.amount.exact(),
            sihai_store::report::shanghai_time(entry.at),
            entry.actor
        );
    }
    for line in &receipt.reviewed {
        println!("{line}");
    }
    let account = &receipt.account;
    println!(
        "{id}: {}, balance {}, available {}",
        account.status,
        account.balance,
        account.available()
    );
    Ok(())
}

/// Reviews the account as the daemon would (fees, month-end minimum, suspension or
/// resumption) and prints what was done and where the account stands.
fn review_and_show(books: &Books, id: &str, now: Timestamp) -> anyhow::Result<()> {
    let done = review_account(
        &*books.store,
        &*books.store,
        &books.config,
        id,
        now,
        &mut MonthEnds::default(),
    )
    .with_context(|| format!("reviewing the account of {id}"))?;
    for line in done {
        println!("{line}");
    }
    if let Some(account) = books.store.account(id).context("reading the account")? {
        println!(
            "{id}: {}, balance {}, available {}",
            account.status,
            account.balance,
            account.available()
        );
    }
    Ok(())
}

/// `sihai account ledger`.
pub fn ledger(books: &Books, id: &str, month: Option<Month>, csv: bool) -> anyhow::Result<()> {
    books.account(id)?;
    let entries = books
        .store
        .ledger(id, month.map(Month::start), month.map(Month::end))
        .context("reading the ledger")?;
    let text = if csv {
        statement::format_ledger_csv(&entries)
    } else {
        statement::format_ledger_table(&entries)
    };
    print!("{text}");
    Ok(())
}

/// `sihai account verify`: true when the books are clean.
pub fn verify(books: &Books) -> anyhow::Result<bool> {
    let found = books.store.verify().context("verifying the ledger")?;
    if !found.is_empty() {
        for discrepancy in &found {
            println!("{discrepancy}");
        }
        println!("{} discrepancies", found.len());
        return Ok(false);
    }
    let accounts = books.store.accounts().context("reading the accounts")?;
    let mut entries = 0;
    for account in &accounts {
        entries += books
            .store
            .ledger(&account.enterprise, None, None)
            .context("reading the ledger")?
            .len();
    }
    println!("ok: {} accounts, {entries} entries", accounts.len());
    Ok(true)
}

/// `sihai bill`: the statement as [`statement::read_statement`] reads it (the admin
/// API's statement download reads it the same way).
pub fn bill(books: &Books, id: &str, month: Month, csv: bool) -> anyhow::Result<()> {
    let (enterprise, _) = books.account(id)?;
    let name = enterprise.map_or(id, |e| e.name.as_str());
    let statement = statement::read_statement(
        &*books.store,
        &*books.store,
        (id, name, &month.to_string()),
        month.start(),
        month.end(),
    )
    .context("reading the month's ledger and CDRs")??;
    let text = if csv {
        statement::format_statement_csv(&statement)
    } else {
        statement::format_statement(&statement)
    };
    print!("{text}");
    Ok(())
}

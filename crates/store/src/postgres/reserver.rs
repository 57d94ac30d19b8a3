//! Reservations asked by the event loop ([`LedgerStore::reserve_then`]), committed in
//! groups.
//!
//! Each reservation is one conditional statement (`RESERVE_SQL`: the account's row
//! lock, `UPDATE … RETURNING`), and committing it durably costs the database a WAL
//! flush. One transaction per reservation makes every reservation of one enterprise wait
//! for the previous one's flush (they queue on the account's row lock), so a node's
//! billed calls per second were bound by the disk's flush latency: about a thousand on
//! the benchmark machine. Here the statements of the reservations that arrive while a
//! group commits are run, pipelined, in the next group's transaction: the same
//! statements, the same atomicity per reservation, one flush per group. A caller waits
//! at most for the group ahead of it and its own.
//!
//! [`LedgerStore::reserve_then`]: crate::LedgerStore::reserve_then

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::try_join_all;
use tokio::sync::{Semaphore, mpsc};
use tokio_postgres::types::ToSql;

use super::ledger::{RESERVE_SQL, refusal_of, reserve as reserve_one};
use super::{Shared, dup_error, is_transient};
use crate::StoreError;
use sihai_records::{Money, ReservationOutcome, ReservationRequest};

/// What the event loop is told.
pub(crate) type Answer = Box<dyn FnOnce(Result<ReservationOutcome, StoreError>) + Send>;

/// The most reservations in one transaction.
const MAX_GROUP: usize = 256;

/// Groups committing at once: groups of different enterprises do not wait for each
/// other's flushes; groups of one enterprise queue on its row lock either way.
const CONCURRENT_GROUPS: usize = 4;

/// A group PostgreSQL aborted for a concurrent transaction's sake (a deadlock) is run
/// again this many times before each reservation is tried alone.
const GROUP_RETRIES: usize = 3;

const CONTEXT: &str = "reserving balance for calls";

struct Pending {
    request: ReservationRequest,
    answer: Answer,
}

/// The handle the store submits reservations to.
pub(crate) struct Reserver {
    tx: mpsc::UnboundedSender<Pending>,
}

impl Reserver {
    /// Starts the grouping task on the store's runtime.
    pub(crate) fn start(shared: &Arc<Shared>, handle: &tokio::runtime::Handle) -> Reserver {
        let (tx, rx) = mpsc::unbounded_channel();
        handle.spawn(run(Arc::clone(shared), rx));
        Reserver { tx }
    }

    /// Queues `request`; `answer` is called from the store's runtime with its outcome,
    /// within the store's connect timeout.
    pub(crate) fn submit(
        &self,
        request: ReservationRequest,
        answer: Answer,
        path: &std::path::Path,
    ) {
        if let Err(lost) = self.tx.send(Pending { request, answer }) {
            // The store is closing: nothing will answer otherwise.
            (lost.0.answer)(Err(StoreError::WriterStopped {
                path: path.to_path_buf(),
            }));
        }
    }
}

async fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let groups = Arc::new(Semaphore::new(CONCURRENT_GROUPS));
    loop {
        // Wait for a free slot first: what arrives meanwhile joins the next group.
        let Ok(permit) = Arc::clone(&groups).acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(more) => group.push(more),
                Err(_) => break,
            }
        }
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            commit_group(&shared, group).await;
            drop(permit);
        });
    }
}

/// Commits `group` in one transaction and answers each; on a failure that is not the
/// database's absence, each reservation is tried alone, so that one bad request never
/// refuses the others.
async fn commit_group(shared: &Shared, mut group: Vec<Pending>) {
    // Accounts are locked in one order by every writer (the CDR batches sort the same
    // way): two transactions never wait for each other in a cycle.
    group.sort_by(|a, b| a.request.enterprise.cmp(&b.request.enterprise));
    let timeout = shared.options.connect_timeout;
    let mut tries = 0;
    let outcome = loop {
        let requests: Vec<&ReservationRequest> = group.iter().map(|p| &p.request).collect();
        match tokio::time::timeout(timeout, in_one_transaction(shared, &requests)).await {
            Ok(Err(e)) if is_transient(&e) && tries < GROUP_RETRIES => tries += 1,
            other => break other,
        }
    };
    match outcome {
        Ok(Ok(outcomes)) => {
            for (pending, outcome) in group.into_iter().zip(outcomes) {
                (pending.answer)(Ok(outcome));
            }
        }
        Ok(Err(e)) if group.len() > 1 && !matches!(e, StoreError::Unreachable { .. }) => {
            tracing::warn!(error = %e, reservations = group.len(),
                "a group of reservations failed; trying each alone");
            for pending in group {
                let result =
                    tokio::time::timeout(timeout, reserve_one(shared, &pending.request)).await;
                (pending.answer)(result.unwrap_or_else(|_| Err(no_answer(shared, timeout))));
            }
        }
        Ok(Err(e)) => {
            for pending in group {
                (pending.answer)(Err(dup_error(&e)));
            }
        }
        Err(_) => {
            for pending in group {
                (pending.answer)(Err(no_answer(shared, timeout)));
            }
        }
    }
}

/// Every request's statement, pipelined in one transaction, then the refusals' reasons,
/// then one commit.
async fn in_one_transaction(
    shared: &Shared,
    requests: &[&ReservationRequest],
) -> Result<Vec<ReservationOutcome>, StoreError> {
    let err = shared.err(CONTEXT);
    let mut client = shared.client(CONTEXT).await?;
    let tx = client.transaction().await.map_err(&err)?;
    let st = tx.prepare_cached(RESERVE_SQL).await.map_err(&err)?;
    struct Args {
        want: i64,
        floor: Option<i64>,
        setup_at: i64,
        answered_at: Option<i64>,
    }
    let args: Vec<Args> = requests
        .iter()
        .map(|r| Args {
            want: r.want.units().max(0),
            floor: r.floor.map(|f| f.units()),
            setup_at: r.recovery.setup_at.as_microsecond(),
            answered_at: r.recovery.answered_at.map(|t| t.as_microsecond()),
        })
        .collect();
    let params: Vec<[&(dyn ToSql + Sync); 12]> = requests
        .iter()
        .zip(&args)
        .map(|(r, a)| {
            let rec = &r.recovery;
            [
                &r.call_id as &(dyn ToSql + Sync),
                &r.enterprise,
                &a.want,
                &a.floor,
                &rec.number,
                &rec.caller,
                &rec.caller_province,
                &rec.caller_city,
                &rec.tariff,
                &a.setup_at,
                &a.answered_at,
                &shared.node,
            ]
        })
        .collect();
    let rows = try_join_all(params.iter().map(|p| tx.query_opt(&st, p)))
        .await
        .map_err(&err)?;
    // The refusals' reasons, from the accounts as this transaction sees them.
    let refused: Vec<&str> = requests
        .iter()
        .zip(&rows)
        .filter(|(_, row)| row.is_none())
        .map(|(r, _)| r.enterprise.as_str())
        .collect();
    let mut statuses: HashMap<String, String> = HashMap::new();
    if !refused.is_empty() {
        for row in tx
            .query(
                "SELECT enterprise, status FROM account WHERE enterprise = ANY($1)",
                &[&refused],
            )
            .await
            .map_err(&err)?
        {
            let enterprise: String = row.try_get(0).map_err(&err)?;
            let status: String = row.try_get(1).map_err(&err)?;
            statuses.insert(enterprise, status);
        }
    }
    tx.commit().await.map_err(&err)?;
    requests
        .iter()
        .zip(rows)
        .map(|(r, row)| match row {
            Some(row) => {
                let corrupt =
                    |d| shared.corrupt("reservation", 0, format!("call {:?}: {d}", r.call_id));
                let granted: i64 = row.try_get(0).map_err(|e| corrupt(e.to_string()))?;
                let held: i64 = row.try_get(1).map_err(|e| corrupt(e.to_string()))?;
                Ok(ReservationOutcome::Granted {
                    granted: Money::from_units(granted),
                    held: Money::from_units(held),
                })
            }
            None => refusal_of(shared, &r.enterprise, statuses.get(&r.enterprise))
                .map(ReservationOutcome::Refused),
        })
        .collect()
}

fn no_answer(shared: &Shared, timeout: Duration) -> StoreError {
    StoreError::Unreachable {
        path: shared.path.clone(),
        context: CONTEXT,
        detail: format!("no answer within {} ms", timeout.as_millis()),
    }
}

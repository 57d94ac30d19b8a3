//! [`TenantStore`] for [`PgStore`], and the listener that pushes other nodes' changes.
//!
//! `apply_tenant` is one transaction on a pooled connection. Where SQLite relies on its
//! single write lock, this one starts with `SELECT … FROM tenant_meta … FOR UPDATE`:
//! editors on every node queue on that row, so the stale check, the writes and the
//! revision bump of one change never interleave with another's (and revisions commit
//! in order). The same transaction notifies `sihai_tenant` with the new revision, so
//! the notification is sent exactly when (and only if) the change commits.
//!
//! [`TenantStore::tenant_changes`] starts, once per store, a task on the store's runtime
//! holding a connection of its own (a `LISTEN` lasts as long as its session, so it
//! cannot be a pooled one) that forwards each notified revision to a `watch` channel,
//! and reconnects with backoff when the connection breaks.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_postgres::{AsyncMessage, IsolationLevel, NoTls};

use super::{PgStore, Shared};
use crate::{Applied, StoreError, StoredEntry, TenantChange, TenantData, TenantEntry, TenantStore};

/// The channel `apply_tenant` notifies and the listener listens on.
const CHANNEL: &str = "sihai_tenant";

/// What a key of a change should become: `None` is deleted.
type Wanted = Option<(Option<String>, String)>;
/// An entry's (section, key).
type Key = (String, String);
/// A stored entry's owner, body and revision.
type Stored = (Option<String>, String, i64);
/// What a write replaces: the stored entry's owner and body.
type Replaced = (Option<String>, String);

/// `tenant_meta.revision` as `client` sees it; `lock` takes the row for the rest of the
/// transaction (the editors' queue).
async fn read_revision(
    shared: &Shared,
    client: &impl deadpool_postgres::GenericClient,
    context: &'static str,
    lock: bool,
) -> Result<i64, StoreError> {
    let sql = if lock {
        "SELECT revision FROM tenant_meta WHERE id = 1 FOR UPDATE"
    } else {
        "SELECT revision FROM tenant_meta WHERE id = 1"
    };
    let st = client
        .prepare_cached(sql)
        .await
        .map_err(shared.err(context))?;
    let row = client
        .query_opt(&st, &[])
        .await
        .map_err(shared.err(context))?
        .ok_or_else(|| shared.corrupt("tenant_meta", 1, "the row is missing".to_owned()))?;
    row.try_get(0)
        .map_err(|e| shared.corrupt("tenant_meta", 1, format!("revision: {e}")))
}

async fn apply(shared: Arc<Shared>, change: TenantChange) -> Result<Applied, StoreError> {
    const CONTEXT: &str = "applying a tenant change";
    let err = shared.err(CONTEXT);
    let mut client = shared.client(CONTEXT).await?;
    let tx = client.transaction().await.map_err(&err)?;
    // First: every editor of every node waits here for the one before it to commit.
    let current = read_revision(&shared, &tx, CONTEXT, true).await?;

    // Each key once: the last upsert counts, a removal wins. Written in the order the
    // change gives them, so that new entries keep it (their `position`).
    let mut order: BTreeMap<Key, usize> = BTreeMap::new();
    let mut wanted: BTreeMap<Key, Wanted> = BTreeMap::new();
    for (i, e) in change.upserts.into_iter().enumerate() {
        order.entry((e.section.clone(), e.key.clone())).or_insert(i);
        wanted.insert((e.section, e.key), Some((e.enterprise, e.body)));
    }
    for key in change.removals {
        wanted.insert(key, None);
    }

    // The stored rows of the keys touched, in one round trip.
    let (sections, keys): (Vec<&str>, Vec<&str>) =
        wanted.keys().map(|(s, k)| (s.as_str(), k.as_str())).unzip();
    let st = tx
        .prepare_cached(
            "SELECT e.section, e.key, e.enterprise, e.body, e.revision
             FROM tenant_entry e
             JOIN unnest($1::text[], $2::text[]) AS w (section, key)
               ON e.section = w.section AND e.key = w.key",
        )
        .await
        .map_err(&err)?;
    let mut stored: HashMap<Key, Stored> = HashMap::new();
    for row in tx.query(&st, &[&sections, &keys]).await.map_err(&err)? {
        let decoded = (|| -> Result<(Key, Stored), tokio_postgres::Error> {
            Ok((
                (row.try_get(0)?, row.try_get(1)?),
                (row.try_get(2)?, row.try_get(3)?, row.try_get(4)?),
            ))
        })();
        // tenant_entry has no row id in PostgreSQL (its key is (section, key)): 0,
        // with the key in the detail.
        let (key, value) = decoded.map_err(|e| shared.corrupt("tenant_entry", 0, e.to_string()))?;
        stored.insert(key, value);
    }

    // Each write with what it replaces (owner and body), for the audit log; the stale
    // entries by section and key (`wanted`'s order), as SQLite reports them.
    let mut writes: Vec<(Key, Wanted, Option<Replaced>)> = Vec::new();
    let mut stale = Vec::new();
    for (key, want) in wanted {
        let before = stored.remove(&key);
        let changes = match (&before, &want) {
            (None, None) => false,
            (Some((enterprise, body, _)), Some((new_enterprise, new_body))) => {
                enterprise != new_enterprise || body != new_body
            }
            _ => true,
        };
        if !changes {
            continue;
        }
        if let (Some(base), Some((_, _, revision))) = (change.base_revision, &before)
            && *revision > base
        {
            stale.push((key.0.clone(), key.1.clone(), *revision));
        }
        let before = before.map(|(enterprise, body, _)| (enterprise, body));
        writes.push((key, want, before));
    }
    writes.sort_by_key(|(key, _, _)| order.get(key).copied().unwrap_or(usize::MAX));
    if !stale.is_empty() {
        // Dropping the transaction rolls it back: nothing was written anyway.
        return Err(StoreError::StaleTenant {
            path: shared.path.clone(),
            // Only a change with a base is ever stale.
            base: change.base_revision.unwrap_or_default(),
            changed: stale,
        });
    }

    let revision = if writes.is_empty() {
        current
    } else {
        current.saturating_add(1)
    };
    let at = change.at.as_microsecond();
    let audit = tx
        .prepare_cached(
            "INSERT INTO audit (at, actor, source, enterprise, action, target, before, after)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .await
        .map_err(&err)?;
    // `position`: after every entry's, so a new entry goes last in its section (the
    // tenant_meta lock makes the MAX safe: no other change runs meanwhile).
    let upsert = tx
        .prepare_cached(
            "INSERT INTO tenant_entry (section, key, enterprise, body, revision, position)
             VALUES ($1, $2, $3, $4, $5,
                     (SELECT COALESCE(MAX(position), 0) + 1 FROM tenant_entry))
             ON CONFLICT (section, key) DO UPDATE
             SET enterprise = excluded.enterprise, body = excluded.body,
                 revision = excluded.revision",
        )
        .await
        .map_err(&err)?;
    let delete = tx
        .prepare_cached("DELETE FROM tenant_entry WHERE section = $1 AND key = $2")
        .await
        .map_err(&err)?;
    for ((section, key), want, before) in &writes {
        // Who changed what, in the same transaction as the change: never one without
        // the other.
        let owner = want
            .as_ref()
            .and_then(|(enterprise, _)| enterprise.clone())
            .or_else(|| {
                before
                    .as_ref()
                    .and_then(|(enterprise, _)| enterprise.clone())
            });
        let target = format!("{section}/{key}");
        tx.execute(
            &audit,
            &[
                &at,
                &change.actor,
                &change.actor_source,
                &owner,
                &if want.is_some() { "put" } else { "delete" },
                &target,
                &before.as_ref().map(|(_, body)| body),
                &want.as_ref().map(|(_, body)| body),
            ],
        )
        .await
        .map_err(&err)?;
        match want {
            Some((enterprise, body)) => {
                tx.execute(&upsert, &[section, key, enterprise, body, &revision])
                    .await
                    .map_err(&err)?;
            }
            None => {
                tx.execute(&delete, &[section, key]).await.map_err(&err)?;
            }
        }
    }
    if !writes.is_empty() {
        tx.execute(
            "UPDATE tenant_meta SET revision = $1 WHERE id = 1",
            &[&revision],
        )
        .await
        .map_err(&err)?;
        // Delivered to the listeners when (and only if) this transaction commits.
        tx.execute(
            "SELECT pg_notify($1, $2)",
            &[&CHANNEL, &revision.to_string()],
        )
        .await
        .map_err(&err)?;
    }
    if let Some((origin, digest)) = &change.source {
        let st = tx
            .prepare_cached(
                "INSERT INTO tenant_source (origin, digest, revision) VALUES ($1, $2, $3)
                 ON CONFLICT (origin) DO UPDATE
                 SET digest = excluded.digest, revision = excluded.revision",
            )
            .await
            .map_err(&err)?;
        tx.execute(&st, &[origin, digest, &revision])
            .await
            .map_err(&err)?;
    }
    tx.commit().await.map_err(&err)?;
    Ok(Applied {
        revision,
        changed: writes.len(),
    })
}

async fn read_all(shared: Arc<Shared>) -> Result<TenantData, StoreError> {
    const CONTEXT: &str = "reading the tenant data";
    let err = shared.err(CONTEXT);
    let mut client = shared.client(CONTEXT).await?;
    // One snapshot: the revision and the entries agree.
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(&err)?;
    let revision = read_revision(&shared, &tx, CONTEXT, false).await?;
    // COLLATE "C": sections in byte order, as SQLite's BINARY collation orders them,
    // whatever the database's locale.
    let st = tx
        .prepare_cached(
            "SELECT section, key, enterprise, body, revision, position FROM tenant_entry
             ORDER BY section COLLATE \"C\", position",
        )
        .await
        .map_err(&err)?;
    let rows = tx.query(&st, &[]).await.map_err(&err)?;
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        let decoded = (|| -> Result<StoredEntry, tokio_postgres::Error> {
            Ok(StoredEntry {
                entry: TenantEntry {
                    section: row.try_get(0)?,
                    key: row.try_get(1)?,
                    enterprise: row.try_get(2)?,
                    body: row.try_get(3)?,
                },
                revision: row.try_get(4)?,
            })
        })();
        // No row id in PostgreSQL: the entry's position identifies the row.
        let position: i64 = row.try_get(5).unwrap_or_default();
        entries.push(decoded.map_err(|e| shared.corrupt("tenant_entry", position, e.to_string()))?);
    }
    tx.commit().await.map_err(&err)?;
    Ok(TenantData { revision, entries })
}

/// Raises the pushed revision to `revision`, never lowers it: a revision read after a
/// reconnect may arrive before a notification of an older one.
fn push(tx: &watch::Sender<i64>, revision: i64) {
    tx.send_if_modified(|current| {
        if revision > *current {
            *current = revision;
            true
        } else {
            false
        }
    });
}

/// The listener: forever (until the runtime stops), a session that listens, then a
/// pause that grows while the database stays unreachable.
async fn listen(shared: Arc<Shared>, tx: watch::Sender<i64>) {
    const FIRST_PAUSE: Duration = Duration::from_millis(100);
    const LONGEST_PAUSE: Duration = Duration::from_secs(10);
    let mut pause = FIRST_PAUSE;
    loop {
        let mut listening = false;
        let error = listen_once(&shared, &tx, &mut listening).await;
        if listening {
            // It had worked: the next attempt is the first of a new outage.
            pause = FIRST_PAUSE;
        }
        tracing::warn!(
            database = %shared.path.display(),
            error = %error,
            retry_in = ?pause,
            "the tenant change listener lost its connection; reconnecting"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

/// One listening session: connects, `LISTEN`s, pushes the revision as it is now (the
/// notifications sent while not listening are lost), then every notified revision
/// until the connection breaks; returns why it ended.
async fn listen_once(shared: &Shared, tx: &watch::Sender<i64>, listening: &mut bool) -> String {
    let mut config = shared.config.clone();
    // A connection that only receives must find out that its peer is gone: TCP
    // keepalives probe it (the default waits two hours).
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(30));
    // Told apart from the pool's connections in pg_stat_activity.
    config.application_name(format!("sihai {} tenant listener", shared.node));
    let (client, mut connection) = match config.connect(NoTls).await {
        Ok(pair) => pair,
        Err(e) => return format!("connecting: {e}"),
    };
    // The connection is driven here rather than spawned as a plain future, so that its
    // asynchronous messages (the notifications) are seen rather than dropped.
    let (notes_tx, mut notes) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if notes_tx.send(n.payload().to_owned()).is_err() {
                        return "the listener stopped".to_owned();
                    }
                }
                Ok(_) => {}
                Err(e) => return e.to_string(),
            }
        }
        "the server closed the connection".to_owned()
    });
    let started = async {
        client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        client
            .query_one("SELECT revision FROM tenant_meta WHERE id = 1", &[])
            .await?
            .try_get::<_, i64>(0)
    }
    .await;
    match started {
        Ok(revision) => {
            *listening = true;
            push(tx, revision);
        }
        Err(e) => {
            driver.abort();
            return format!("listening: {e}");
        }
    }
    while let Some(payload) = notes.recv().await {
        match payload.parse::<i64>() {
            Ok(revision) => push(tx, revision),
            // Not ours (someone else notifying the channel): ignored.
            Err(_) => tracing::debug!(%payload, "ignoring a foreign sihai_tenant notification"),
        }
    }
    drop(client);
    match driver.await {
        Ok(why) => why,
        Err(e) => e.to_string(),
    }
}

impl TenantStore for PgStore {
    fn tenant(&self) -> Result<TenantData, StoreError> {
        self.run(read_all(self.shared.clone()))
    }

    fn tenant_revision(&self) -> Result<i64, StoreError> {
        let shared = self.shared.clone();
        self.run(async move {
            const CONTEXT: &str = "reading the tenant revision";
            let client = shared.client(CONTEXT).await?;
            read_revision(&shared, &client, CONTEXT, false).await
        })
    }

    fn apply_tenant(&self, change: TenantChange) -> Result<Applied, StoreError> {
        self.run(apply(self.shared.clone(), change))
    }

    fn tenant_source(&self, origin: &str) -> Result<Option<(String, i64)>, StoreError> {
        let shared = self.shared.clone();
        let origin = origin.to_owned();
        self.run(async move {
            const CONTEXT: &str = "reading a tenant source";
            let client = shared.client(CONTEXT).await?;
            let st = client
                .prepare_cached("SELECT digest, revision FROM tenant_source WHERE origin = $1")
                .await
                .map_err(shared.err(CONTEXT))?;
            let Some(row) = client
                .query_opt(&st, &[&origin])
                .await
                .map_err(shared.err(CONTEXT))?
            else {
                return Ok(None);
            };
            let decoded = (|| -> Result<(String, i64), tokio_postgres::Error> {
                Ok((row.try_get(0)?, row.try_get(1)?))
            })();
            decoded.map(Some).map_err(|e| {
                // tenant_source has no row id in PostgreSQL: the origin names the row.
                shared.corrupt("tenant_source", 0, format!("origin {origin:?}: {e}"))
            })
        })
    }

    fn tenant_changes(&self) -> Option<watch::Receiver<i64>> {
        let receiver = self.shared.tenant_watch.get_or_init(|| {
            // Starts at the revision as it is, so that only later changes show as
            // changes (0 if it cannot be read now: the listener pushes it once
            // connected).
            let initial = self.tenant_revision().unwrap_or(0);
            let (tx, rx) = watch::channel(initial);
            self.handle.spawn(listen(self.shared.clone(), tx));
            rx
        });
        Some(receiver.clone())
    }
}

//! The schema's one source of truth, for both backends: `MIGRATIONS[i]` takes a
//! database from version `i` to `i + 1`; a new version appends one entry and never edits
//! an old one. SQLite runs them as written; PostgreSQL runs them through [`postgres`],
//! which rewrites the few SQLite spellings PostgreSQL does not share (see there), so the
//! two schemas have the same tables, columns, keys, constraints and indexes.
//!
//! Conventions (portable to both): instants are INTEGER microseconds since the Unix
//! epoch, UTC; money is INTEGER units of 1/10,000 yuan; enums are their stable
//! lower-case names; a row id is `INTEGER PRIMARY KEY` (generated when not given).

pub(crate) const MIGRATIONS: &[&str] = &[
    // 0 -> 1: CDRs, their phone attempts, the missed-call alert outbox.
    "
    CREATE TABLE cdr (
        id              INTEGER PRIMARY KEY,
        call_id         TEXT    NOT NULL UNIQUE,
        number          TEXT    NOT NULL,
        enterprise      TEXT    NOT NULL,
        caller          TEXT    NOT NULL,
        caller_province TEXT,
        caller_city     TEXT,
        answered_by     TEXT,
        setup_at        INTEGER NOT NULL,
        ring_at         INTEGER,
        answer_at       INTEGER,
        end_at          INTEGER NOT NULL,
        talk_seconds    INTEGER NOT NULL CHECK (talk_seconds >= 0),
        outcome         TEXT    NOT NULL,
        hangup_side     TEXT,
        hangup_cause    TEXT
    );
    CREATE INDEX cdr_setup            ON cdr (setup_at);
    CREATE INDEX cdr_number_setup     ON cdr (number, setup_at);
    CREATE INDEX cdr_enterprise_setup ON cdr (enterprise, setup_at);
    CREATE INDEX cdr_caller_setup     ON cdr (caller, setup_at);

    CREATE TABLE cdr_attempt (
        cdr_id INTEGER NOT NULL REFERENCES cdr (id) ON DELETE CASCADE,
        seq    INTEGER NOT NULL,
        phone  TEXT    NOT NULL,
        result TEXT    NOT NULL,
        PRIMARY KEY (cdr_id, seq)
    ) WITHOUT ROWID;

    CREATE TABLE alert_outbox (
        id              INTEGER PRIMARY KEY,
        call_id         TEXT    NOT NULL,
        enterprise      TEXT    NOT NULL,
        url             TEXT    NOT NULL,
        payload         TEXT    NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        state           TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'dead')),
        created_at      INTEGER NOT NULL
    );
    CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at) WHERE state = 'pending';
    ",
    // 1 -> 2: the call's recording (a WAV file), when the number records calls.
    "ALTER TABLE cdr ADD COLUMN recording TEXT;",
    // 2 -> 3: the voice-menu keys the caller pressed on the way (e.g. `1>3`).
    "ALTER TABLE cdr ADD COLUMN menu_path TEXT;",
    // 3 -> 4: the announcement (a prompt name) played before an unanswered call was
    // released.
    "ALTER TABLE cdr ADD COLUMN announcement TEXT;",
    // 4 -> 5: prepaid billing. The CDR keeps what the call was billed; accounts, their
    // append-only ledger, the reservations of calls in progress, and the node's clock.
    //
    // Money is INTEGER units of 1/10,000 yuan. The `typeof(...) = 'integer'` checks are
    // there because SQLite turns an overflowing integer sum into a REAL: better a failed
    // statement than a balance that silently stops being exact.
    //
    // `account.balance` always equals the sum of the account's `ledger.amount`, and
    // `account.reserved` the sum of its `reservation.held`: both are maintained in the
    // same transaction as the rows they summarise (`verify` checks it).
    //
    // `node_clock` is one row: `alive_at` is the last moment the daemon knew it was
    // running (stamped by the writer), which bounds the calls a killed daemon left open;
    // `book_epoch` is bumped by every change to an account other than a call's
    // settlement (recharges, fees, status changes, new accounts), so that a running
    // daemon notices another process's `sihai account recharge` cheaply.
    "
    ALTER TABLE cdr ADD COLUMN billed_seconds INTEGER NOT NULL DEFAULT 0
        CHECK (billed_seconds >= 0);
    ALTER TABLE cdr ADD COLUMN cost INTEGER CHECK (cost IS NULL OR typeof(cost) = 'integer');
    ALTER TABLE cdr ADD COLUMN tariff TEXT;

    CREATE TABLE account (
        enterprise         TEXT    PRIMARY KEY,
        balance            INTEGER NOT NULL DEFAULT 0 CHECK (typeof(balance) = 'integer'),
        reserved           INTEGER NOT NULL DEFAULT 0
                                   CHECK (typeof(reserved) = 'integer' AND reserved >= 0),
        status             TEXT    NOT NULL DEFAULT 'active'
                                   CHECK (status IN ('active', 'suspended', 'reclaimed')),
        status_since       INTEGER NOT NULL,
        negative_since     INTEGER,
        low_balance_warned INTEGER NOT NULL DEFAULT 0 CHECK (low_balance_warned IN (0, 1)),
        opened_at          INTEGER NOT NULL
    );

    CREATE TABLE ledger (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        enterprise    TEXT    NOT NULL REFERENCES account (enterprise),
        kind          TEXT    NOT NULL CHECK (kind IN ('recharge', 'call_charge',
                              'monthly_minimum', 'fee', 'suspension_day_fee', 'adjustment')),
        amount        INTEGER NOT NULL CHECK (typeof(amount) = 'integer'),
        reference     TEXT    NOT NULL,
        at            INTEGER NOT NULL,
        actor         TEXT    NOT NULL,
        note          TEXT,
        balance_after INTEGER NOT NULL CHECK (typeof(balance_after) = 'integer'),
        UNIQUE (enterprise, kind, reference)
    );
    CREATE INDEX ledger_enterprise_at ON ledger (enterprise, at);

    CREATE TABLE reservation (
        call_id         TEXT    PRIMARY KEY,
        enterprise      TEXT    NOT NULL REFERENCES account (enterprise),
        held            INTEGER NOT NULL CHECK (typeof(held) = 'integer' AND held >= 0),
        number          TEXT    NOT NULL,
        caller          TEXT    NOT NULL,
        caller_province TEXT,
        caller_city     TEXT,
        tariff          TEXT    NOT NULL,
        setup_at        INTEGER NOT NULL,
        answered_at     INTEGER
    );
    CREATE INDEX reservation_enterprise ON reservation (enterprise);

    CREATE TABLE node_clock (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        alive_at   INTEGER,
        book_epoch INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO node_clock (id, alive_at, book_epoch) VALUES (1, NULL, 0);
    ",
    // 5 -> 6: every billed call inserts and deletes its reservation row: keyed by the
    // call's id alone (WITHOUT ROWID), the row is one b-tree instead of three (table,
    // primary-key index, enterprise index), which is most of what a reservation costs
    // the writer. Reads by enterprise (`verify`) group the whole table instead.
    "
    CREATE TABLE reservation_v6 (
        call_id         TEXT    NOT NULL PRIMARY KEY,
        enterprise      TEXT    NOT NULL REFERENCES account (enterprise),
        held            INTEGER NOT NULL CHECK (typeof(held) = 'integer' AND held >= 0),
        number          TEXT    NOT NULL,
        caller          TEXT    NOT NULL,
        caller_province TEXT,
        caller_city     TEXT,
        tariff          TEXT    NOT NULL,
        setup_at        INTEGER NOT NULL,
        answered_at     INTEGER
    ) WITHOUT ROWID;
    INSERT INTO reservation_v6
        SELECT call_id, enterprise, held, number, caller, caller_province, caller_city,
               tariff, setup_at, answered_at
        FROM reservation;
    DROP TABLE reservation;
    ALTER TABLE reservation_v6 RENAME TO reservation;
    ",
    // 6 -> 7: tenant data (enterprises, numbers, plans, groups, schedules, prompts, menus,
    // extensions, tariffs). One row per entry of the tenant document, one item of one of
    // its arrays of tables: `section` is the array ("group"), `key` the item's name
    // ("sales"), `body` the item's canonical TOML text, opaque to the store.
    //
    // Revisions make concurrent editors (`sihai apply`, the HTTP API) safe: `tenant_meta`
    // is one row whose `revision` is that of the latest change to any entry; a change
    // bumps it by one and stamps every row it writes with the new value, so an editor
    // whose copy was taken at revision `b` is refused when a row it touches is newer
    // than `b`. Removed entries are deleted (no tombstones).
    //
    // `tenant_source` remembers what each configuration file (by path) last applied: a
    // digest of its tenant text and the revision after that apply, so the daemon can
    // tell whether the operator edited the file since.
    "
    CREATE TABLE tenant_entry (
        section    TEXT    NOT NULL,
        key        TEXT    NOT NULL,
        enterprise TEXT,
        body       TEXT    NOT NULL,
        revision   INTEGER NOT NULL,
        position   INTEGER NOT NULL,
        PRIMARY KEY (section, key)
    );
    CREATE INDEX tenant_entry_enterprise ON tenant_entry (enterprise);

    CREATE TABLE tenant_meta (
        id       INTEGER PRIMARY KEY CHECK (id = 1),
        revision INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO tenant_meta (id, revision) VALUES (1, 0);

    CREATE TABLE tenant_source (
        origin   TEXT    NOT NULL PRIMARY KEY,
        digest   TEXT    NOT NULL,
        revision INTEGER NOT NULL
    );
    ",
    // 7 -> 8: access to the admin HTTP API. Its users (`app_user`: `user` is reserved in
    // PostgreSQL), each with a role; an enterprise role belongs to exactly one
    // enterprise, an operator to none (the CHECK makes a user that could see every
    // enterprise by mistake impossible). Passwords, session tokens and API keys are
    // generated and hashed by the API: only hashes are stored, so a copy of the
    // database logs nobody in. A session keeps its CSRF token and where it was opened
    // from; a user's sessions and keys go with the user (and a password change deletes
    // the sessions).
    //
    // `audit` is the append-only log of what was changed, by whom and from where, with
    // the target's text before and after; read newest first, per enterprise. It has no
    // foreign key to `app_user`: entries outlive the users who made them, and name
    // actors that are not users (the CLI).
    "
    CREATE TABLE app_user (
        id                  INTEGER PRIMARY KEY,
        login               TEXT    NOT NULL UNIQUE CHECK (login <> ''),
        password_hash       TEXT    NOT NULL,
        role                TEXT    NOT NULL
                                    CHECK (role IN ('operator', 'enterprise_admin',
                                                    'enterprise_viewer')),
        enterprise          TEXT,
        created_at          INTEGER NOT NULL,
        password_changed_at INTEGER NOT NULL,
        CHECK ((role = 'operator' AND enterprise IS NULL)
               OR (role <> 'operator' AND enterprise IS NOT NULL AND enterprise <> ''))
    );
    CREATE INDEX app_user_enterprise ON app_user (enterprise);

    CREATE TABLE app_session (
        token_hash TEXT    NOT NULL PRIMARY KEY,
        user_id    INTEGER NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
        csrf_token TEXT    NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        source     TEXT
    );
    CREATE INDEX app_session_user ON app_session (user_id);

    CREATE TABLE api_key (
        id         INTEGER PRIMARY KEY,
        key_hash   TEXT    NOT NULL UNIQUE,
        user_id    INTEGER NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
        name       TEXT    NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX api_key_user ON api_key (user_id);

    CREATE TABLE audit (
        id         INTEGER PRIMARY KEY,
        at         INTEGER NOT NULL,
        actor      TEXT    NOT NULL,
        source     TEXT,
        enterprise TEXT,
        action     TEXT    NOT NULL,
        target     TEXT    NOT NULL,
        before     TEXT,
        after      TEXT
    );
    CREATE INDEX audit_enterprise_at ON audit (enterprise, at);
    CREATE INDEX audit_at            ON audit (at);
    ",
    // 8 -> 9: uploaded recordings (an enterprise's 彩铃), content-addressed: `digest` is
    // `sha256:` and the hex SHA-256 of `wav`, the converted 8 kHz mono 16-bit WAV that a
    // `[[prompt]] audio` names. Written once, never changed (the same audio uploaded
    // twice is one row); `bytes` is `wav`'s length, to report sizes without reading the
    // blobs. In PostgreSQL `wav` is BYTEA.
    "
    CREATE TABLE audio (
        digest     TEXT    NOT NULL PRIMARY KEY,
        wav        BLOB    NOT NULL,
        bytes      INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );
    ",
    // 9 -> 10: traffic analysis rollups (issue 14), kept by a background job from the
    // CDRs so that a month's figures are a few hundred rollups and its distinct
    // callers, not a million CDRs.
    //
    // `analytics_day` holds one rollup per enterprise, 400 number and Asia/Shanghai
    // day (`YYYY-MM-DD`): the `sihai_analytics::DayRollup` of the day's calls to the
    // number, as its versioned JSON (sums only, so rollups merge exactly).
    // `analytics_caller` the day's distinct callers of the number, for new and
    // returning callers (distinct callers do not sum), and `analytics_month_caller` the
    // month's (`YYYY-MM`): a range reads whole months from these (fewer rows than
    // their days': callers call again within a month) and only its other days from
    // `analytics_caller`. `analytics_watermark` is one row:
    // `through_cdr`, the highest `cdr.id` folded into them. The job folds the CDRs
    // after it and moves it in one transaction, so a CDR is counted exactly once; a
    // reader folds the CDRs after it live, in the same read transaction. Starting at
    // 0, a database that already holds CDRs is rolled up from its first.
    //
    // Should the rollup format change, a migration empties the tables and sets the
    // watermark back to 0: the job rebuilds them from the CDRs.
    "
    CREATE TABLE analytics_day (
        enterprise TEXT NOT NULL,
        number     TEXT NOT NULL,
        day        TEXT NOT NULL,
        rollup     TEXT NOT NULL,
        PRIMARY KEY (enterprise, number, day)
    );

    CREATE TABLE analytics_caller (
        enterprise TEXT NOT NULL,
        number     TEXT NOT NULL,
        day        TEXT NOT NULL,
        caller     TEXT NOT NULL,
        PRIMARY KEY (enterprise, number, day, caller)
    ) WITHOUT ROWID;

    CREATE TABLE analytics_month_caller (
        enterprise TEXT NOT NULL,
        number     TEXT NOT NULL,
        month      TEXT NOT NULL,
        caller     TEXT NOT NULL,
        PRIMARY KEY (enterprise, number, month, caller)
    ) WITHOUT ROWID;

    CREATE TABLE analytics_watermark (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        through_cdr INTEGER NOT NULL
    );
    INSERT INTO analytics_watermark (id, through_cdr) VALUES (1, 0);
    ",
    // 10 -> 11: several nodes on one database (PostgreSQL). Each reservation belongs to
    // the node whose call holds it, and each node stamps its own last sign of life, so
    // that a node restarted after a crash settles its own open calls, charged up to its
    // own `alive_at`, and never another running node's. A single node (SQLite) is the
    // node `''` and keeps using `node_clock`.
    "
    ALTER TABLE reservation ADD COLUMN node TEXT NOT NULL DEFAULT '';
    CREATE INDEX reservation_node ON reservation (node);

    CREATE TABLE node_alive (
        node     TEXT    NOT NULL PRIMARY KEY,
        alive_at INTEGER NOT NULL
    );
    ",
    // 11 -> 12: the caller's id in the enterprise's CRM (来电弹屏), when a lookup gave one.
    "
    ALTER TABLE cdr ADD COLUMN customer_id TEXT;
    ",
];

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// `MIGRATIONS[i]` in PostgreSQL's dialect. The rewrites, each a spelling with one
/// meaning in both:
/// - `INTEGER PRIMARY KEY [AUTOINCREMENT]` (SQLite's row id) is a generated
///   `BIGINT` identity (ids never reused, as AUTOINCREMENT promises);
/// - `INTEGER` is `BIGINT` (SQLite's integers are 64-bit; microseconds and money need it);
/// - `BLOB` is `BYTEA`; `WITHOUT ROWID` (a storage layout) is dropped;
/// - `typeof(x) = 'integer'` (SQLite turning an overflowing sum into a REAL) is `TRUE`:
///   a PostgreSQL `BIGINT` overflow fails the statement, which is what the check is for.
pub(crate) fn postgres(sql: &str) -> String {
    let mut out = sql
        .replace(
            "INTEGER PRIMARY KEY AUTOINCREMENT",
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        )
        .replace(
            "INTEGER PRIMARY KEY",
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        )
        .replace("INTEGER", "BIGINT")
        .replace("BLOB", "BYTEA")
        .replace(") WITHOUT ROWID;", ");");
    while let Some(start) = out.find("typeof(") {
        let Some(close) = out[start..].find(") = 'integer'") else {
            break;
        };
        out.replace_range(start..start + close + ") = 'integer'".len(), "TRUE");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_postgres_dialect_rewrites_every_sqlite_spelling() {
        for (i, sql) in MIGRATIONS.iter().enumerate() {
            let pg = postgres(sql);
            for sqlite_only in [
                "INTEGER",
                "BLOB",
                "WITHOUT ROWID",
                "typeof(",
                "AUTOINCREMENT",
            ] {
                assert!(
                    !pg.contains(sqlite_only),
                    "migration {i} keeps {sqlite_only}: {pg}"
                );
            }
        }
        assert_eq!(
            postgres("x INTEGER NOT NULL CHECK (typeof(x) = 'integer' AND x >= 0), y BLOB"),
            "x BIGINT NOT NULL CHECK (TRUE AND x >= 0), y BYTEA"
        );
    }
}

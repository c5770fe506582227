//! Schema migrations, applied in order and recorded in `PRAGMA user_version`.

use rusqlite::Connection;

use super::backend;
use crate::store::{SchemaState, StoreError};

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE application (
    id          TEXT PRIMARY KEY,
    uid         TEXT UNIQUE,
    name        TEXT NOT NULL,
    rate_limit  INTEGER,
    metadata    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE event_type (
    name              TEXT PRIMARY KEY,
    description       TEXT NOT NULL,
    archived          INTEGER NOT NULL,
    deprecated        INTEGER NOT NULL,
    schemas           TEXT,
    feature_flag      TEXT,
    validate_payloads INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);

CREATE TABLE endpoint (
    id              TEXT PRIMARY KEY,
    app_id          TEXT NOT NULL REFERENCES application(id) ON DELETE CASCADE,
    uid             TEXT,
    url             TEXT NOT NULL,
    description     TEXT NOT NULL,
    version         INTEGER NOT NULL,
    disabled        INTEGER NOT NULL,
    rate_limit      INTEGER,
    filter_types    TEXT,
    channels        TEXT,
    metadata        TEXT NOT NULL,
    headers         TEXT NOT NULL,
    secret          BLOB NOT NULL,
    retired_secrets TEXT NOT NULL,
    failing_since   INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (app_id, uid)
);
CREATE INDEX endpoint_app ON endpoint (app_id, id);

CREATE TABLE message (
    id                 TEXT PRIMARY KEY,
    app_id             TEXT NOT NULL REFERENCES application(id) ON DELETE CASCADE,
    event_type         TEXT NOT NULL,
    event_id           TEXT,
    channels           TEXT,
    tags               TEXT,
    payload            TEXT,
    payload_expires_at INTEGER NOT NULL,
    deliver_at         INTEGER,
    created_at         INTEGER NOT NULL,
    UNIQUE (app_id, event_id)
);
CREATE INDEX message_app ON message (app_id, id);
CREATE INDEX message_created ON message (created_at);
CREATE INDEX message_payload_expiry ON message (payload_expires_at) WHERE payload IS NOT NULL;

-- The outbox and the dispatcher's queue in one: a row per (message, endpoint).
-- `next_attempt_at` is when the row is due; while an attempt is in flight it
-- holds the lease expiry, so work of a dead process falls due by itself.
CREATE TABLE delivery (
    msg_id          TEXT NOT NULL REFERENCES message(id) ON DELETE CASCADE,
    endpoint_id     TEXT NOT NULL REFERENCES endpoint(id) ON DELETE CASCADE,
    app_id          TEXT NOT NULL,
    status          INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER,
    claim_id        TEXT,
    manual          INTEGER NOT NULL DEFAULT 0,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (msg_id, endpoint_id)
);
CREATE INDEX delivery_endpoint_due ON delivery (endpoint_id, next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX delivery_endpoint_status ON delivery (endpoint_id, status);

-- One row per endpoint with work: when it is next due, and the starts of the
-- last second for its rate limit. The dispatcher walks this, not the
-- deliveries, so a throttled endpoint's backlog costs nothing to skip.
CREATE TABLE endpoint_queue (
    endpoint_id TEXT PRIMARY KEY REFERENCES endpoint(id) ON DELETE CASCADE,
    next_due    INTEGER NOT NULL,
    rate_log    TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX endpoint_queue_due ON endpoint_queue (next_due);

CREATE TABLE attempt (
    id                   TEXT PRIMARY KEY,
    msg_id               TEXT NOT NULL REFERENCES message(id) ON DELETE CASCADE,
    endpoint_id          TEXT NOT NULL REFERENCES endpoint(id) ON DELETE CASCADE,
    app_id               TEXT NOT NULL,
    url                  TEXT NOT NULL,
    status               INTEGER NOT NULL,
    response_status_code INTEGER NOT NULL,
    response             TEXT NOT NULL,
    response_duration_ms INTEGER NOT NULL,
    trigger_type         INTEGER NOT NULL,
    error                TEXT,
    created_at           INTEGER NOT NULL
);
CREATE INDEX attempt_msg ON attempt (msg_id, id);
CREATE INDEX attempt_endpoint ON attempt (endpoint_id, id);
CREATE INDEX attempt_created ON attempt (created_at);

-- Replayable answers to requests with an Idempotency-Key, written in the same
-- transaction as what the request created.
CREATE TABLE idempotency (
    key        BLOB PRIMARY KEY,
    body_hash  BLOB NOT NULL,
    status     INTEGER NOT NULL,
    body       BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX idempotency_created ON idempotency (created_at);
"#,
    // 2: facts about the store itself (the main key's fingerprint, pending
    // upgrades). Secrets become bound to their owner's id: the ones already
    // stored are re-sealed at the next start (`secrets_unbound`), and stored
    // idempotent answers, which were plaintext, are dropped.
    r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO meta (key, value) SELECT 'secrets_unbound', '1' WHERE EXISTS (SELECT 1 FROM endpoint);
DELETE FROM idempotency;
"#,
    // 3: the queue entry of an endpoint lives as long as the endpoint (no
    // insert on the hot path, only a conditional update), and its rate
    // limit is one time (its next free start slot) instead of a log of
    // starts.
    r#"
CREATE TABLE endpoint_queue_v3 (
    endpoint_id TEXT PRIMARY KEY REFERENCES endpoint(id) ON DELETE CASCADE,
    next_due    INTEGER,
    next_slot   INTEGER
);
INSERT INTO endpoint_queue_v3 (endpoint_id, next_due)
    SELECT e.id, (SELECT MIN(d.next_attempt_at) FROM delivery d
                  WHERE d.endpoint_id = e.id AND d.next_attempt_at IS NOT NULL)
    FROM endpoint e;
DROP TABLE endpoint_queue;
ALTER TABLE endpoint_queue_v3 RENAME TO endpoint_queue;
CREATE INDEX endpoint_queue_due ON endpoint_queue (next_due) WHERE next_due IS NOT NULL;
"#,
    // 4: recover and replay run as background tasks, stepped by a task
    // runner and readable through `background-task`; tokens can be revoked.
    r#"
CREATE TABLE background_task (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    app_id      TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    range_start INTEGER NOT NULL,
    range_end   INTEGER NOT NULL,
    cursor      TEXT,
    scheduled   INTEGER NOT NULL,
    error       TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX background_task_running ON background_task (updated_at) WHERE status = 'running';

-- Revoked tokens: `expire-all` per application and token generation
-- (session '' is every session), and `logout` per token digest.
CREATE TABLE token_expiry (
    app_id        TEXT NOT NULL,
    session_id    TEXT NOT NULL,
    generation    INTEGER NOT NULL,
    effective_at  INTEGER NOT NULL,
    PRIMARY KEY (app_id, session_id, generation)
);
CREATE TABLE app_token_generation (
    app_id     TEXT PRIMARY KEY,
    generation INTEGER NOT NULL
);
CREATE TABLE revoked_token (
    digest     BLOB PRIMARY KEY,
    expires_at INTEGER
);

-- Svix's event type fields: several feature flags (JSON), a group.
ALTER TABLE event_type ADD COLUMN feature_flags TEXT;
ALTER TABLE event_type ADD COLUMN group_name TEXT;
"#,
    // 5: bulk replay keeps its filter with its task and walks an index; integrations hold the
    // version of their current key (the key itself is a signed token).
    r#"
ALTER TABLE background_task ADD COLUMN filter TEXT;
-- Recover and bulk replay walk one endpoint's deliveries of one status
-- in message id order, a step at a time.
DROP INDEX delivery_endpoint_status;
CREATE INDEX delivery_endpoint_status ON delivery (endpoint_id, status, msg_id);

CREATE TABLE integration (
    id            TEXT PRIMARY KEY,
    app_id        TEXT NOT NULL REFERENCES application(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    feature_flags TEXT,
    key_version   INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX integration_app ON integration (app_id, id);
"#,
    // 6: retention purges messages and attempts by id, which sorts by
    // creation time: an index on `created_at` only cost every insert.
    r#"
DROP INDEX message_created;
DROP INDEX attempt_created;
"#,
    // 7: no statement. A created message's idempotency record now names
    // the message instead of holding its answer (`api/idempotency.rs`); a
    // node of an older release would answer such a record's bytes as the
    // body of a replay, so it must refuse this schema.
    r#"
-- idempotency records of created messages name their message
"#,
];

/// The schema's version and the migrations still to apply.
pub fn state(conn: &Connection) -> Result<SchemaState, StoreError> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)).map_err(backend)? as usize;
    Ok(SchemaState::new(current, MIGRATIONS))
}

pub fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let state = state(conn)?;
    state.refuse_newer()?;
    let current = state.current;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let version = index + 1;
        conn.execute_batch(&format!("BEGIN IMMEDIATE;\n{sql}\n;\nPRAGMA user_version = {version};\nCOMMIT;")).map_err(
            |e| {
                let _ = conn.execute_batch("ROLLBACK");
                StoreError::Backend(format!("migration {version} failed: {e}"))
            },
        )?;
    }
    Ok(())
}

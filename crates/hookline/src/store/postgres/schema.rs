//! Schema migrations for PostgreSQL, applied in order under an advisory lock
//! (several nodes may start at once) and recorded in `schema_migration`.
//! A node refuses a database whose schema is newer than it knows.
//!
//! Ids are `COLLATE "C"` so that they sort as the ids do (byte order, like
//! the embedded store), which keyset pagination relies on. Times are
//! `timestamptz`; JSON columns hold the same text as the embedded store's.

use postgres::Client;

use crate::store::{SchemaState, StoreError};

/// Any fixed number: the key of the advisory lock migrations run under.
const MIGRATION_LOCK: i64 = 0x686f_6f6b_6c69_6e65; // "hookline"

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE application (
    id          TEXT COLLATE "C" PRIMARY KEY,
    uid         TEXT COLLATE "C" UNIQUE,
    name        TEXT NOT NULL,
    rate_limit  INTEGER,
    metadata    TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE event_type (
    name              TEXT COLLATE "C" PRIMARY KEY,
    description       TEXT NOT NULL,
    archived          BOOLEAN NOT NULL,
    deprecated        BOOLEAN NOT NULL,
    schemas           TEXT,
    feature_flag      TEXT,
    validate_payloads BOOLEAN NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);

CREATE TABLE endpoint (
    id              TEXT COLLATE "C" PRIMARY KEY,
    app_id          TEXT COLLATE "C" NOT NULL REFERENCES application(id) ON DELETE CASCADE,
    uid             TEXT COLLATE "C",
    url             TEXT NOT NULL,
    description     TEXT NOT NULL,
    version         INTEGER NOT NULL,
    disabled        BOOLEAN NOT NULL,
    rate_limit      INTEGER,
    filter_types    TEXT,
    channels        TEXT,
    metadata        TEXT NOT NULL,
    headers         TEXT NOT NULL,
    secret          BYTEA NOT NULL,
    retired_secrets TEXT NOT NULL,
    failing_since   TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (app_id, uid)
);
CREATE INDEX endpoint_app ON endpoint (app_id, id);

CREATE TABLE message (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    app_id             TEXT COLLATE "C" NOT NULL REFERENCES application(id) ON DELETE CASCADE,
    event_type         TEXT COLLATE "C" NOT NULL,
    event_id           TEXT COLLATE "C",
    channels           TEXT,
    tags               TEXT,
    payload            TEXT,
    payload_expires_at TIMESTAMPTZ NOT NULL,
    deliver_at         TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL,
    UNIQUE (app_id, event_id)
);
CREATE INDEX message_app ON message (app_id, id);
CREATE INDEX message_created ON message (created_at);
CREATE INDEX message_payload_expiry ON message (payload_expires_at) WHERE payload IS NOT NULL;

-- The outbox and the dispatcher's queue in one: a row per (message, endpoint).
-- While an attempt is in flight, next_attempt_at holds the lease expiry.
CREATE TABLE delivery (
    msg_id          TEXT COLLATE "C" NOT NULL REFERENCES message(id) ON DELETE CASCADE,
    endpoint_id     TEXT COLLATE "C" NOT NULL REFERENCES endpoint(id) ON DELETE CASCADE,
    app_id          TEXT COLLATE "C" NOT NULL,
    status          SMALLINT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at TIMESTAMPTZ,
    claim_id        TEXT COLLATE "C",
    manual          SMALLINT NOT NULL DEFAULT 0,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (msg_id, endpoint_id)
);
CREATE INDEX delivery_endpoint_due ON delivery (endpoint_id, next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX delivery_endpoint_status ON delivery (endpoint_id, status);

-- One row per endpoint, for its life: when it is next worth a look, and its
-- rate limit's next free start slot. Claims lock these rows (SKIP LOCKED),
-- so one node at a time claims for an endpoint and the limit holds for all
-- nodes.
CREATE TABLE endpoint_queue (
    endpoint_id TEXT COLLATE "C" PRIMARY KEY REFERENCES endpoint(id) ON DELETE CASCADE,
    next_due    TIMESTAMPTZ,
    next_slot   TIMESTAMPTZ
);
CREATE INDEX endpoint_queue_due ON endpoint_queue (next_due) WHERE next_due IS NOT NULL;

CREATE TABLE attempt (
    id                   TEXT COLLATE "C" PRIMARY KEY,
    msg_id               TEXT COLLATE "C" NOT NULL REFERENCES message(id) ON DELETE CASCADE,
    endpoint_id          TEXT COLLATE "C" NOT NULL REFERENCES endpoint(id) ON DELETE CASCADE,
    app_id               TEXT COLLATE "C" NOT NULL,
    url                  TEXT NOT NULL,
    status               SMALLINT NOT NULL,
    response_status_code INTEGER NOT NULL,
    response             TEXT NOT NULL,
    response_duration_ms BIGINT NOT NULL,
    trigger_type         SMALLINT NOT NULL,
    error                TEXT,
    created_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX attempt_msg ON attempt (msg_id, id);
CREATE INDEX attempt_endpoint ON attempt (endpoint_id, id);
CREATE INDEX attempt_created ON attempt (created_at);

-- Replayable answers to requests with an Idempotency-Key (sealed), written
-- in the same transaction as what the request created.
CREATE TABLE idempotency (
    key        BYTEA PRIMARY KEY,
    body_hash  BYTEA NOT NULL,
    status     INTEGER NOT NULL,
    body       BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX idempotency_created ON idempotency (created_at);
"#,
    // 2: recover and replay run as background tasks, stepped by the nodes'
    // task runners and readable through `background-task`; tokens can be
    // revoked.
    r#"
CREATE TABLE background_task (
    id          TEXT COLLATE "C" PRIMARY KEY,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    app_id      TEXT COLLATE "C" NOT NULL,
    endpoint_id TEXT COLLATE "C" NOT NULL,
    range_start TIMESTAMPTZ NOT NULL,
    range_end   TIMESTAMPTZ NOT NULL,
    cursor      TEXT COLLATE "C",
    scheduled   BIGINT NOT NULL,
    error       TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX background_task_running ON background_task (updated_at) WHERE status = 'running';

-- Revoked tokens: `expire-all` per application and token generation
-- (session '' is every session), and `logout` per token digest.
CREATE TABLE token_expiry (
    app_id        TEXT COLLATE "C" NOT NULL,
    session_id    TEXT COLLATE "C" NOT NULL,
    generation    BIGINT NOT NULL,
    effective_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (app_id, session_id, generation)
);
CREATE TABLE app_token_generation (
    app_id     TEXT COLLATE "C" PRIMARY KEY,
    generation BIGINT NOT NULL
);
CREATE TABLE revoked_token (
    digest     BYTEA PRIMARY KEY,
    expires_at TIMESTAMPTZ
);

-- Svix's event type fields: several feature flags (JSON), a group.
ALTER TABLE event_type ADD COLUMN feature_flags TEXT;
ALTER TABLE event_type ADD COLUMN group_name TEXT;
"#,
    // 3: bulk replay keeps its filter with its task and walks an index; integrations hold the
    // version of their current key (the key itself is a signed token).
    r#"
ALTER TABLE background_task ADD COLUMN filter TEXT;
-- Recover and bulk replay walk one endpoint's deliveries of one status
-- in message id order, a step at a time.
DROP INDEX delivery_endpoint_status;
CREATE INDEX delivery_endpoint_status ON delivery (endpoint_id, status, msg_id);

CREATE TABLE integration (
    id            TEXT COLLATE "C" PRIMARY KEY,
    app_id        TEXT COLLATE "C" NOT NULL REFERENCES application(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    feature_flags TEXT,
    key_version   BIGINT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX integration_app ON integration (app_id, id);
"#,
    // 4: retention purges messages and attempts by id, which sorts by
    // creation time: an index on `created_at` only cost every insert. An
    // attempt refers to its delivery rather than to its message and endpoint.
    r#"
DROP INDEX message_created;
DROP INDEX attempt_created;
-- An attempt belongs to its delivery. One key checked against the row its
-- outcome just updated replaces a lock on the message row and one on the
-- endpoint row, which every concurrent outcome for that endpoint shared.
ALTER TABLE attempt
    DROP CONSTRAINT attempt_msg_id_fkey,
    DROP CONSTRAINT attempt_endpoint_id_fkey,
    ADD CONSTRAINT attempt_delivery_fkey FOREIGN KEY (msg_id, endpoint_id)
        REFERENCES delivery (msg_id, endpoint_id) ON DELETE CASCADE NOT VALID;
"#,
    // 5: the check of the attempts already there, in a transaction of its
    // own: it reads every attempt, and holds no lock that stops writes.
    r#"
ALTER TABLE attempt VALIDATE CONSTRAINT attempt_delivery_fkey;
"#,
    // 6: no foreign key on attempts at all. Its check, a query of its own
    // per inserted row, was 70 % of the attempt insert's time (auto_explain
    // over e2e to ten endpoints: 102 µs a row). The insert finds the
    // delivery itself, and deleting an endpoint, an application or a
    // message deletes its attempts explicitly (see `record_outcomes`).
    r#"
ALTER TABLE attempt DROP CONSTRAINT attempt_delivery_fkey;
"#,
    // 7: no foreign keys on deliveries either. Their two checks (message,
    // endpoint) were half of the delivery insert (auto_explain over e2e to
    // ten endpoints: 20 and 22 µs a row). A fan-out holds its application
    // against deletion instead (`app_locks`, since schema 8), and
    // deleting an endpoint, an application or a message deletes its
    // deliveries explicitly.
    r#"
ALTER TABLE delivery
    DROP CONSTRAINT delivery_msg_id_fkey,
    DROP CONSTRAINT delivery_endpoint_id_fkey;
"#,
    // 8: no foreign key from messages to their application. Its check was a
    // query per inserted message, and the row lock it took on the
    // application, shared by every batch writing to it, a multixact. The
    // writers hold the application against deletion instead (`app_locks`),
    // and deleting it deletes its messages explicitly.
    r#"
ALTER TABLE message DROP CONSTRAINT message_app_id_fkey;
"#,
    // 9: the uniqueness of eventIds covers messages that have one. Most
    // have none, and each of those wrote an index entry for its NULL. The
    // index is built first, which holds off writes but not reads; the
    // constraint's drop, which holds off everything, is then brief.
    r#"
CREATE UNIQUE INDEX message_event_id ON message (app_id, event_id) WHERE event_id IS NOT NULL;
ALTER TABLE message DROP CONSTRAINT message_app_id_event_id_key;
"#,
    // 10: no statement. A created message's idempotency record now names
    // the message instead of holding its answer (`api/idempotency.rs`); a
    // node of an older release would answer such a record's bytes as the
    // body of a replay, so it must refuse this schema.
    r#"
-- idempotency records of created messages name their message
"#,
];

pub fn migrate(client: &mut Client) -> Result<(), StoreError> {
    refuse_old_server(client)?;
    let fail = |what: &str, e: postgres::Error| StoreError::Unavailable(format!("{what}: {e}"));
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .map_err(|e| fail("taking the migration lock", e))?;
    let result = apply(client);
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
    result?;
    unlocked.map_err(|e| fail("releasing the migration lock", e))?;
    Ok(())
}

/// The oldest server Hookline runs on (`server_version_num`): the
/// statistics keeper analyzes with `SKIP_LOCKED`, new in PostgreSQL 12.
const OLDEST_SERVER: i32 = 120_000;

/// Refuses a server older than Hookline supports; migrations call it
/// before they write anything.
fn refuse_old_server(client: &mut Client) -> Result<(), StoreError> {
    let server = client
        .query_one("SELECT current_setting('server_version_num')::int, current_setting('server_version')", &[])
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let (number, version): (i32, String) = (server.get(0), server.get(1));
    if number < OLDEST_SERVER {
        return Err(StoreError::Backend(format!(
            "PostgreSQL {version} is too old: Hookline needs PostgreSQL 12 or newer"
        )));
    }
    Ok(())
}

/// The schema's version and the migrations still to apply (all of them on
/// an empty database). Reads only; refuses a server too old to run on.
pub fn state(client: &mut Client) -> Result<SchemaState, StoreError> {
    refuse_old_server(client)?;
    recorded_state(client)
}

/// `state` on a server already checked.
fn recorded_state(client: &mut Client) -> Result<SchemaState, StoreError> {
    let backend = |e: postgres::Error| StoreError::Backend(e.to_string());
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_migration') IS NOT NULL", &[])
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
        .get(0);
    let current = if exists {
        let v: i32 =
            client.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migration", &[]).map_err(backend)?.get(0);
        v as usize
    } else {
        0
    };
    Ok(SchemaState::new(current, MIGRATIONS))
}

fn apply(client: &mut Client) -> Result<(), StoreError> {
    apply_up_to(client, MIGRATIONS.len())
}

/// Applies the migrations up to version `last`.
fn apply_up_to(client: &mut Client, last: usize) -> Result<(), StoreError> {
    let backend = |e: postgres::Error| StoreError::Backend(e.to_string());
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migration (
                 version    INTEGER PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .map_err(backend)?;
    let state = recorded_state(client)?;
    state.refuse_newer()?;
    let current = state.current;
    for (index, sql) in MIGRATIONS.iter().enumerate().take(last).skip(current) {
        let version = (index + 1) as i32;
        let mut tx = client.transaction().map_err(backend)?;
        tx.batch_execute(sql).map_err(|e| StoreError::Backend(format!("migration {version} failed: {e}")))?;
        tx.execute("INSERT INTO schema_migration (version) VALUES ($1)", &[&version]).map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use postgres::error::SqlState;

    /// A database at schema 8 that holds messages keeps them through
    /// migration 9, and their eventIds stay unique per application.
    #[tokio::test]
    async fn the_event_id_index_replaces_the_constraint_on_a_database_with_messages() {
        let url = super::super::test_support::fresh_database().await;
        tokio::task::spawn_blocking(move || {
            let mut client = Client::connect(&url, postgres::NoTls).unwrap();
            apply_up_to(&mut client, 8).unwrap();
            let insert = |client: &mut Client, id: &str, event_id: Option<&str>| {
                client.execute(
                    "INSERT INTO message (id, app_id, event_type, event_id, payload_expires_at, created_at)
                     VALUES ($1, 'app_m', 't', $2, now(), now())",
                    &[&id, &event_id],
                )
            };
            insert(&mut client, "msg_1", Some("evt-1")).unwrap();
            insert(&mut client, "msg_2", None).unwrap();
            insert(&mut client, "msg_3", None).unwrap();

            migrate(&mut client).unwrap();
            assert_eq!(state(&mut client).unwrap().current, MIGRATIONS.len(), "migrated");
            let kept: i64 = client.query_one("SELECT count(*) FROM message", &[]).unwrap().get(0);
            assert_eq!(kept, 3, "the messages are kept");
            let taken = insert(&mut client, "msg_4", Some("evt-1")).unwrap_err();
            assert_eq!(taken.code(), Some(&SqlState::UNIQUE_VIOLATION), "{taken}");
            insert(&mut client, "msg_5", None).unwrap();
            let constraints: i64 = client
                .query_one("SELECT count(*) FROM pg_constraint WHERE conname = 'message_app_id_event_id_key'", &[])
                .unwrap()
                .get(0);
            assert_eq!(constraints, 0, "the constraint is gone");
        })
        .await
        .unwrap();
    }
}

use postgres::Row;

use super::sql::*;
use super::PgTx;
use crate::ids::IdKind;
use crate::store::model::{Message, NewDelivery, Timestamp};
use crate::store::page::{ListQuery, Page};
use crate::store::{MessageFilter, MessageRepo, StoreError, StoreResult};

pub(super) const COLUMNS: &str =
    "id, app_id, event_type, event_id, channels, tags, payload, payload_expires_at, deliver_at, created_at";

/// Decodes the message columns starting at column `at` (for joins).
pub(super) fn row_at(r: &Row, at: usize) -> StoreResult<Message> {
    Ok(Message {
        id: col(r, at)?,
        app_id: col(r, at + 1)?,
        event_type: col(r, at + 2)?,
        event_id: col(r, at + 3)?,
        channels: opt_from_json(col(r, at + 4)?)?,
        tags: opt_from_json(col(r, at + 5)?)?,
        payload: col(r, at + 6)?,
        payload_expires_at: col(r, at + 7)?,
        deliver_at: col::<Option<Timestamp>>(r, at + 8)?,
        created_at: col(r, at + 9)?,
    })
}

pub(super) fn row(r: &Row) -> StoreResult<Message> {
    row_at(r, 0)
}

impl MessageRepo for PgTx<'_, '_> {
    fn insert_message(&mut self, m: &Message) -> StoreResult<()> {
        // No foreign key to the application (schema 8): it is held against
        // deletion instead (`app_locks`), and the insert, a statement of
        // its own, finds it.
        super::app_locks::hold_shared(self, &[&m.app_id])?;
        let row = self.query_one(
            &format!(
                "WITH app AS (SELECT 1 FROM application WHERE id = $2), inserted AS (
                   INSERT INTO message ({COLUMNS}) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 FROM app
                   ON CONFLICT DO NOTHING RETURNING 1
                 )
                 SELECT (SELECT count(*) FROM app), (SELECT count(*) FROM inserted)"
            ),
            &[
                &m.id,
                &m.app_id,
                &m.event_type,
                &m.event_id,
                &opt_json(&m.channels),
                &opt_json(&m.tags),
                &m.payload,
                &m.payload_expires_at,
                &m.deliver_at,
                &m.created_at,
            ],
        )?;
        match (col::<i64>(&row, 0)?, col::<i64>(&row, 1)?) {
            (0, _) => Err(StoreError::NotFound),
            (_, 0) => Err(StoreError::Conflict("a message with this eventId")),
            _ => Ok(()),
        }
    }

    fn insert_messages_with_fanout(&mut self, msgs: &[&Message], fanout: &[NewDelivery]) -> StoreResult<Vec<bool>> {
        if msgs.is_empty() {
            return Ok(Vec::new());
        }
        // Inserted in (app, eventId) order, so two batches that share
        // eventIds wait on each other in one order rather than deadlock.
        let mut sorted = msgs.to_vec();
        sorted.sort_by(|a, b| (&a.app_id, &a.event_id).cmp(&(&b.app_id, &b.event_id)));
        let ordered = &sorted;
        let column =
            |f: &dyn Fn(&Message) -> Option<String>| ordered.iter().map(|m| f(m)).collect::<Vec<Option<String>>>();
        let ids = column(&|m| Some(m.id.clone()));
        let apps = column(&|m| Some(m.app_id.clone()));
        let types = column(&|m| Some(m.event_type.clone()));
        let event_ids = column(&|m| m.event_id.clone());
        let channels = column(&|m| opt_json(&m.channels));
        let tags = column(&|m| opt_json(&m.tags));
        let payloads = column(&|m| m.payload.clone());
        let expires: Vec<Timestamp> = sorted.iter().map(|m| m.payload_expires_at).collect();
        let deliver: Vec<Option<Timestamp>> = sorted.iter().map(|m| m.deliver_at).collect();
        let created: Vec<Timestamp> = sorted.iter().map(|m| m.created_at).collect();
        let to = DeliveryColumns::of(fanout);
        // No foreign keys (see `insert_message` and `insert_deliveries`):
        // the applications are held, and every row is checked against its
        // application here. The deliveries go only to the messages this
        // statement inserted, so a message refused for its eventId has
        // none, and a delivery needs no lookup of its message.
        //
        // Only what can conflict is inserted with ON CONFLICT, whose
        // speculative insertion checks every unique index before the row
        // goes in and confirms it in a WAL record of its own after: a
        // message with an eventId. A message without one has a fresh id.
        // Every delivery belongs to a message this statement inserted,
        // which no other transaction can see yet.
        let mut app_ids: Vec<&str> = sorted.iter().map(|m| m.app_id.as_str()).collect();
        app_ids.dedup();
        super::app_locks::hold_shared(self, &app_ids)?;
        let row = self.query_one(
            &format!(
                "WITH apps AS (SELECT id FROM application WHERE id = ANY($2::text[])), batch AS (
                   SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                                        $7::text[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[])
                     AS m({COLUMNS})
                   WHERE m.app_id IN (SELECT id FROM apps)
                 ), plain AS (
                   INSERT INTO message ({COLUMNS}) SELECT * FROM batch WHERE event_id IS NULL
                   RETURNING id, app_id
                 ), keyed AS (
                   INSERT INTO message ({COLUMNS}) SELECT * FROM batch WHERE event_id IS NOT NULL
                   ON CONFLICT DO NOTHING RETURNING id, app_id
                 ), inserted AS (
                   SELECT id, app_id FROM plain UNION ALL SELECT id, app_id FROM keyed
                 ), owed AS (
                   SELECT d.* FROM unnest($11::text[], $12::text[], $13::text[], $14::timestamptz[])
                     AS d(msg_id, endpoint_id, app_id, due)
                   WHERE (d.msg_id, d.app_id) IN (SELECT id, app_id FROM inserted)
                 ), delivered AS (
                   INSERT INTO delivery (msg_id, endpoint_id, app_id, status, attempts, next_attempt_at, updated_at)
                   SELECT msg_id, endpoint_id, app_id, {PENDING}, 0, COALESCE(due, now()), now() FROM owed
                   WHERE (endpoint_id, app_id) IN (SELECT id, app_id FROM endpoint WHERE id = ANY($12::text[]))
                   RETURNING endpoint_id, next_attempt_at
                 ), queued AS ({})
                 SELECT (SELECT count(*) FROM apps), ARRAY(SELECT id FROM inserted),
                        (SELECT count(*) FROM owed), (SELECT count(*) FROM delivered)",
                super::deliveries::mark_due("SELECT endpoint_id, next_attempt_at AS due FROM delivered")
            ),
            &[
                &ids,
                &apps,
                &types,
                &event_ids,
                &channels,
                &tags,
                &payloads,
                &expires,
                &deliver,
                &created,
                &to.msg_ids,
                &to.endpoint_ids,
                &to.app_ids,
                &to.due,
            ],
        )?;
        if col::<i64>(&row, 0)? < app_ids.len() as i64 {
            return Err(StoreError::NotFound);
        }
        let inserted: std::collections::HashSet<String> = col::<Vec<String>>(&row, 1)?.into_iter().collect();
        let (owed, delivered): (i64, i64) = (col(&row, 2)?, col(&row, 3)?);
        // A message inserted here has no deliveries yet: one missing is
        // its endpoint, gone from its application.
        if delivered < owed {
            return Err(StoreError::NotFound);
        }
        for d in to.sorted.iter().filter(|d| inserted.contains(&d.msg_id)) {
            self.touch(&d.endpoint_id, d.due_at);
        }
        Ok(msgs.iter().map(|m| inserted.contains(&m.id)).collect())
    }

    fn message(&mut self, app_id: &str, key: &str) -> StoreResult<Option<Message>> {
        let column = if IdKind::Message.matches(key) { "id" } else { "event_id" };
        self.query_opt(&format!("SELECT {COLUMNS} FROM message WHERE app_id = $1 AND {column} = $2"), &[&app_id, &key])?
            .map(|r| row(&r))
            .transpose()
    }

    fn list_messages(&mut self, app_id: &str, filter: &MessageFilter, query: &ListQuery) -> StoreResult<Page<Message>> {
        let mut params = Params::default();
        let mut base = format!("SELECT {COLUMNS} FROM message WHERE app_id = {}", params.add(app_id.to_string()));
        push_content_match(&mut base, "message", filter, &mut params);
        push_time_range(&mut base, "message", filter, &mut params);
        paginate(self, &base, params, "id", query, row, |m| m.id.clone())
    }

    fn message_ids_with_payload(
        &mut self,
        app_id: &str,
        after: &str,
        before: &str,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        let rows = self.query(
            "SELECT id FROM message WHERE app_id = $1 AND id > $2 AND id < $3 AND payload IS NOT NULL
             ORDER BY id LIMIT $4",
            &[&app_id, &after, &before, &(limit as i64)],
        )?;
        rows.iter().map(|r| col(r, 0)).collect()
    }

    fn expunge_message_payload(&mut self, app_id: &str, msg_id: &str) -> StoreResult<()> {
        if self.execute("UPDATE message SET payload = NULL WHERE app_id = $1 AND id = $2", &[&app_id, &msg_id])? == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    fn insert_deliveries(&mut self, deliveries: &[NewDelivery]) -> StoreResult<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let DeliveryColumns { sorted, msg_ids, endpoint_ids, app_ids, due } = DeliveryColumns::of(deliveries);
        // Deliveries have no foreign keys (schema 7): a key's check was a
        // query and a row lock per row. The applications are held against
        // the deletion of their endpoints instead (`app_locks`; usually
        // already, by the read of the fan-out's targets), and the insert, a statement of
        // its own, finds its endpoints and messages in their own
        // application. The messages are this transaction's own (see the
        // trait): no one else can delete them before it commits.
        super::app_locks::hold_shared(self, &app_ids)?;
        let row = self.query_one(
            &format!(
                "WITH found AS (
                   SELECT d.* FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
                     AS d(msg_id, endpoint_id, app_id, due)
                   WHERE (d.endpoint_id, d.app_id) IN (SELECT id, app_id FROM endpoint WHERE id = ANY($2::text[]))
                     AND (d.msg_id, d.app_id) IN (SELECT id, app_id FROM message WHERE id = ANY($1::text[]))
                 ), inserted AS (
                   INSERT INTO delivery (msg_id, endpoint_id, app_id, status, attempts, next_attempt_at, updated_at)
                   SELECT msg_id, endpoint_id, app_id, {PENDING}, 0, COALESCE(due, now()), now() FROM found
                   ON CONFLICT DO NOTHING RETURNING 1
                 )
                 SELECT (SELECT count(*) FROM found), (SELECT count(*) FROM inserted)"
            ),
            &[&msg_ids, &endpoint_ids, &app_ids, &due],
        )?;
        let (found, inserted): (i64, i64) = (col(&row, 0)?, col(&row, 1)?);
        if found < sorted.len() as i64 {
            return Err(StoreError::NotFound);
        }
        if inserted < found {
            return Err(StoreError::Conflict("a delivery of this message to this endpoint"));
        }
        super::deliveries::enqueue(self, &endpoint_ids, &due)?;
        for d in sorted {
            self.touch(&d.endpoint_id, d.due_at);
        }
        Ok(())
    }
}

/// Deliveries to insert, as the statements' array parameters.
struct DeliveryColumns<'d> {
    /// In endpoint order, the order every fan-out inserts them in. (Queue
    /// entries are locked only when not due already, in the order the
    /// statement's plan reads them; a deadlock there runs the transaction
    /// again.)
    sorted: Vec<&'d NewDelivery>,
    msg_ids: Vec<&'d str>,
    endpoint_ids: Vec<&'d str>,
    app_ids: Vec<&'d str>,
    due: Vec<Option<Timestamp>>,
}

impl<'d> DeliveryColumns<'d> {
    fn of(deliveries: &'d [NewDelivery]) -> DeliveryColumns<'d> {
        let mut sorted: Vec<&NewDelivery> = deliveries.iter().collect();
        sorted.sort_by(|a, b| a.endpoint_id.cmp(&b.endpoint_id));
        DeliveryColumns {
            msg_ids: sorted.iter().map(|d| d.msg_id.as_str()).collect(),
            endpoint_ids: sorted.iter().map(|d| d.endpoint_id.as_str()).collect(),
            app_ids: sorted.iter().map(|d| d.app_id.as_str()).collect(),
            due: sorted.iter().map(|d| d.due_at).collect(),
            sorted,
        }
    }
}

/// Appends `AND …` conditions on the event type, channel and tag of the
/// message table aliased `alias`.
pub(super) fn push_content_match(sql: &mut String, alias: &str, f: &MessageFilter, params: &mut Params) {
    if !f.event_types.is_empty() {
        sql.push_str(&format!(" AND {alias}.event_type = ANY({})", params.add(f.event_types.clone())));
    }
    if let Some(tag) = &f.tag {
        sql.push_str(&format!(" AND {alias}.tags IS NOT NULL AND {alias}.tags::jsonb ? {}", params.add(tag.clone())));
    }
    if let Some(channel) = &f.channel {
        let p = params.add(channel.clone());
        sql.push_str(&format!(" AND {alias}.channels IS NOT NULL AND {alias}.channels::jsonb ? {p}"));
    }
}

/// Appends `AND …` conditions on the creation time of the message table
/// aliased `alias` (`before` and `after` are exclusive).
pub(super) fn push_time_range(sql: &mut String, alias: &str, f: &MessageFilter, params: &mut Params) {
    if let Some(before) = f.before {
        sql.push_str(&format!(" AND {alias}.created_at < {}", params.add(before)));
    }
    if let Some(after) = f.after {
        sql.push_str(&format!(" AND {alias}.created_at > {}", params.add(after)));
    }
}

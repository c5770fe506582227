use rusqlite::types::Value as SqlValue;
use rusqlite::{params, OptionalExtension, Row};

use super::sql::*;
use super::{backend, SqliteTx};
use crate::ids::IdKind;
use crate::store::model::{DeliveryStatus, Message, NewDelivery};
use crate::store::page::{ListQuery, Page};
use crate::store::{MessageFilter, MessageRepo, StoreError, StoreResult};

pub(super) const COLUMNS: &str =
    "id, app_id, event_type, event_id, channels, tags, payload, payload_expires_at, deliver_at, created_at";

pub(super) fn row(r: &Row<'_>) -> rusqlite::Result<Message> {
    row_at(r, 0)
}

/// Decodes the message columns starting at column `at` (for joins).
pub(super) fn row_at(r: &Row<'_>, at: usize) -> rusqlite::Result<Message> {
    Ok(Message {
        id: r.get(at)?,
        app_id: r.get(at + 1)?,
        event_type: r.get(at + 2)?,
        event_id: r.get(at + 3)?,
        channels: opt_from_json(r.get(at + 4)?)?,
        tags: opt_from_json(r.get(at + 5)?)?,
        payload: r.get(at + 6)?,
        payload_expires_at: from_ms(r.get(at + 7)?),
        deliver_at: opt_from_ms(r.get(at + 8)?),
        created_at: from_ms(r.get(at + 9)?),
    })
}

impl MessageRepo for SqliteTx<'_> {
    fn insert_message(&mut self, m: &Message) -> StoreResult<()> {
        self.conn
            .prepare_cached(&format!("INSERT INTO message ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"))
            .and_then(|mut s| {
                s.execute(params![
                    m.id,
                    m.app_id,
                    m.event_type,
                    m.event_id,
                    opt_json(&m.channels),
                    opt_json(&m.tags),
                    m.payload,
                    ms(&m.payload_expires_at),
                    m.deliver_at.as_ref().map(ms),
                    ms(&m.created_at),
                ])
            })
            .map_err(conflict_as("a message with this eventId"))?;
        Ok(())
    }

    fn insert_messages_with_fanout(&mut self, msgs: &[&Message], fanout: &[NewDelivery]) -> StoreResult<Vec<bool>> {
        let mut inserted = Vec::with_capacity(msgs.len());
        let mut written = std::collections::HashSet::new();
        for m in msgs {
            inserted.push(match self.insert_message(m) {
                Ok(()) => written.insert((m.id.as_str(), m.app_id.as_str())),
                Err(crate::store::StoreError::Conflict(_)) => false,
                Err(e) => return Err(e),
            });
        }
        let owed: Vec<NewDelivery> =
            fanout.iter().filter(|d| written.contains(&(d.msg_id.as_str(), d.app_id.as_str()))).cloned().collect();
        self.insert_deliveries(&owed)?;
        Ok(inserted)
    }

    fn message(&mut self, app_id: &str, key: &str) -> StoreResult<Option<Message>> {
        let column = if IdKind::Message.matches(key) { "id" } else { "event_id" };
        self.conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM message WHERE app_id = ? AND {column} = ?"))
            .and_then(|mut s| s.query_row([app_id, key], row).optional())
            .map_err(backend)
    }

    fn list_messages(&mut self, app_id: &str, filter: &MessageFilter, query: &ListQuery) -> StoreResult<Page<Message>> {
        let mut base = format!("SELECT {COLUMNS} FROM message WHERE app_id = ?");
        let mut params: Vec<SqlValue> = vec![app_id.to_string().into()];
        push_content_match(&mut base, "message", filter, &mut params);
        push_time_range(&mut base, "message", filter, &mut params);
        paginate(self.conn, &base, params, "id", query, row, |m| m.id.clone())
    }

    fn expunge_message_payload(&mut self, app_id: &str, msg_id: &str) -> StoreResult<()> {
        let changed = self
            .conn
            .execute("UPDATE message SET payload = NULL WHERE app_id = ? AND id = ?", [app_id, msg_id])
            .map_err(backend)?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    fn message_ids_with_payload(
        &mut self,
        app_id: &str,
        after: &str,
        before: &str,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id FROM message WHERE app_id = ? AND id > ? AND id < ? AND payload IS NOT NULL
                 ORDER BY id LIMIT ?",
            )
            .map_err(backend)?;
        let rows = stmt.query_map(params![app_id, after, before, limit as i64], |r| r.get(0)).map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<String>>>().map_err(backend)
    }

    fn insert_deliveries(&mut self, deliveries: &[NewDelivery]) -> StoreResult<()> {
        let now = chrono::Utc::now();
        let mut sorted: Vec<&NewDelivery> = deliveries.iter().collect();
        sorted.sort_by(|a, b| a.endpoint_id.cmp(&b.endpoint_id));
        let mut insert = self
            .conn
            .prepare_cached(
                "INSERT INTO delivery (msg_id, endpoint_id, app_id, status, attempts, next_attempt_at, updated_at)
                 VALUES (?, ?, ?, ?, 0, ?, ?)",
            )
            .map_err(backend)?;
        for d in sorted {
            let due = ms(&d.due_at.unwrap_or(now));
            insert
                .execute(params![d.msg_id, d.endpoint_id, d.app_id, DeliveryStatus::Pending as i64, due, ms(&now)])
                .map_err(conflict_as("a delivery of this message to this endpoint"))?;
            super::deliveries::enqueue(self.conn, &d.endpoint_id, due)?;
        }
        self.wake |= !deliveries.is_empty();
        Ok(())
    }
}

/// Appends `AND …` conditions on the event type, channel and tag of the
/// message table aliased `alias`.
pub(super) fn push_content_match(sql: &mut String, alias: &str, f: &MessageFilter, params: &mut Vec<SqlValue>) {
    if !f.event_types.is_empty() {
        sql.push_str(&format!(" AND {alias}.event_type IN ({})", vec!["?"; f.event_types.len()].join(",")));
        params.extend(f.event_types.iter().map(|t| SqlValue::Text(t.clone())));
    }
    if let Some(tag) = &f.tag {
        sql.push_str(&format!(" AND EXISTS (SELECT 1 FROM json_each({alias}.tags) WHERE json_each.value = ?)"));
        params.push(tag.clone().into());
    }
    if let Some(channel) = &f.channel {
        sql.push_str(&format!(" AND EXISTS (SELECT 1 FROM json_each({alias}.channels) WHERE json_each.value = ?)"));
        params.push(channel.clone().into());
    }
}

/// Appends `AND …` conditions on the creation time of the message table
/// aliased `alias` (`before` and `after` are exclusive).
pub(super) fn push_time_range(sql: &mut String, alias: &str, f: &MessageFilter, params: &mut Vec<SqlValue>) {
    if let Some(before) = &f.before {
        sql.push_str(&format!(" AND {alias}.created_at < ?"));
        params.push(ms(before).into());
    }
    if let Some(after) = &f.after {
        sql.push_str(&format!(" AND {alias}.created_at > ?"));
        params.push(ms(after).into());
    }
}

/// The writer runs the statements one after the other: no round trips to
/// save in process.
impl crate::store::MessageBatchRepo for SqliteTx<'_> {}

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, OptionalExtension, Row};

use super::sql::*;
use super::{backend, SqliteTx};
use crate::store::model::{Attempt, AttemptTrigger, Delivery, DeliveryStatus, Message};
use crate::store::page::{ListQuery, Page};
use crate::store::{AttemptFilter, AttemptRepo, MessageFilter, StoreResult};

const COLUMNS: &str = "id, msg_id, endpoint_id, app_id, url, status, response_status_code, response, \
                       response_duration_ms, trigger_type, error, created_at";

fn row(r: &Row<'_>) -> rusqlite::Result<Attempt> {
    Ok(Attempt {
        id: r.get(0)?,
        msg_id: r.get(1)?,
        endpoint_id: r.get(2)?,
        app_id: r.get(3)?,
        url: r.get(4)?,
        status: status_at(r, 5)?,
        response_status_code: r.get(6)?,
        response: r.get(7)?,
        response_duration_ms: r.get(8)?,
        trigger: if r.get::<_, i64>(9)? == 1 { AttemptTrigger::Manual } else { AttemptTrigger::Scheduled },
        error: r.get(10)?,
        created_at: from_ms(r.get(11)?),
    })
}

pub(super) const DELIVERY_COLUMNS: &str = "msg_id, endpoint_id, app_id, status, attempts, next_attempt_at, updated_at";

pub(super) fn delivery_row(r: &Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        msg_id: r.get(0)?,
        endpoint_id: r.get(1)?,
        app_id: r.get(2)?,
        status: status_at(r, 3)?,
        attempts: r.get(4)?,
        next_attempt_at: opt_from_ms(r.get(5)?),
        updated_at: from_ms(r.get(6)?),
    })
}

/// Appends `AND` the response status in `column` is in the hundred
/// `class` (`0`: no response).
pub(super) fn push_status_code_class(sql: &mut String, column: &str, class: u16, params: &mut Vec<SqlValue>) {
    if class == 0 {
        sql.push_str(&format!(" AND {column} = 0"));
    } else {
        sql.push_str(&format!(" AND {column} >= ? AND {column} < ?"));
        params.push(i64::from(class).into());
        params.push((i64::from(class) + 100).into());
    }
}

impl AttemptRepo for SqliteTx<'_> {
    fn list_attempts(&mut self, app_id: &str, f: &AttemptFilter, query: &ListQuery) -> StoreResult<Page<Attempt>> {
        let mut base = format!("SELECT {COLUMNS} FROM attempt WHERE app_id = ?");
        let mut params: Vec<SqlValue> = vec![app_id.to_string().into()];
        if let Some(m) = &f.msg_id {
            base.push_str(" AND msg_id = ?");
            params.push(m.clone().into());
        }
        if let Some(e) = &f.endpoint_id {
            base.push_str(" AND endpoint_id = ?");
            params.push(e.clone().into());
        }
        if let Some(s) = f.status {
            base.push_str(" AND status = ?");
            params.push((s as i64).into());
        }
        if let Some(class) = f.status_code_class {
            push_status_code_class(&mut base, "response_status_code", class, &mut params);
        }
        if f.message.matches_content() {
            base.push_str(" AND EXISTS (SELECT 1 FROM message m WHERE m.id = attempt.msg_id");
            super::messages::push_content_match(&mut base, "m", &f.message, &mut params);
            base.push(')');
        }
        if let Some(b) = &f.before {
            base.push_str(" AND created_at < ?");
            params.push(ms(b).into());
        }
        if let Some(a) = &f.after {
            base.push_str(" AND created_at > ?");
            params.push(ms(a).into());
        }
        paginate(self.conn, &base, params, "id", query, row, |a| a.id.clone())
    }

    fn attempt(&mut self, app_id: &str, msg_id: &str, attempt_id: &str) -> StoreResult<Option<Attempt>> {
        self.conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM attempt WHERE app_id = ? AND msg_id = ? AND id = ?"))
            .and_then(|mut s| s.query_row(params![app_id, msg_id, attempt_id], row).optional())
            .map_err(backend)
    }

    fn expunge_attempt_response(&mut self, app_id: &str, msg_id: &str, attempt_id: &str) -> StoreResult<()> {
        let changed = self
            .conn
            .prepare_cached("UPDATE attempt SET response = '' WHERE app_id = ? AND msg_id = ? AND id = ?")
            .and_then(|mut s| s.execute(params![app_id, msg_id, attempt_id]))
            .map_err(backend)?;
        if changed == 0 {
            return Err(crate::store::StoreError::NotFound);
        }
        Ok(())
    }

    fn list_endpoint_messages(
        &mut self,
        endpoint_id: &str,
        status: Option<DeliveryStatus>,
        filter: &MessageFilter,
        query: &ListQuery,
    ) -> StoreResult<Page<(Delivery, Message)>> {
        let delivery_columns = qualified(DELIVERY_COLUMNS, "d");
        let message_columns = qualified(super::messages::COLUMNS, "m");
        let mut base = format!(
            "SELECT {delivery_columns}, {message_columns} FROM delivery d JOIN message m ON m.id = d.msg_id
             WHERE d.endpoint_id = ?"
        );
        let mut params: Vec<SqlValue> = vec![endpoint_id.to_string().into()];
        if let Some(s) = status {
            base.push_str(" AND d.status = ?");
            params.push((s as i64).into());
        }
        super::messages::push_content_match(&mut base, "m", filter, &mut params);
        super::messages::push_time_range(&mut base, "m", filter, &mut params);
        let width = DELIVERY_COLUMNS.split(", ").count();
        paginate(
            self.conn,
            &base,
            params,
            "d.msg_id",
            query,
            |r| Ok((delivery_row(r)?, super::messages::row_at(r, width)?)),
            |(d, _)| d.msg_id.clone(),
        )
    }

    fn deliveries_of_message(&mut self, app_id: &str, msg_id: &str) -> StoreResult<Vec<Delivery>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM delivery WHERE app_id = ? AND msg_id = ? ORDER BY endpoint_id"
            ))
            .map_err(backend)?;
        let rows = stmt.query_map([app_id, msg_id], delivery_row).map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
    }

    fn list_message_deliveries(
        &mut self,
        app_id: &str,
        msg_id: &str,
        query: &ListQuery,
    ) -> StoreResult<Page<Delivery>> {
        let base = format!("SELECT {DELIVERY_COLUMNS} FROM delivery WHERE app_id = ? AND msg_id = ?");
        let params = vec![SqlValue::Text(app_id.into()), SqlValue::Text(msg_id.into())];
        paginate(self.conn, &base, params, "endpoint_id", query, delivery_row, |d| d.endpoint_id.clone())
    }
}

use postgres::Row;

use super::sql::*;
use super::PgTx;
use crate::store::model::{Attempt, AttemptTrigger, Delivery, DeliveryStatus, Message, Timestamp};
use crate::store::page::{ListQuery, Page};
use crate::store::{AttemptFilter, AttemptRepo, MessageFilter, StoreResult};

pub(super) const COLUMNS: &str = "id, msg_id, endpoint_id, app_id, url, status, response_status_code, response, \
                                  response_duration_ms, trigger_type, error, created_at";

fn row(r: &Row) -> StoreResult<Attempt> {
    Ok(Attempt {
        id: col(r, 0)?,
        msg_id: col(r, 1)?,
        endpoint_id: col(r, 2)?,
        app_id: col(r, 3)?,
        url: col(r, 4)?,
        status: status(r, 5)?,
        response_status_code: col::<i32>(r, 6)? as u16,
        response: col(r, 7)?,
        response_duration_ms: col(r, 8)?,
        trigger: if col::<i16>(r, 9)? == 1 { AttemptTrigger::Manual } else { AttemptTrigger::Scheduled },
        error: col(r, 10)?,
        created_at: col(r, 11)?,
    })
}

pub(super) const DELIVERY_COLUMNS: &str = "msg_id, endpoint_id, app_id, status, attempts, next_attempt_at, updated_at";

pub(super) fn delivery_row(r: &Row) -> StoreResult<Delivery> {
    Ok(Delivery {
        msg_id: col(r, 0)?,
        endpoint_id: col(r, 1)?,
        app_id: col(r, 2)?,
        status: status(r, 3)?,
        attempts: col::<i32>(r, 4)? as u32,
        next_attempt_at: col::<Option<Timestamp>>(r, 5)?,
        updated_at: col(r, 6)?,
    })
}

/// Appends `AND` the response status in `column` is in the hundred
/// `class` (`0`: no response).
pub(super) fn push_status_code_class(sql: &mut String, column: &str, class: u16, params: &mut Params) {
    if class == 0 {
        sql.push_str(&format!(" AND {column} = 0"));
    } else {
        let (low, high) = (params.add(i32::from(class)), params.add(i32::from(class) + 100));
        sql.push_str(&format!(" AND {column} >= {low} AND {column} < {high}"));
    }
}

impl AttemptRepo for PgTx<'_, '_> {
    fn list_attempts(&mut self, app_id: &str, f: &AttemptFilter, query: &ListQuery) -> StoreResult<Page<Attempt>> {
        let mut params = Params::default();
        let mut base = format!("SELECT {COLUMNS} FROM attempt WHERE app_id = {}", params.add(app_id.to_string()));
        if let Some(m) = &f.msg_id {
            base.push_str(&format!(" AND msg_id = {}", params.add(m.clone())));
        }
        if let Some(e) = &f.endpoint_id {
            base.push_str(&format!(" AND endpoint_id = {}", params.add(e.clone())));
        }
        if let Some(s) = f.status {
            base.push_str(&format!(" AND status = {}", params.add(s as i16)));
        }
        if let Some(class) = f.status_code_class {
            push_status_code_class(&mut base, "response_status_code", class, &mut params);
        }
        if f.message.matches_content() {
            base.push_str(" AND EXISTS (SELECT 1 FROM message m WHERE m.id = attempt.msg_id");
            super::messages::push_content_match(&mut base, "m", &f.message, &mut params);
            base.push(')');
        }
        if let Some(b) = f.before {
            base.push_str(&format!(" AND created_at < {}", params.add(b)));
        }
        if let Some(a) = f.after {
            base.push_str(&format!(" AND created_at > {}", params.add(a)));
        }
        paginate(self, &base, params, "id", query, row, |a| a.id.clone())
    }

    fn attempt(&mut self, app_id: &str, msg_id: &str, attempt_id: &str) -> StoreResult<Option<Attempt>> {
        self.query_opt(
            &format!("SELECT {COLUMNS} FROM attempt WHERE app_id = $1 AND msg_id = $2 AND id = $3"),
            &[&app_id, &msg_id, &attempt_id],
        )?
        .map(|r| row(&r))
        .transpose()
    }

    fn deliveries_of_message(&mut self, app_id: &str, msg_id: &str) -> StoreResult<Vec<Delivery>> {
        let rows = self.query(
            &format!("SELECT {DELIVERY_COLUMNS} FROM delivery WHERE app_id = $1 AND msg_id = $2 ORDER BY endpoint_id"),
            &[&app_id, &msg_id],
        )?;
        rows.iter().map(delivery_row).collect()
    }

    fn list_message_deliveries(
        &mut self,
        app_id: &str,
        msg_id: &str,
        query: &ListQuery,
    ) -> StoreResult<Page<Delivery>> {
        let mut params = Params::default();
        let base = format!(
            "SELECT {DELIVERY_COLUMNS} FROM delivery WHERE app_id = {} AND msg_id = {}",
            params.add(app_id.to_string()),
            params.add(msg_id.to_string())
        );
        paginate(self, &base, params, "endpoint_id", query, delivery_row, |d| d.endpoint_id.clone())
    }

    fn expunge_attempt_response(&mut self, app_id: &str, msg_id: &str, attempt_id: &str) -> StoreResult<()> {
        let changed = self.execute(
            "UPDATE attempt SET response = '' WHERE app_id = $1 AND msg_id = $2 AND id = $3",
            &[&app_id, &msg_id, &attempt_id],
        )?;
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
        let mut params = Params::default();
        let mut base = format!(
            "SELECT {delivery_columns}, {message_columns} FROM delivery d JOIN message m ON m.id = d.msg_id
             WHERE d.endpoint_id = {}",
            params.add(endpoint_id.to_string())
        );
        if let Some(s) = status {
            base.push_str(&format!(" AND d.status = {}", params.add(s as i16)));
        }
        super::messages::push_content_match(&mut base, "m", filter, &mut params);
        super::messages::push_time_range(&mut base, "m", filter, &mut params);
        let width = DELIVERY_COLUMNS.split(", ").count();
        paginate(
            self,
            &base,
            params,
            "d.msg_id",
            query,
            |r| Ok((delivery_row(r)?, super::messages::row_at(r, width)?)),
            |(d, _)| d.msg_id.clone(),
        )
    }
}

//! Operational webhooks: Hookline tells the platform what happens to its
//! customers' endpoints (created, updated, deleted, disabled, enabled) and
//! to deliveries that gave up, keep failing or recovered, with Svix's event
//! types and payloads.
//!
//! They travel the same road as every webhook: the operational endpoints
//! belong to an internal application that the API never shows, and each
//! event is a message of that application, written in the transaction that
//! made it happen. Retries, leases, signatures and crash safety come with it.

use chrono::SecondsFormat;
use serde_json::{json, Value};

use crate::ids::IdKind;
use crate::store::model::{now, Application, Endpoint, FanoutTarget, Message, NewDelivery, Timestamp};
use crate::store::queue::{AttemptOutcome, NextStep};
use crate::store::{StoreError, StoreResult, Tx};

/// The internal application that owns the operational endpoints. Not a
/// well-formed application id, so no id Hookline issues can collide.
pub const APP_ID: &str = "app_hookline_operational";

/// The operational event types Hookline sends (Svix's names).
pub const EVENT_TYPES: [&str; 8] = [
    "endpoint.created",
    "endpoint.updated",
    "endpoint.deleted",
    "endpoint.disabled",
    "endpoint.enabled",
    "message.attempt.exhausted",
    "message.attempt.failing",
    "message.attempt.recovered",
];

/// How long an operational event's payload is kept for resending.
const KEEP_PAYLOAD: chrono::Duration = chrono::Duration::days(90);

/// The internal application, looked up by id (a key that is not a
/// well-formed id would otherwise be taken as a uid).
pub fn app(tx: &mut dyn Tx) -> StoreResult<Option<Application>> {
    tx.application_for_update(APP_ID)
}

/// The operational endpoints, read once by a transaction that may announce
/// something, so that events nobody wants cost no further lookups.
pub struct Listeners(Vec<FanoutTarget>);

impl Listeners {
    pub fn read(tx: &mut dyn Tx) -> StoreResult<Listeners> {
        // Held until the transaction ends, as a fan-out's targets are: an
        // announcement to an endpoint deleted meanwhile would be refused,
        // and the announcing request with it.
        let mut targets = tx.fanout_targets_of(&[APP_ID.to_string()])?;
        Ok(Listeners(targets.remove(APP_ID).unwrap_or_default()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn wants(&self, event_type: &str) -> bool {
        self.0.iter().any(|t| t.wants(event_type, None))
    }
}

/// Creates the internal application if it is missing (idempotent; safe
/// when several nodes start at once).
pub fn ensure_app(tx: &mut dyn Tx) -> StoreResult<()> {
    if app(tx)?.is_some() {
        return Ok(());
    }
    let now = now();
    let app = Application {
        id: APP_ID.into(),
        uid: None,
        name: "Hookline operational webhooks".into(),
        rate_limit: None,
        metadata: Default::default(),
        created_at: now,
        updated_at: now,
    };
    match tx.insert_application(&app) {
        Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

fn rfc3339(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Sends `event_type` with `data` to every operational endpoint that wants
/// it; true when one does.
fn emit(tx: &mut dyn Tx, listeners: &Listeners, event_type: &str, data: Value) -> StoreResult<bool> {
    let wanted: Vec<_> = listeners.0.iter().filter(|t| t.wants(event_type, None)).collect();
    if wanted.is_empty() {
        return Ok(false);
    }
    let now = now();
    let payload = json!({"type": event_type, "timestamp": rfc3339(&now), "data": data});
    let msg = Message {
        id: IdKind::Message.generate_at(now.timestamp_millis()),
        app_id: APP_ID.into(),
        event_type: event_type.into(),
        event_id: None,
        channels: None,
        tags: None,
        payload: Some(payload.to_string()),
        payload_expires_at: now + KEEP_PAYLOAD,
        deliver_at: None,
        created_at: now,
    };
    tx.insert_message(&msg)?;
    let deliveries: Vec<NewDelivery> = wanted
        .iter()
        .map(|t| NewDelivery { msg_id: msg.id.clone(), endpoint_id: t.id.clone(), app_id: APP_ID.into(), due_at: None })
        .collect();
    tx.insert_deliveries(&deliveries)?;
    Ok(true)
}

/// What happened to an endpoint, from the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointChange {
    Created,
    Updated,
    Deleted,
    Disabled,
    Enabled,
}

impl EndpointChange {
    fn event_type(self) -> &'static str {
        match self {
            EndpointChange::Created => "endpoint.created",
            EndpointChange::Updated => "endpoint.updated",
            EndpointChange::Deleted => "endpoint.deleted",
            EndpointChange::Disabled => "endpoint.disabled",
            EndpointChange::Enabled => "endpoint.enabled",
        }
    }
}

/// Svix's `data` of the endpoint events.
fn endpoint_data(app: &Application, ep: &Endpoint) -> Value {
    json!({"appId": app.id, "appUid": app.uid, "endpointId": ep.id, "endpointUid": ep.uid})
}

/// Tells the operational endpoints about a change the API made to a
/// customer's endpoint (nothing for the operational endpoints themselves).
pub fn endpoint_changed(
    tx: &mut dyn Tx,
    listeners: &Listeners,
    app: &Application,
    ep: &Endpoint,
    change: EndpointChange,
) -> StoreResult<()> {
    if app.id == APP_ID || !listeners.wants(change.event_type()) {
        return Ok(());
    }
    let mut data = endpoint_data(app, ep);
    if change == EndpointChange::Disabled {
        data["trigger"] = json!("manual");
    }
    emit(tx, listeners, change.event_type(), data)?;
    Ok(())
}

/// Failed attempts after which a delivery counts as failing (Svix: the
/// fourth), and a later success as recovered.
const FAILING_AFTER: i64 = 4;

/// Tells the operational endpoints what a batch of recorded attempts did:
/// endpoints it disabled, and deliveries that gave up, started failing or
/// recovered. `applied` holds the outcomes that moved their delivery (not
/// those whose claim was lost) with the delivery's attempt count after
/// them. True when it sent any.
pub fn attempts_recorded(
    tx: &mut dyn Tx,
    outcomes: &[AttemptOutcome],
    applied: &[(&AttemptOutcome, i64)],
    disabled: &[String],
) -> StoreResult<bool> {
    // Most batches announce nothing: decide that before any lookup.
    let event_of = |o: &AttemptOutcome, attempts: i64| match o.next {
        _ if o.attempt.app_id == APP_ID => None,
        NextStep::GiveUp => Some("message.attempt.exhausted"),
        NextStep::RetryIn(_) if attempts == FAILING_AFTER => Some("message.attempt.failing"),
        NextStep::Succeeded if attempts > FAILING_AFTER => Some("message.attempt.recovered"),
        _ => None,
    };
    if disabled.is_empty() && applied.iter().all(|(o, n)| event_of(o, *n).is_none()) {
        return Ok(false);
    }
    let listeners = Listeners::read(tx)?;
    if listeners.is_empty() {
        return Ok(false);
    }
    let mut sent = false;
    for endpoint_id in disabled.iter().filter(|_| listeners.wants("endpoint.disabled")) {
        let Some(app_id) = outcomes.iter().find(|o| &o.attempt.endpoint_id == endpoint_id).map(|o| &o.attempt.app_id)
        else {
            continue;
        };
        if app_id == APP_ID {
            continue;
        }
        let (Some(app), Some(ep)) = (tx.application(app_id)?, tx.endpoint(app_id, endpoint_id)?) else { continue };
        let mut data = endpoint_data(&app, &ep);
        data["trigger"] = json!("automatic");
        data["failSince"] = json!(ep.failing_since.as_ref().map(rfc3339));
        sent |= emit(tx, &listeners, "endpoint.disabled", data)?;
    }
    for (o, attempts) in applied {
        let Some(event) = event_of(o, *attempts).filter(|e| listeners.wants(e)) else { continue };
        let a = &o.attempt;
        let (Some(app), Some(msg)) = (tx.application(&a.app_id)?, tx.message(&a.app_id, &a.msg_id)?) else { continue };
        let data = json!({
            "appId": app.id,
            "appUid": app.uid,
            "msgId": msg.id,
            "msgEventId": msg.event_id,
            "endpointId": a.endpoint_id,
            "lastAttempt": {
                "id": a.id,
                "timestamp": rfc3339(&a.created_at),
                "responseStatusCode": a.response_status_code,
            },
        });
        sent |= emit(tx, &listeners, event, data)?;
    }
    Ok(sent)
}

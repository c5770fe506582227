//! The operations a transaction offers, grouped by what they touch.

use super::model::*;
use super::page::{ListQuery, Page};
use super::StoreResult;

pub trait ApplicationRepo {
    fn insert_application(&mut self, app: &Application) -> StoreResult<()>;
    /// By id, or by uid when `key` is not an app id.
    fn application(&mut self, key: &str) -> StoreResult<Option<Application>>;
    fn list_applications(&mut self, query: &ListQuery) -> StoreResult<Page<Application>>;
    fn update_application(&mut self, app: &Application) -> StoreResult<()>;
    fn delete_application(&mut self, id: &str) -> StoreResult<()>;
}

pub trait EventTypeRepo {
    fn insert_event_type(&mut self, et: &EventType) -> StoreResult<()>;
    fn event_type(&mut self, name: &str) -> StoreResult<Option<EventType>>;
    fn list_event_types(&mut self, query: &ListQuery, include_archived: bool) -> StoreResult<Page<EventType>>;
    fn update_event_type(&mut self, et: &EventType) -> StoreResult<()>;
    fn delete_event_type(&mut self, name: &str) -> StoreResult<()>;
}

pub trait EndpointRepo {
    fn insert_endpoint(&mut self, ep: &Endpoint) -> StoreResult<()>;
    /// By id, or by uid within the application.
    fn endpoint(&mut self, app_id: &str, key: &str) -> StoreResult<Option<Endpoint>>;
    fn list_endpoints(&mut self, app_id: &str, query: &ListQuery) -> StoreResult<Page<Endpoint>>;
    /// Every endpoint of an application, for fan-out.
    fn all_endpoints(&mut self, app_id: &str) -> StoreResult<Vec<Endpoint>>;
    fn update_endpoint(&mut self, ep: &Endpoint) -> StoreResult<()>;
    fn delete_endpoint(&mut self, app_id: &str, id: &str) -> StoreResult<()>;
}

/// Filters of a message listing.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub event_types: Vec<String>,
    pub channel: Option<String>,
    pub before: Option<Timestamp>,
    pub after: Option<Timestamp>,
}

pub trait MessageRepo {
    fn insert_message(&mut self, msg: &Message) -> StoreResult<()>;
    /// By id, or by `eventId` within the application.
    fn message(&mut self, app_id: &str, key: &str) -> StoreResult<Option<Message>>;
    fn list_messages(&mut self, app_id: &str, filter: &MessageFilter, query: &ListQuery) -> StoreResult<Page<Message>>;
    fn expunge_message_payload(&mut self, app_id: &str, msg_id: &str) -> StoreResult<()>;
    fn insert_delivery(&mut self, delivery: &Delivery) -> StoreResult<()>;
}

pub trait IdempotencyRepo {
    fn idempotent_response(&mut self, key: &[u8]) -> StoreResult<Option<IdempotentResponse>>;
    fn save_idempotent_response(
        &mut self,
        key: &[u8],
        response: &IdempotentResponse,
        now: Timestamp,
    ) -> StoreResult<()>;
}

/// Everything a transaction can do.
pub trait Tx: ApplicationRepo + EventTypeRepo + EndpointRepo + MessageRepo + AttemptRepo + IdempotencyRepo {}

impl<T: ApplicationRepo + EventTypeRepo + EndpointRepo + MessageRepo + AttemptRepo + IdempotencyRepo> Tx for T {}

/// Filters of an attempt listing.
#[derive(Debug, Clone, Default)]
pub struct AttemptFilter {
    pub msg_id: Option<String>,
    pub endpoint_id: Option<String>,
    pub status: Option<DeliveryStatus>,
    pub before: Option<Timestamp>,
    pub after: Option<Timestamp>,
}

pub trait AttemptRepo {
    fn list_attempts(&mut self, app_id: &str, filter: &AttemptFilter, query: &ListQuery) -> StoreResult<Page<Attempt>>;
    fn attempt(&mut self, app_id: &str, msg_id: &str, attempt_id: &str) -> StoreResult<Option<Attempt>>;
    /// Every delivery of one message, one per endpoint it was sent to.
    fn deliveries_of_message(&mut self, app_id: &str, msg_id: &str) -> StoreResult<Vec<Delivery>>;
}

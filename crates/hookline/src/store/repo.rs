//! The operations a transaction offers, grouped by what they touch.

use std::collections::{HashMap, HashSet};

use super::model::*;
use super::page::{ListQuery, Page};
use super::StoreResult;

pub trait ApplicationRepo {
    fn insert_application(&mut self, app: &Application) -> StoreResult<()>;
    /// By id, or by uid when `key` is not an app id.
    fn application(&mut self, key: &str) -> StoreResult<Option<Application>>;
    /// By id, held until the transaction ends (a change based on what was
    /// read cannot race another).
    fn application_for_update(&mut self, id: &str) -> StoreResult<Option<Application>>;
    /// The ids among `ids` that name an application. The message writer's
    /// first read: on PostgreSQL it also holds them against deletion until
    /// the transaction ends, for the writes that follow.
    fn existing_application_ids(&mut self, ids: &[String]) -> StoreResult<HashSet<String>>;
    fn list_applications(&mut self, query: &ListQuery) -> StoreResult<Page<Application>>;
    fn update_application(&mut self, app: &Application) -> StoreResult<()>;
    fn delete_application(&mut self, id: &str) -> StoreResult<()>;
}

pub trait EventTypeRepo {
    fn insert_event_type(&mut self, et: &EventType) -> StoreResult<()>;
    fn event_type(&mut self, name: &str) -> StoreResult<Option<EventType>>;
    /// The event types among `names` that exist.
    fn event_types_named(&mut self, names: &[String]) -> StoreResult<Vec<EventType>>;
    fn list_event_types(&mut self, query: &ListQuery, include_archived: bool) -> StoreResult<Page<EventType>>;
    fn update_event_type(&mut self, et: &EventType) -> StoreResult<()>;
    fn delete_event_type(&mut self, name: &str) -> StoreResult<()>;
}

pub trait EndpointRepo {
    fn insert_endpoint(&mut self, ep: &Endpoint) -> StoreResult<()>;
    /// By id, or by uid within the application.
    fn endpoint(&mut self, app_id: &str, key: &str) -> StoreResult<Option<Endpoint>>;
    /// As `endpoint`, held until the transaction ends: a read-modify-write
    /// (PATCH) cannot undo a concurrent change such as an auto-disable.
    fn endpoint_for_update(&mut self, app_id: &str, key: &str) -> StoreResult<Option<Endpoint>>;
    fn list_endpoints(&mut self, app_id: &str, query: &ListQuery) -> StoreResult<Page<Endpoint>>;
    /// What fan-out needs of every endpoint of an application.
    fn fanout_targets(&mut self, app_id: &str) -> StoreResult<Vec<FanoutTarget>>;
    /// `fanout_targets` of several applications at once, by application.
    /// The endpoints read stay until the transaction ends: a fan-out to
    /// them is not refused for an endpoint deleted meanwhile.
    fn fanout_targets_of(&mut self, app_ids: &[String]) -> StoreResult<HashMap<String, Vec<FanoutTarget>>>;
    fn count_endpoints(&mut self, app_id: &str) -> StoreResult<usize>;
    /// Every endpoint of every application (key upgrades; not for requests).
    fn every_endpoint(&mut self) -> StoreResult<Vec<Endpoint>>;
    fn update_endpoint(&mut self, ep: &Endpoint) -> StoreResult<()>;
    fn delete_endpoint(&mut self, app_id: &str, id: &str) -> StoreResult<()>;
}

/// Filters of a message listing.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub event_types: Vec<String>,
    pub channel: Option<String>,
    pub tag: Option<String>,
    pub before: Option<Timestamp>,
    pub after: Option<Timestamp>,
}

impl MessageFilter {
    /// Whether it asks anything of the message itself (type, channel, tag).
    pub fn matches_content(&self) -> bool {
        !self.event_types.is_empty() || self.channel.is_some() || self.tag.is_some()
    }
}

pub trait MessageRepo {
    fn insert_message(&mut self, msg: &Message) -> StoreResult<()>;
    /// Inserts several messages and their fan-out; says for each message
    /// whether it was inserted (`false`: its `eventId` is already taken in
    /// its application). Of `fanout`, only the deliveries of messages
    /// inserted here (in the delivery's application) are written, as
    /// `insert_deliveries` writes them; the others are ignored. `fanout`
    /// names each (message, endpoint) once. An application or endpoint not
    /// found is `NotFound`.
    fn insert_messages_with_fanout(&mut self, msgs: &[&Message], fanout: &[NewDelivery]) -> StoreResult<Vec<bool>>;
    /// By id, or by `eventId` within the application.
    fn message(&mut self, app_id: &str, key: &str) -> StoreResult<Option<Message>>;
    fn list_messages(&mut self, app_id: &str, filter: &MessageFilter, query: &ListQuery) -> StoreResult<Page<Message>>;
    fn expunge_message_payload(&mut self, app_id: &str, msg_id: &str) -> StoreResult<()>;
    /// Ids of the app's messages that still hold a payload, sorting after
    /// `after` and before `before`, in id order, at most `limit`.
    fn message_ids_with_payload(
        &mut self,
        app_id: &str,
        after: &str,
        before: &str,
        limit: usize,
    ) -> StoreResult<Vec<String>>;
    /// A message's fan-out: one pending delivery each (written in endpoint
    /// order, so concurrent fan-outs cannot deadlock); wakes the dispatcher.
    /// The messages are ones this transaction inserted: nothing holds them
    /// against a concurrent deletion. An endpoint or message not found (in
    /// the delivery's application) is `NotFound`.
    fn insert_deliveries(&mut self, deliveries: &[NewDelivery]) -> StoreResult<()>;
}

pub trait IdempotencyRepo {
    /// The answer recorded for `key` within the window, if any (a plain
    /// read: taking a key is `claim_idempotency_keys`).
    fn idempotent_response(&mut self, key: &[u8]) -> StoreResult<Option<IdempotentResponse>>;
    /// The answers recorded for several keys (plain reads, no claim).
    fn idempotent_responses(&mut self, keys: &[Vec<u8>]) -> StoreResult<HashMap<Vec<u8>, IdempotentResponse>>;
    /// Takes fresh keys for this transaction, each with the answer given
    /// for it ([`IdempotentResponse::pending`] when it is not known yet: it
    /// is then filled before the transaction commits); returns the keys it
    /// took. A key another transaction holds or answered (within the
    /// window) is not taken: its request replays that answer once it is
    /// there. A key taken here and not wanted after all is released.
    fn claim_idempotency_keys(
        &mut self,
        claims: &[(Vec<u8>, IdempotentResponse)],
        now: Timestamp,
    ) -> StoreResult<HashSet<Vec<u8>>>;
    fn fill_idempotent_responses(&mut self, answers: &[(Vec<u8>, IdempotentResponse)]) -> StoreResult<()>;
    /// Gives claimed keys back (their request failed: no answer is kept).
    fn release_idempotency_keys(&mut self, keys: &[Vec<u8>]) -> StoreResult<()>;
}

/// Filters of an attempt listing.
#[derive(Debug, Clone, Default)]
pub struct AttemptFilter {
    pub msg_id: Option<String>,
    pub endpoint_id: Option<String>,
    pub status: Option<DeliveryStatus>,
    /// The hundred the response status is in (`0`: no response).
    pub status_code_class: Option<u16>,
    pub before: Option<Timestamp>,
    pub after: Option<Timestamp>,
    /// What the attempted message must be (its times are not used).
    pub message: MessageFilter,
}

pub trait AttemptRepo {
    fn list_attempts(&mut self, app_id: &str, filter: &AttemptFilter, query: &ListQuery) -> StoreResult<Page<Attempt>>;
    fn attempt(&mut self, app_id: &str, msg_id: &str, attempt_id: &str) -> StoreResult<Option<Attempt>>;
    /// Empties the response body an attempt recorded.
    fn expunge_attempt_response(&mut self, app_id: &str, msg_id: &str, attempt_id: &str) -> StoreResult<()>;
    /// Every delivery of one message, one per endpoint it was sent to.
    fn deliveries_of_message(&mut self, app_id: &str, msg_id: &str) -> StoreResult<Vec<Delivery>>;
    /// The messages owed to one endpoint that match `filter`, with their
    /// delivery, by message id.
    fn list_endpoint_messages(
        &mut self,
        endpoint_id: &str,
        status: Option<DeliveryStatus>,
        filter: &MessageFilter,
        query: &ListQuery,
    ) -> StoreResult<Page<(Delivery, Message)>>;
    /// The deliveries of one message, by endpoint id, a page at a time.
    fn list_message_deliveries(&mut self, app_id: &str, msg_id: &str, query: &ListQuery)
        -> StoreResult<Page<Delivery>>;
}

/// The API's side of deliveries (the dispatcher's is `queue`).
pub trait DeliveryRepo {
    /// (Re)schedules one delivery for `at` (`None`: now, by the store's
    /// clock), creating it if needed; wakes the dispatcher.
    fn schedule_delivery(
        &mut self,
        app_id: &str,
        msg_id: &str,
        endpoint_id: &str,
        at: Option<Timestamp>,
        manual: bool,
    ) -> StoreResult<()>;
    /// The message ids of an endpoint's deliveries in one of `statuses`
    /// that match the rest of `filter` (its own status is not read), of
    /// messages in `range` that still hold their payload (nothing else can
    /// be sent again), in id order, at most `limit`. One statement, so one
    /// snapshot: a delivery that changes status while it runs is seen once,
    /// never missed and never twice (the dispatcher moves deliveries between
    /// statuses concurrently on PostgreSQL).
    fn deliveries_to_resend(
        &mut self,
        endpoint_id: &str,
        statuses: &[DeliveryStatus],
        range: &MessageRange<'_>,
        filter: &ResendFilter,
        limit: usize,
    ) -> StoreResult<Vec<String>>;
    /// Messages of the app created in [since, until), with an id after
    /// `after` and no delivery to this endpoint, of the given event types
    /// (all when `None`), in id order, at most `limit`.
    fn messages_missing_delivery(
        &mut self,
        app_id: &str,
        endpoint_id: &str,
        event_types: Option<&[String]>,
        range: &MessageRange<'_>,
        limit: usize,
    ) -> StoreResult<Vec<Message>>;
    /// Puts an endpoint's pending deliveries back in the dispatcher's queue
    /// (after it is enabled again); wakes the dispatcher.
    fn requeue_endpoint(&mut self, endpoint_id: &str) -> StoreResult<()>;
    fn delivery_stats(
        &mut self,
        endpoint_id: &str,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
    ) -> StoreResult<DeliveryStats>;
}

/// Messages created in [since, until) whose id sorts after `after`: one
/// step of a task that walks a range in id order.
#[derive(Debug, Clone, Copy)]
pub struct MessageRange<'a> {
    pub since: Timestamp,
    pub until: Timestamp,
    pub after: Option<&'a str>,
}

impl MessageRange<'_> {
    /// The range as message ids, which sort by creation time, so an index
    /// on an id column serves it directly: `(op, start, end)` for
    /// `id {op} start AND id < end`. The start is the range's first id, or
    /// just after `after` once a step has passed it.
    pub fn ids(&self) -> (&'static str, String, String) {
        let floor = crate::ids::IdKind::Message.floor_at(self.since.timestamp_millis());
        let end = crate::ids::IdKind::Message.floor_at(self.until.timestamp_millis());
        match self.after {
            Some(after) if after >= floor.as_str() => (">", after.to_string(), end),
            _ => (">=", floor, end),
        }
    }
}

/// Filters of a background task listing.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    /// Only this application's tasks (an application token's view).
    pub app_id: Option<String>,
    pub status: Option<TaskStatus>,
    pub kind: Option<TaskKind>,
}

/// Recover and replay tasks (see `BackgroundTask`).
pub trait TaskRepo {
    fn insert_task(&mut self, task: &BackgroundTask) -> StoreResult<()>;
    fn task(&mut self, id: &str) -> StoreResult<Option<BackgroundTask>>;
    fn list_tasks(&mut self, filter: &TaskFilter, query: &ListQuery) -> StoreResult<Page<BackgroundTask>>;
    /// The running task that waited longest for a step, locked for this
    /// transaction; a task another node is stepping right now is skipped.
    fn next_running_task(&mut self) -> StoreResult<Option<BackgroundTask>>;
    fn update_task(&mut self, task: &BackgroundTask) -> StoreResult<()>;
    /// Sends the task `next_running_task` would give to the back of the
    /// line (its step failed), so one broken task cannot stall the others.
    fn defer_next_running_task(&mut self, now: Timestamp) -> StoreResult<()>;
    /// Deletes tasks that ended before `before`; how many.
    fn purge_ended_tasks(&mut self, before: Timestamp) -> StoreResult<usize>;
}

/// Revoked API tokens. Tokens are stateless, so revocation is a list of
/// what to refuse, checked on every request by every node.
pub trait TokenRepo {
    /// The application's current token generation (0 before any
    /// `expire-all`), which a token issued now carries.
    fn app_token_generation(&mut self, app_id: &str) -> StoreResult<i64>;
    /// Starts a new token generation for the application and refuses, from
    /// `effective_at` on, its tokens of older generations, of the given
    /// sessions or of all.
    fn expire_app_tokens(
        &mut self,
        app_id: &str,
        session_ids: Option<&[String]>,
        effective_at: Timestamp,
    ) -> StoreResult<()>;
    /// Refuses one token (by digest) from now on; the record may go once
    /// the token has expired anyway (`expires_at`).
    fn revoke_token(&mut self, digest: &[u8], expires_at: Option<Timestamp>) -> StoreResult<()>;
    /// Whether a token is refused at `now`: logged out, or expired by its
    /// application's `expire-all`.
    fn token_revoked(&mut self, digest: &[u8], app: Option<&AppTokenFacts<'_>>, now: Timestamp) -> StoreResult<bool>;
    /// Deletes revocations of tokens that have expired by `now`; how many.
    fn purge_revoked_tokens(&mut self, now: Timestamp) -> StoreResult<usize>;
}

/// What revocation looks at in an application token.
#[derive(Debug, Clone, Copy)]
pub struct AppTokenFacts<'a> {
    pub app_id: &'a str,
    pub session_id: Option<&'a str>,
    pub generation: i64,
    /// An integration's key: the integration and the key version it names.
    /// Such a key also dies when its version is no longer current.
    pub integration_key: Option<(&'a str, i64)>,
}

pub trait IntegrationRepo {
    fn insert_integration(&mut self, integration: &Integration) -> StoreResult<()>;
    fn integration(&mut self, app_id: &str, id: &str) -> StoreResult<Option<Integration>>;
    fn list_integrations(&mut self, app_id: &str, query: &ListQuery) -> StoreResult<Page<Integration>>;
    /// Writes the name and feature flags.
    fn update_integration(&mut self, integration: &Integration) -> StoreResult<()>;
    /// Moves to the next key version (the current key stops working); the
    /// integration after, or `None` when there is none.
    /// Moves the key to its next version; with `from`, only if the key is
    /// still at that version (a logout must not kill a key rotated since).
    fn rotate_integration_key(
        &mut self,
        app_id: &str,
        id: &str,
        from: Option<i64>,
        now: Timestamp,
    ) -> StoreResult<Option<Integration>>;
    fn delete_integration(&mut self, app_id: &str, id: &str) -> StoreResult<()>;
}

/// Read-only summaries for the portal: time series and the operator's
/// health view. Plain aggregates over `attempt`, `delivery` and `endpoint`.
pub trait InsightRepo {
    /// The endpoint's attempts in [since, until), in consecutive buckets of
    /// `bucket` starting at `since`; every bucket is present, empty or not.
    fn attempt_series(
        &mut self,
        endpoint_id: &str,
        since: Timestamp,
        until: Timestamp,
        bucket: chrono::Duration,
    ) -> StoreResult<Vec<SeriesBucket>>;
    /// The endpoint's attempts in [since, until): (successful, failed).
    fn attempt_counts(&mut self, endpoint_id: &str, since: Timestamp, until: Timestamp) -> StoreResult<(u64, u64)>;
    /// Backlog and endpoint health across every application.
    fn delivery_overview(&mut self, window: &OverviewWindow) -> StoreResult<DeliveryOverview>;
}

/// What "now" and "recent" mean for a delivery overview.
#[derive(Debug, Clone)]
pub struct OverviewWindow {
    pub now: Timestamp,
    /// Attempts counted from here on.
    pub attempts_since: Timestamp,
    /// Endpoints disabled from here on are listed.
    pub disabled_since: Timestamp,
    /// Most endpoints in each list.
    pub limit: usize,
}

impl OverviewWindow {
    /// Nothing but the counts: empty lists, and no recent attempts to count.
    pub fn counts_only(now: Timestamp) -> Self {
        OverviewWindow { now, attempts_since: now, disabled_since: now, limit: 0 }
    }
}

/// Facts about the store itself, as named strings.
pub trait MetaRepo {
    fn meta(&mut self, key: &str) -> StoreResult<Option<String>>;
    fn set_meta(&mut self, key: &str, value: &str) -> StoreResult<()>;
    fn delete_meta(&mut self, key: &str) -> StoreResult<()>;
}

/// Fan-out targets by application (`fanout_targets_of`).
pub type TargetsByApp = HashMap<String, Vec<FanoutTarget>>;

/// An idempotency key a message batch takes for one of its drafts, with
/// the answer the draft gets if its message is created.
/// Borrowed from the drafts: the answer is sealed and as large as the
/// message, and this runs on the embedded store's single writer.
pub struct KeyClaim<'a> {
    /// The application the draft writes to: a key is taken only if it
    /// exists.
    pub app_id: &'a str,
    pub key: &'a [u8],
    pub answer: &'a IdempotentResponse,
}

/// The message writer's reads, two steps each made of the operations
/// above. The defaults run those operations one after the other; on
/// PostgreSQL each step is one statement, a round trip fewer, and a
/// message batch is seven round trips without them.
pub trait MessageBatchRepo: ApplicationRepo + IdempotencyRepo + EventTypeRepo + EndpointRepo {
    /// `existing_application_ids(app_ids)`, then `claim_idempotency_keys`
    /// of the claims whose application is among them (of claims that
    /// share a key, the first of those): the applications that exist, and
    /// the keys taken.
    fn check_applications_and_claim_keys(
        &mut self,
        app_ids: &[String],
        claims: &[KeyClaim<'_>],
        now: Timestamp,
    ) -> StoreResult<(HashSet<String>, HashSet<Vec<u8>>)> {
        let apps = self.existing_application_ids(app_ids)?;
        let mut firsts: HashSet<&[u8]> = HashSet::new();
        let wanted: Vec<(Vec<u8>, IdempotentResponse)> = claims
            .iter()
            .filter(|c| apps.contains(c.app_id) && firsts.insert(c.key))
            .map(|c| (c.key.to_vec(), c.answer.clone()))
            .collect();
        let taken = self.claim_idempotency_keys(&wanted, now)?;
        Ok((apps, taken))
    }

    /// `event_types_named(names)` and `fanout_targets_of(app_ids)`.
    fn event_types_and_fanout_targets(
        &mut self,
        names: &[String],
        app_ids: &[String],
    ) -> StoreResult<(Vec<EventType>, TargetsByApp)> {
        Ok((self.event_types_named(names)?, self.fanout_targets_of(app_ids)?))
    }
}

/// Everything a transaction can do.
pub trait Tx:
    ApplicationRepo
    + EventTypeRepo
    + EndpointRepo
    + MessageRepo
    + AttemptRepo
    + DeliveryRepo
    + IdempotencyRepo
    + MessageBatchRepo
    + MetaRepo
    + InsightRepo
    + TaskRepo
    + TokenRepo
    + IntegrationRepo
{
}

impl<T> Tx for T where
    T: ApplicationRepo
        + EventTypeRepo
        + EndpointRepo
        + MessageRepo
        + AttemptRepo
        + DeliveryRepo
        + IdempotencyRepo
        + MessageBatchRepo
        + MetaRepo
        + InsightRepo
        + TaskRepo
        + TokenRepo
        + IntegrationRepo
{
}

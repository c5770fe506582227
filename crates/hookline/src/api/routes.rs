//! The route table: every route once, with who may call it. The router and
//! `openapi.json` are both generated from it, so they cannot disagree.

use axum::routing::{on, MethodFilter, MethodRouter};

use crate::auth::Capabilities;

use super::applications::{ApplicationIn, ApplicationOut, ListOut};
use super::attempts::AttemptOut;
use super::background_tasks::TaskStartedOut;
use super::delivery_ops::RangeIn;
use super::endpoint_headers::{HeadersIn, HeadersOut};
use super::endpoint_secret::{RotateIn, SecretOut};
use super::endpoints::{EndpointIn, EndpointOut};
use super::event_types::EventTypeOut;
use super::integrations::{IntegrationIn, IntegrationOut};
use super::messages::MessageOut;
use super::openapi::{schema_of, SchemaFn};
use super::{
    applications, attempts, background_tasks, delivery_ops, endpoint_headers, endpoint_secret, endpoints,
    event_type_import, event_types, expunge, insights, integrations, messages, openapi, operational_webhooks, params,
    portal_access, readiness, revocation, AppState,
};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token needed.
    Public,
    /// Any valid token (the portal reads the event catalog).
    Authenticated,
    /// Organization (admin) tokens only.
    Admin,
    /// Routes under `/app/{app_id}`: admin tokens, or a token of that
    /// application with the grant the route needs.
    App(Grant),
    /// Under `/app/{app_id}` but for admin tokens only.
    AdminApp,
    /// Message creation: like `App(Grant::Write)`, and an admin may name an
    /// application that does not exist yet (created from the body).
    AppOrCreate,
    /// Application upsert (PUT): admin only; a missing application is created
    /// with the path segment as its uid.
    AdminAppOrCreate,
}

/// What an application token must carry to use an `App` route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Reads that reveal no secret.
    Read,
    /// Reads that reveal a signing secret (`ViewEndpointSecret`).
    ReadSecret,
    /// Rotating a signing secret (`ManageEndpointSecret`).
    ManageSecret,
    /// Resending, recovering, replaying and test events (`CreateAttempts`).
    CreateAttempts,
    /// Anything else that changes state (`ManageEndpoint`).
    Write,
}

impl Grant {
    /// The capabilities of which an application token needs one.
    pub fn needs(self) -> &'static [Capabilities] {
        match self {
            Grant::Read => &[Capabilities::VIEW_BASE],
            Grant::ReadSecret => &[
                Capabilities::VIEW_ENDPOINT_SECRET,
                Capabilities::MANAGE_ENDPOINT_SECRET,
                Capabilities::MANAGE_ENDPOINT,
            ],
            Grant::ManageSecret => &[Capabilities::MANAGE_ENDPOINT_SECRET, Capabilities::MANAGE_ENDPOINT],
            Grant::CreateAttempts => &[Capabilities::CREATE_ATTEMPTS, Capabilities::MANAGE_ENDPOINT],
            Grant::Write => &[Capabilities::MANAGE_ENDPOINT],
        }
    }
}

/// One route: how it is called, who may call it, and the Rust types of what
/// it reads and answers (the schemas of `openapi.json`).
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub operation_id: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    pub access: Access,
    pub handler: fn() -> MethodRouter<AppState>,
    /// The query string's parameters (a struct of `api::params`): the only
    /// names the handler may read.
    pub query: Option<SchemaFn>,
    /// The JSON body (`Option<T>` when it may be left out).
    pub body: Option<SchemaFn>,
    /// The success statuses, and the body they carry.
    pub ok: &'static [u16],
    pub response: Option<SchemaFn>,
}

/// `route!(METHOD "path", handler, access, "Tag", "operationId", "summary",
/// [query: Q,] [body: B,] 200 [| 201] [=> Response])`
macro_rules! route {
    (@schema) => { None };
    (@schema $t:ty) => { Some(schema_of::<$t> as SchemaFn) };
    ($method:ident $path:literal, $handler:path, $access:expr, $tag:literal, $op:literal, $summary:literal
        $(, query: $query:ty)? $(, body: $body:ty)?, $($status:literal)|+ $(=> $out:ty)?) => {
        Route {
            method: stringify!($method),
            path: $path,
            operation_id: $op,
            summary: $summary,
            tag: $tag,
            access: $access,
            handler: || on(MethodFilter::$method, $handler),
            query: route!(@schema $($query)?),
            body: route!(@schema $($body)?),
            ok: &[$($status),+],
            response: route!(@schema $($out)?),
        }
    };
}

const READ: Access = Access::App(Grant::Read);
const SECRET: Access = Access::App(Grant::ReadSecret);
const WRITE: Access = Access::App(Grant::Write);
const ROTATE: Access = Access::App(Grant::ManageSecret);
const ATTEMPT: Access = Access::App(Grant::CreateAttempts);

pub static ROUTES: &[Route] = &[
    route!(GET "/api/v1/health", health, Access::Public, "Health", "v1.health.get", "Health check", 204),
    route!(GET "/api/v1/health/ready", readiness::ready, Access::Public, "Health", "hookline.health.ready", "Hookline extension: readiness. 200 when the store answers and the dispatcher runs; 503 with the failing check otherwise", 200 => readiness::ReadyOut),
    route!(GET "/api/v1/openapi.json", openapi::serve, Access::Public, "Health", "v1.openapi.get", "This API's OpenAPI document", 200 => openapi::JsonObject),
    // Applications
    route!(GET "/api/v1/app", applications::list, Access::Admin, "Application", "v1.application.list", "List applications", query: params::ListApplications, 200 => ListOut<ApplicationOut>),
    route!(POST "/api/v1/app", applications::create, Access::Admin, "Application", "v1.application.create", "Create an application (`?get_if_exists=true` returns an existing uid)", query: params::CreateApplication, body: ApplicationIn, 201 | 200 => ApplicationOut),
    route!(GET "/api/v1/app/{app_id}", applications::get, READ, "Application", "v1.application.get", "Get an application by id or uid", 200 => ApplicationOut),
    route!(PUT "/api/v1/app/{app_id}", applications::update, Access::AdminAppOrCreate, "Application", "v1.application.update", "Update an application, or create it with this uid", body: ApplicationIn, 200 | 201 => ApplicationOut),
    route!(PATCH "/api/v1/app/{app_id}", applications::patch, Access::AdminApp, "Application", "v1.application.patch", "Partially update an application", body: applications::ApplicationPatch, 200 => ApplicationOut),
    route!(DELETE "/api/v1/app/{app_id}", applications::delete, Access::AdminApp, "Application", "v1.application.delete", "Delete an application and everything in it", 204),
    // Event types
    route!(GET "/api/v1/event-type", event_types::list, Access::Authenticated, "Event Type", "v1.event-type.list", "List event types", query: params::ListEventTypes, 200 => ListOut<EventTypeOut>),
    route!(POST "/api/v1/event-type", event_types::create, Access::Admin, "Event Type", "v1.event-type.create", "Create an event type", body: event_types::EventTypeIn, 201 => EventTypeOut),
    route!(POST "/api/v1/event-type/import/openapi", event_type_import::import, Access::Admin, "Event Type", "v1.event-type.import-openapi", "Create or update event types from the webhooks of an OpenAPI 3.1 document (JSON)", body: event_type_import::ImportIn, 200 => event_type_import::ImportOut),
    route!(GET "/api/v1/event-type/{event_type_name}", event_types::get, Access::Authenticated, "Event Type", "v1.event-type.get", "Get an event type", 200 => EventTypeOut),
    route!(PUT "/api/v1/event-type/{event_type_name}", event_types::update, Access::Admin, "Event Type", "v1.event-type.update", "Update (or create) an event type", body: event_types::EventTypeUpdate, 200 | 201 => EventTypeOut),
    route!(PATCH "/api/v1/event-type/{event_type_name}", event_types::patch, Access::Admin, "Event Type", "v1.event-type.patch", "Partially update an event type", body: event_types::EventTypePatch, 200 => EventTypeOut),
    route!(DELETE "/api/v1/event-type/{event_type_name}", event_types::delete, Access::Admin, "Event Type", "v1.event-type.delete", "Archive an event type (`?expunge=true` deletes it)", query: params::DeleteEventType, 204),
    // Endpoints
    route!(GET "/api/v1/app/{app_id}/endpoint", endpoints::list, READ, "Endpoint", "v1.endpoint.list", "List endpoints", query: params::Paged, 200 => ListOut<EndpointOut>),
    route!(POST "/api/v1/app/{app_id}/endpoint", endpoints::create, WRITE, "Endpoint", "v1.endpoint.create", "Create an endpoint", body: EndpointIn, 201 => EndpointOut),
    route!(GET "/api/v1/app/{app_id}/endpoint/{endpoint_id}", endpoints::get, READ, "Endpoint", "v1.endpoint.get", "Get an endpoint by id or uid", 200 => EndpointOut),
    route!(PUT "/api/v1/app/{app_id}/endpoint/{endpoint_id}", endpoints::update, WRITE, "Endpoint", "v1.endpoint.update", "Update an endpoint, or create it with this uid", body: EndpointIn, 200 | 201 => EndpointOut),
    route!(PATCH "/api/v1/app/{app_id}/endpoint/{endpoint_id}", endpoints::patch, WRITE, "Endpoint", "v1.endpoint.patch", "Partially update an endpoint", body: endpoints::EndpointPatch, 200 => EndpointOut),
    route!(DELETE "/api/v1/app/{app_id}/endpoint/{endpoint_id}", endpoints::delete, WRITE, "Endpoint", "v1.endpoint.delete", "Delete an endpoint", 204),
    route!(GET "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret", endpoint_secret::get_secret, SECRET, "Endpoint", "v1.endpoint.get-secret", "Get the endpoint's signing secret", 200 => SecretOut),
    route!(POST "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate", endpoint_secret::rotate_secret, ROTATE, "Endpoint", "v1.endpoint.rotate-secret", "Rotate the signing secret; the old one signs too during the grace period", body: Option<RotateIn>, 200 => SecretOut),
    route!(GET "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers", endpoint_headers::get_headers, READ, "Endpoint", "v1.endpoint.get-headers", "Get the endpoint's custom headers", 200 => HeadersOut),
    route!(PUT "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers", endpoint_headers::put_headers, WRITE, "Endpoint", "v1.endpoint.update-headers", "Replace the endpoint's custom headers", body: HeadersIn, 204),
    route!(PATCH "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers", endpoint_headers::patch_headers, WRITE, "Endpoint", "v1.endpoint.patch-headers", "Merge custom headers (null removes one)", body: endpoint_headers::HeadersPatchIn, 204),
    route!(GET "/api/v1/app/{app_id}/endpoint/{endpoint_id}/stats", delivery_ops::stats, READ, "Endpoint", "v1.endpoint.get-stats", "Delivery counts of the endpoint by status", query: params::Range, 200 => delivery_ops::StatsOut),
    route!(GET "/api/v1/app/{app_id}/endpoint/{endpoint_id}/attempt-stats", insights::attempt_stats, READ, "Endpoint", "v1.endpoint.get-attempt-stats", "Count the endpoint's attempts (`since`, `until`, rounded to the hour): success, fail, canceled", query: params::Range, 200 => insights::AttemptStatsOut),
    route!(POST "/api/v1/app/{app_id}/endpoint/{endpoint_id}/recover", delivery_ops::recover, ATTEMPT, "Endpoint", "v1.endpoint.recover", "Retry every failed delivery since a time", body: RangeIn, 202 => TaskStartedOut),
    route!(POST "/api/v1/app/{app_id}/endpoint/{endpoint_id}/replay-missing", delivery_ops::replay_missing, ATTEMPT, "Endpoint", "v1.endpoint.replay-missing", "Deliver messages the endpoint never received", body: RangeIn, 202 => TaskStartedOut),
    route!(POST "/api/v1/app/{app_id}/endpoint/{endpoint_id}/bulk-replay", delivery_ops::bulk_replay, ATTEMPT, "Endpoint", "v1.endpoint.bulk-replay", "Send again, once each, the deliveries of a range that match the filters", body: delivery_ops::BulkReplayIn, 202 => TaskStartedOut),
    route!(POST "/api/v1/app/{app_id}/endpoint/{endpoint_id}/send-example", delivery_ops::send_example, ATTEMPT, "Endpoint", "v1.endpoint.send-example", "Send an event type's example payload to this endpoint", body: delivery_ops::SendExampleIn, 202 => MessageOut),
    // Messages
    route!(GET "/api/v1/app/{app_id}/msg", messages::list, READ, "Message", "v1.message.list", "List messages, newest first", query: params::ListMessages, 200 => ListOut<MessageOut>),
    route!(POST "/api/v1/app/{app_id}/msg", messages::create, Access::AppOrCreate, "Message", "v1.message.create", "Send a message to every endpoint that wants it", query: params::WithContent, body: messages::MessageIn, 202 => MessageOut),
    route!(GET "/api/v1/app/{app_id}/msg/{msg_id}", messages::get, READ, "Message", "v1.message.get", "Get a message by id or eventId", query: params::WithContent, 200 => MessageOut),
    route!(DELETE "/api/v1/app/{app_id}/msg/{msg_id}/content", messages::expunge_content, WRITE, "Message", "v1.message.expunge-content", "Delete a message's payload", 204),
    route!(POST "/api/v1/app/{app_id}/msg/precheck/active", messages::precheck, READ, "Message", "v1.message.precheck", "Whether a message of this event type (and channels) would reach any endpoint", body: messages::PrecheckIn, 200 => messages::PrecheckOut),
    route!(POST "/api/v1/app/{app_id}/msg/bulk-expunge", expunge::bulk, WRITE, "Message", "v1.message.bulk-expunge", "Delete the payloads of the named messages", body: expunge::BulkExpungeIn, 200 => expunge::BulkExpungeOut),
    route!(POST "/api/v1/app/{app_id}/msg/expunge-all-contents", expunge::all_contents, WRITE, "Message", "v1.message.expunge-all-contents", "Delete every payload of the application (a background task)", 202 => TaskStartedOut),
    // Attempts
    route!(GET "/api/v1/app/{app_id}/attempt/msg/{msg_id}", attempts::by_message, READ, "Message Attempt", "v1.message-attempt.list-by-msg", "List attempts of a message", query: params::ListAttemptsByMessage, 200 => ListOut<AttemptOut>),
    route!(GET "/api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}", attempts::by_endpoint, READ, "Message Attempt", "v1.message-attempt.list-by-endpoint", "List attempts to an endpoint", query: params::ListAttempts, 200 => ListOut<AttemptOut>),
    route!(DELETE "/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}/content", expunge::attempt_content, WRITE, "Message Attempt", "v1.message-attempt.expunge-content", "Delete an attempt's response body", 204),
    route!(GET "/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}", attempts::get, READ, "Message Attempt", "v1.message-attempt.get", "Get one attempt", query: params::GetAttempt, 200 => AttemptOut),
    route!(GET "/api/v1/app/{app_id}/endpoint/{endpoint_id}/msg", attempts::endpoint_messages, READ, "Message Attempt", "v1.message-attempt.list-attempted-messages", "Messages sent to an endpoint, with their status for it", query: params::ListEndpointMessages, 200 => ListOut<attempts::EndpointMessageOut>),
    route!(GET "/api/v1/app/{app_id}/msg/{msg_id}/endpoint", attempts::destinations, READ, "Message Attempt", "v1.message-attempt.list-attempted-destinations", "Endpoints a message was sent to, with its status for each", query: params::Paged, 200 => ListOut<attempts::DestinationOut>),
    route!(POST "/api/v1/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend", delivery_ops::resend, ATTEMPT, "Message Attempt", "v1.message-attempt.resend", "Send a message to an endpoint again, now", 202 => delivery_ops::EmptyOut),
    // Background tasks
    route!(GET "/api/v1/background-task", background_tasks::list, Access::Authenticated, "Background Task", "v1.background-task.list", "List background tasks (`status`, `task`), newest first; an application token sees its own", query: params::ListTasks, 200 => ListOut<background_tasks::TaskOut>),
    route!(GET "/api/v1/background-task/{task_id}", background_tasks::get, Access::Authenticated, "Background Task", "v1.background-task.get", "Get a background task", 200 => background_tasks::TaskOut),
    // Operational webhooks: the platform's own endpoints for what happens to its customers' endpoints
    route!(GET "/api/v1/operational-webhook/endpoint", operational_webhooks::list, Access::Admin, "Webhook Endpoint", "v1.operational-webhook.endpoint.list", "List operational webhook endpoints", query: params::Paged, 200 => ListOut<EndpointOut>),
    route!(POST "/api/v1/operational-webhook/endpoint", operational_webhooks::create, Access::Admin, "Webhook Endpoint", "v1.operational-webhook.endpoint.create", "Create an operational webhook endpoint (eventTypes: endpoint.created/updated/deleted/disabled/enabled, message.attempt.exhausted/failing/recovered)", body: EndpointIn, 201 => EndpointOut),
    route!(GET "/api/v1/operational-webhook/endpoint/{endpoint_id}", operational_webhooks::get, Access::Admin, "Webhook Endpoint", "v1.operational-webhook.endpoint.get", "Get an operational webhook endpoint", 200 => EndpointOut),
    route!(PUT "/api/v1/operational-webhook/endpoint/{endpoint_id}", operational_webhooks::update, Access::Admin, "Webhook Endpoint", "v1.operational-webhook.endpoint.update", "Update an operational webhook endpoint", body: EndpointIn, 200 | 201 => EndpointOut),
    route!(DELETE "/api/v1/operational-webhook/endpoint/{endpoint_id}", operational_webhooks::delete, Access::Admin, "Webhook Endpoint", "v1.operational-webhook.endpoint.delete", "Delete an operational webhook endpoint", 204),
    route!(GET "/api/v1/operational-webhook/endpoint/{endpoint_id}/secret", operational_webhooks::get_secret, Access::Admin, "Webhook Endpoint", "v1.operational-webhook.endpoint.get-secret", "Get an operational webhook endpoint's signing secret", 200 => SecretOut),
    route!(POST "/api/v1/operational-webhook/endpoint/{endpoint_id}/secret/rotate", operational_webhooks::rotate_secret, Access::Admin, "Webhook Endpoint", "v1.operational-webhook.endpoint.rotate-secret", "Rotate an operational webhook endpoint's signing secret", body: Option<RotateIn>, 200 => SecretOut),
    route!(GET "/api/v1/operational-webhook/endpoint/{endpoint_id}/headers", operational_webhooks::get_headers, Access::Admin, "Webhook Endpoint", "v1.operational-webhook.endpoint.get-headers", "Get an operational webhook endpoint's custom headers", 200 => HeadersOut),
    route!(PUT "/api/v1/operational-webhook/endpoint/{endpoint_id}/headers", operational_webhooks::put_headers, Access::Admin, "Webhook Endpoint", "v1.operational-webhook.endpoint.update-headers", "Replace an operational webhook endpoint's custom headers", body: HeadersIn, 204),
    // Integrations: keys to one application for a third party the customer connects
    route!(GET "/api/v1/app/{app_id}/integration", integrations::list, Access::AdminApp, "Integration", "v1.integration.list", "List the application's integrations", query: params::Paged, 200 => ListOut<IntegrationOut>),
    route!(POST "/api/v1/app/{app_id}/integration", integrations::create, Access::AdminApp, "Integration", "v1.integration.create", "Create an integration", body: IntegrationIn, 201 => IntegrationOut),
    route!(GET "/api/v1/app/{app_id}/integration/{integ_id}", integrations::get, Access::AdminApp, "Integration", "v1.integration.get", "Get an integration", 200 => IntegrationOut),
    route!(PUT "/api/v1/app/{app_id}/integration/{integ_id}", integrations::update, Access::AdminApp, "Integration", "v1.integration.update", "Update an integration's name and feature flags", body: IntegrationIn, 200 => IntegrationOut),
    route!(DELETE "/api/v1/app/{app_id}/integration/{integ_id}", integrations::delete, Access::AdminApp, "Integration", "v1.integration.delete", "Delete an integration; its key stops working", 204),
    route!(GET "/api/v1/app/{app_id}/integration/{integ_id}/key", integrations::get_key, Access::AdminApp, "Integration", "v1.integration.get-key", "Get an integration's key (deprecated by Svix)", 200 => integrations::IntegrationKeyOut),
    route!(POST "/api/v1/app/{app_id}/integration/{integ_id}/key/rotate", integrations::rotate_key, Access::AdminApp, "Integration", "v1.integration.rotate-key", "A new key for the integration; the old one stops working", 200 => integrations::IntegrationKeyOut),
    // Authentication
    route!(POST "/api/v1/auth/app-portal-access/{app_id}", portal_access::create, Access::AdminAppOrCreate, "Authentication", "v1.authentication.app-portal-access", "A portal URL and token scoped to one application (created from `application` if missing), with Svix's capabilities", body: Option<portal_access::PortalAccessIn>, 200 => portal_access::PortalAccessOut),
    route!(POST "/api/v1/auth/app/{app_id}/expire-all", revocation::expire_all, Access::AdminApp, "Authentication", "v1.authentication.expire-all", "Revoke every token of the application issued before now (of the sessions named), after `expiry` seconds", body: Option<revocation::ExpireAllIn>, 204),
    route!(POST "/api/v1/auth/logout", revocation::logout, Access::Authenticated, "Authentication", "v1.authentication.logout", "Revoke the token that makes this call", 204),
    // Hookline extensions (not in Svix): what the portal needs beyond the Svix API.
    route!(GET "/api/v1/auth/token", insights::token, Access::Authenticated, "Hookline", "hookline.token.get", "Hookline extension: what the presented token may do (scope, application, read-only, expiry)", 200 => insights::TokenOut),
    route!(GET "/api/v1/app/{app_id}/endpoint/{endpoint_id}/stats/series", insights::series, READ, "Hookline", "hookline.endpoint.stats-series", "Hookline extension: the endpoint's attempts over time (`since`, `until`, `bucket`): successes, failures, latency p50/p90/p99", query: params::Series, 200 => insights::SeriesOut),
    route!(GET "/api/v1/hookline/overview", insights::overview, Access::Admin, "Hookline", "hookline.overview.get", "Hookline extension: delivery health across every application (backlog, failing and recently disabled endpoints)", 200 => insights::OverviewOut),
];

async fn health() -> axum::http::StatusCode {
    axum::http::StatusCode::NO_CONTENT
}

//! The API, resource by resource: the steps of the `api` flow, in order,
//! sharing what earlier steps created.

use chrono::{Duration as Span, Utc};
use serde_json::json;
use svix::api::{
    ApplicationListOptions, BackgroundTaskListOptions, EventTypeListOptions, MessageAttemptListByEndpointOptions,
    MessageAttemptListByMsgOptions, MessageCreateOptions, MessageGetOptions, MessageListOptions, Svix,
};
use svix::error::Error;
use svix::models::{
    AppPortalAccessIn, AppPortalCapability, ApplicationIn, ApplicationPatch, ApplicationTokenExpireIn,
    BackgroundTaskStatus, BackgroundTaskType, BulkExpungeContentsIn, BulkExpungeStatus, BulkReplayIn,
    EndpointHeadersIn, EndpointHeadersPatchIn, EndpointIn, EndpointPatch, EndpointSecretRotateIn, EndpointUpsertIn,
    EventTypeImportOpenApiIn, EventTypeIn, EventTypePatch, EventTypeUpsertIn, IntegrationIn, IntegrationUpdate,
    MessageIn, MessagePrecheckIn, MessageStatus, OperationalWebhookEndpointIn, OperationalWebhookEndpointUpsertIn,
    Ordering, RecoverIn, ReplayIn,
};

use crate::flow::{check, client, expect_http_error, wait_for, Flow, Outcome, Report};
use crate::{map, set};

/// Never resolves (RFC 6761): nothing is sent anywhere if delivery is attempted.
const HOOK_URL: &str = "https://receiver.example.invalid/webhook";

struct Ctx {
    server_url: String,
    svix: Svix,
    app_uid: String,
    event_type: String,
    run: String,
    app_id: String,
    ep_id: String,
    msg_id: String,
    other_id: String,
    view_base: Option<Svix>,
}

impl Ctx {
    /// A client with another token (a portal token), on the same server.
    fn with_token(&self, token: &str) -> Svix {
        client(&self.server_url, token)
    }
}

pub async fn run(server_url: &str, admin_token: &str, run: &str, report: &mut Report) {
    let mut flow = Flow::new("api", report);
    let mut c = Ctx {
        server_url: server_url.to_string(),
        svix: client(server_url, admin_token),
        app_uid: format!("sdk-app-{run}"),
        event_type: format!("invoice.paid.{run}"),
        run: run.to_string(),
        app_id: String::new(),
        ep_id: String::new(),
        msg_id: String::new(),
        other_id: String::new(),
        view_base: None,
    };
    flow.step("health", async { Ok(c.svix.health().get().await?) }).await;
    flow.step("application.create with uid", create_app(&mut c)).await;
    flow.step("application.create with the same uid raises 409", async {
        let again = ApplicationIn { uid: Some(c.app_uid.clone()), ..ApplicationIn::new("again".into()) };
        expect_http_error(409, c.svix.application().create(again, None)).await
    })
    .await;
    flow.step("application.get_or_create returns the existing app", get_or_create(&c)).await;
    flow.step("application.get / list / patch", app_reads(&c)).await;
    flow.step("event_type.create / list / get", create_event_type(&c)).await;
    flow.step("endpoint.create with event_types, throttle_rate, headers, metadata", create_endpoint(&mut c)).await;
    flow.step("endpoint.get by uid / patch / list", endpoint_reads(&c)).await;
    flow.step("endpoint headers get / patch (delete_headers) / set", headers(&c)).await;
    flow.step("message.create with an idempotency key, twice: one message", send_idempotent(&mut c)).await;
    flow.step("message.create with a duplicate event_id raises 409", async {
        let dup =
            MessageIn { event_id: Some(format!("evt-{}", c.run)), ..MessageIn::new("other.type".into(), json!({})) };
        expect_http_error(409, c.svix.message().create(c.app_uid.clone(), dup, None)).await
    })
    .await;
    flow.step("message.list with and without content, filters, pages", list_messages(&c)).await;
    flow.step("message.get by id and by event_id", get_message(&c)).await;
    flow.step("endpoint secret get / rotate / get shows the new key", secrets(&c)).await;
    flow.step("message_attempt list_by_msg / list_by_endpoint / destinations", attempts(&c)).await;
    flow.step("endpoint.recover / replay_missing / bulk_replay run as background tasks to finished", tasks(&c)).await;
    flow.step("endpoint.get_attempt_stats counts the endpoint's attempts", async {
        // The first attempt (to an address that never resolves) is recorded
        // when the dispatcher gets to it, which nothing before waited for.
        let stats = wait_for("the endpoint's first attempt", || async {
            let stats = c.svix.endpoint().get_attempt_stats(c.app_uid.clone(), c.ep_id.clone(), None).await?;
            Ok((stats.success + stats.fail >= 1).then_some(stats))
        })
        .await?;
        check!(stats.success + stats.fail >= 1 && stats.canceled == 0, "{stats:?}");
        Ok(())
    })
    .await;
    flow.step("integration create / list / get / update / rotate_key / delete", integrations(&c)).await;
    flow.step("authentication.app_portal_access gives working tokens", portal(&c)).await;
    flow.step("a 422 surfaces as a validation error naming the field", validation_error(&c)).await;
    flow.step("a ViewBase token reads, but gets 403 on writes and on secrets", view_base(&mut c)).await;
    flow.step("capabilities, authentication.logout and expire_all", tokens(&c)).await;
    flow.step(
        "message precheck / bulk_expunge_content / expunge_all_contents, event_type.import_openapi",
        data_and_catalog(&c),
    )
    .await;
    flow.step("operational_webhook.endpoint create / get / list / upsert / secret / delete", operational(&c)).await;
    flow.step("application.upsert / endpoint.upsert / event_type.upsert, patch, delete (archive)", upserts(&c)).await;
    flow.step("message.expunge_content", async {
        c.svix.message().expunge_content(c.app_uid.clone(), c.msg_id.clone()).await?;
        let got = c.svix.message().get(c.app_uid.clone(), c.msg_id.clone(), Some(with_content())).await?;
        check!(got.payload == json!({}), "{:?}", got.payload);
        Ok(())
    })
    .await;
    flow.step("endpoint.delete, then get raises 404", async {
        c.svix.endpoint().delete(c.app_uid.clone(), c.ep_id.clone()).await?;
        expect_http_error(404, c.svix.endpoint().get(c.app_uid.clone(), c.ep_id.clone())).await?;
        check!(c.svix.endpoint().list(c.app_uid.clone(), None).await?.data.is_empty(), "endpoint still listed");
        Ok(())
    })
    .await;
    flow.step("application.delete", async {
        c.svix.application().delete(c.app_uid.clone()).await?;
        expect_http_error(404, c.svix.application().get(c.app_uid.clone())).await
    })
    .await;
}

fn with_content() -> MessageGetOptions {
    MessageGetOptions { with_content: Some(true) }
}

async fn create_app(c: &mut Ctx) -> Outcome {
    let app_in = ApplicationIn {
        uid: Some(c.app_uid.clone()),
        metadata: Some(map([("k", "v")])),
        ..ApplicationIn::new("SDK app".into())
    };
    let app = c.svix.application().create(app_in, None).await?;
    check!(app.id.starts_with("app_"), "{}", app.id);
    check!(app.uid.as_deref() == Some(c.app_uid.as_str()), "{:?}", app.uid);
    check!(app.metadata == map([("k", "v")]), "{:?}", app.metadata);
    c.app_id = app.id;
    Ok(())
}

async fn get_or_create(c: &Ctx) -> Outcome {
    let again = ApplicationIn { uid: Some(c.app_uid.clone()), ..ApplicationIn::new("again".into()) };
    let app = c.svix.application().get_or_create(again, None).await?;
    check!(app.id == c.app_id, "{} != {}", app.id, c.app_id);
    check!(app.name == "SDK app", "{}", app.name);
    Ok(())
}

async fn app_reads(c: &Ctx) -> Outcome {
    let apps = c.svix.application();
    check!(apps.get(c.app_uid.clone()).await?.id == c.app_id, "get by uid");
    check!(apps.get(c.app_id.clone()).await?.uid.as_deref() == Some(c.app_uid.as_str()), "get by id");
    let options = ApplicationListOptions { limit: Some(250), order: Some(Ordering::Ascending), ..Default::default() };
    let listed = apps.list(Some(options)).await?;
    check!(listed.data.iter().any(|a| a.id == c.app_id), "app missing from list");
    let patch = ApplicationPatch { name: Some("SDK app renamed".into()), ..ApplicationPatch::new() };
    let patched = apps.patch(c.app_uid.clone(), patch).await?;
    check!(patched.name == "SDK app renamed" && patched.uid.as_deref() == Some(c.app_uid.as_str()), "{patched:?}");
    Ok(())
}

async fn create_event_type(c: &Ctx) -> Outcome {
    let et_in = EventTypeIn {
        schemas: Some(json!({"1": {"type": "object", "properties": {"amount": {"type": "number"}}}})),
        ..EventTypeIn::new(c.event_type.clone(), "An invoice was paid".into())
    };
    let et = c.svix.event_type().create(et_in, None).await?;
    check!(et.name == c.event_type, "{}", et.name);
    check!(!et.deprecated, "deprecated");
    check!(et.schemas.as_ref().is_some_and(|s| s["1"]["type"] == "object"), "{:?}", et.schemas);
    let options = EventTypeListOptions { limit: Some(250), with_content: Some(true), ..Default::default() };
    let listed = c.svix.event_type().list(Some(options)).await?;
    check!(listed.data.iter().any(|e| e.name == c.event_type), "event type missing from list");
    check!(c.svix.event_type().get(c.event_type.clone()).await?.description == "An invoice was paid", "get");
    Ok(())
}

async fn create_endpoint(c: &mut Ctx) -> Outcome {
    let ep_in = EndpointIn {
        uid: Some(format!("ep-{}", c.run)),
        event_types: Some(set([c.event_type.as_str()])),
        throttle_rate: Some(10),
        channels: Some(set(["billing"])),
        headers: Some(map([("X-Api-Key", "k1"), ("X-Drop", "gone")])),
        metadata: Some(map([("owner", "billing")])),
        ..EndpointIn::new(HOOK_URL.into())
    };
    let ep = c.svix.endpoint().create(c.app_uid.clone(), ep_in, None).await?;
    check!(ep.id.starts_with("ep_"), "{}", ep.id);
    check!(ep.event_types == Some(set([c.event_type.as_str()])), "{:?}", ep.event_types);
    check!(ep.throttle_rate == Some(10), "{:?}", ep.throttle_rate);
    check!(ep.channels == Some(set(["billing"])), "{:?}", ep.channels);
    check!(ep.metadata == map([("owner", "billing")]), "{:?}", ep.metadata);
    check!(ep.description.is_empty(), "{:?}", ep.description);
    check!(ep.disabled == Some(false), "{:?}", ep.disabled);
    c.ep_id = ep.id;
    Ok(())
}

async fn endpoint_reads(c: &Ctx) -> Outcome {
    let eps = c.svix.endpoint();
    check!(eps.get(c.app_uid.clone(), format!("ep-{}", c.run)).await?.id == c.ep_id, "endpoint get by uid");
    let patch = EndpointPatch { description: Some("Billing receiver".into()), ..EndpointPatch::new() };
    let patched = eps.patch(c.app_uid.clone(), c.ep_id.clone(), patch).await?;
    check!(patched.description == "Billing receiver" && patched.throttle_rate == Some(10), "{patched:?}");
    let listed = eps.list(c.app_uid.clone(), None).await?;
    check!(listed.data.iter().map(|e| &e.id).eq([&c.ep_id]), "{listed:?}");
    Ok(())
}

async fn headers(c: &Ctx) -> Outcome {
    let eps = c.svix.endpoint();
    let (app, ep) = (c.app_uid.clone(), c.ep_id.clone());
    let got = eps.get_headers(app.clone(), ep.clone()).await?;
    // A credential header is named in `sensitive`, its value never shown.
    check!(got.headers == map([("X-Drop", "gone")]) && got.sensitive == set(["X-Api-Key"]), "{got:?}");
    let patch = EndpointHeadersPatchIn {
        delete_headers: Some(vec!["X-Drop".into()]),
        ..EndpointHeadersPatchIn::new(map([("X-New", "n")]))
    };
    eps.patch_headers(app.clone(), ep.clone(), patch).await?;
    let got = eps.get_headers(app.clone(), ep.clone()).await?;
    check!(got.headers == map([("X-New", "n")]) && got.sensitive == set(["X-Api-Key"]), "{got:?}");
    eps.set_headers(app.clone(), ep.clone(), EndpointHeadersIn::new(map([("X-Only", "1")]))).await?;
    let got = eps.get_headers(app, ep).await?;
    check!(got.headers == map([("X-Only", "1")]), "{:?}", got.headers);
    Ok(())
}

async fn send_idempotent(c: &mut Ctx) -> Outcome {
    let msg_in = MessageIn {
        channels: Some(set(["billing"])),
        ..MessageIn::new(c.event_type.clone(), json!({"amount": 42, "currency": "EUR"}))
    };
    let key = || Some(MessageCreateOptions { idempotency_key: Some(format!("key-{}", c.run)), ..Default::default() });
    let first = c.svix.message().create(c.app_uid.clone(), msg_in.clone(), key()).await?;
    check!(first.id.starts_with("msg_"), "{}", first.id);
    let again = c.svix.message().create(c.app_uid.clone(), msg_in, key()).await?;
    check!(again.id == first.id, "same key gave another message: {} != {}", again.id, first.id);
    // Without an explicit key the SDK sends a fresh one: a new message.
    let other_in =
        MessageIn { event_id: Some(format!("evt-{}", c.run)), ..MessageIn::new("other.type".into(), json!({})) };
    let other = c.svix.message().create(c.app_uid.clone(), other_in, None).await?;
    check!(other.id != first.id, "an auto-keyed message reused an id");
    check!(other.event_id.as_deref() == Some(format!("evt-{}", c.run).as_str()), "{:?}", other.event_id);
    c.msg_id = first.id;
    c.other_id = other.id;
    Ok(())
}

async fn list_messages(c: &Ctx) -> Outcome {
    let msgs = c.svix.message();
    let app = || c.app_uid.clone();
    let mut both = vec![c.other_id.clone(), c.msg_id.clone()];
    both.sort();
    let plain = msgs.list(app(), Some(MessageListOptions { with_content: Some(false), ..Default::default() })).await?;
    let mut ids: Vec<String> = plain.data.iter().map(|m| m.id.clone()).collect();
    ids.sort();
    check!(ids == both, "{ids:?}");
    check!(plain.data.iter().all(|m| m.payload == json!({})), "with_content=false carries no payload");
    check!(plain.done && plain.iterator.is_some(), "{plain:?}");
    let full = msgs.list(app(), Some(MessageListOptions { with_content: Some(true), ..Default::default() })).await?;
    let msg = full.data.iter().find(|m| m.id == c.msg_id).ok_or("message missing")?;
    check!(msg.payload == json!({"amount": 42, "currency": "EUR"}), "{:?}", msg.payload);
    let options = MessageListOptions {
        event_types: Some(set([c.event_type.as_str()])),
        channel: Some("billing".into()),
        ..Default::default()
    };
    let filtered = msgs.list(app(), Some(options)).await?;
    check!(filtered.data.iter().map(|m| &m.id).eq([&c.msg_id]), "{filtered:?}");
    let now = Utc::now();
    let options = MessageListOptions {
        after: Some(now - Span::hours(1)),
        before: Some(now + Span::hours(1)),
        ..Default::default()
    };
    check!(msgs.list(app(), Some(options)).await?.data.len() == 2, "time window");
    let empty =
        msgs.list(app(), Some(MessageListOptions { before: Some(now - Span::hours(1)), ..Default::default() })).await?;
    check!(empty.data.is_empty() && empty.iterator.is_none(), "{empty:?}");
    let paged = msgs.list(app(), Some(MessageListOptions { limit: Some(1), ..Default::default() })).await?;
    check!(paged.data.len() == 1 && !paged.done, "{paged:?}");
    let options = MessageListOptions { limit: Some(1), iterator: paged.iterator.clone(), ..Default::default() };
    let rest = msgs.list(app(), Some(options)).await?;
    let expected: Vec<&String> = both.iter().filter(|id| **id != paged.data[0].id).collect();
    check!(rest.data.iter().map(|m| &m.id).eq(expected) && rest.done, "{rest:?}");
    Ok(())
}

async fn get_message(c: &Ctx) -> Outcome {
    let got = c.svix.message().get(c.app_uid.clone(), c.msg_id.clone(), Some(with_content())).await?;
    check!(got.payload == json!({"amount": 42, "currency": "EUR"}), "{:?}", got.payload);
    check!(got.event_type == c.event_type && got.channels == Some(set(["billing"])), "{got:?}");
    let by_event_id = c.svix.message().get(c.app_uid.clone(), format!("evt-{}", c.run), None).await?;
    check!(by_event_id.id == c.other_id, "{by_event_id:?}");
    Ok(())
}

async fn secrets(c: &Ctx) -> Outcome {
    let eps = c.svix.endpoint();
    let (app, ep) = (c.app_uid.clone(), c.ep_id.clone());
    let first = eps.get_secret(app.clone(), ep.clone()).await?.key;
    check!(first.starts_with("whsec_"), "{first}");
    let rotated = eps.rotate_secret(app.clone(), ep.clone(), EndpointSecretRotateIn::new(), None).await?;
    check!(rotated.key.starts_with("whsec_") && rotated.key != first, "{rotated:?}");
    let now = eps.get_secret(app.clone(), ep.clone()).await?.key;
    check!(now == rotated.key, "get_secret after rotate: {now} != {}", rotated.key);
    let chosen = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let rotate_in = EndpointSecretRotateIn { key: Some(chosen.into()), ..EndpointSecretRotateIn::new() };
    eps.rotate_secret(app.clone(), ep.clone(), rotate_in, None).await?;
    check!(eps.get_secret(app, ep).await?.key == chosen, "supplied key not honoured");
    Ok(())
}

async fn attempts(c: &Ctx) -> Outcome {
    let attempts = c.svix.message_attempt();
    let options = MessageAttemptListByMsgOptions { limit: Some(10), ..Default::default() };
    let by_msg = attempts.list_by_msg(c.app_uid.clone(), c.msg_id.clone(), Some(options)).await?;
    let options = MessageAttemptListByEndpointOptions { limit: Some(10), ..Default::default() };
    let by_ep = attempts.list_by_endpoint(c.app_uid.clone(), c.ep_id.clone(), Some(options)).await?;
    for a in by_msg.data.iter().chain(&by_ep.data) {
        check!(a.msg_id == c.msg_id && a.endpoint_id == c.ep_id, "{a:?}");
    }
    let dests = attempts.list_attempted_destinations(c.app_uid.clone(), c.msg_id.clone(), None).await?;
    check!(dests.data.iter().map(|d| &d.id).eq([&c.ep_id]), "{dests:?}");
    // "other.type" is filtered out by the endpoint: no destination.
    let none = attempts.list_attempted_destinations(c.app_uid.clone(), c.other_id.clone(), None).await?;
    check!(none.data.is_empty(), "{none:?}");
    Ok(())
}

async fn tasks(c: &Ctx) -> Outcome {
    let since = Utc::now() - Span::hours(1);
    let recover = c.svix.endpoint().recover(c.app_uid.clone(), c.ep_id.clone(), RecoverIn::new(since), None).await?;
    let replay =
        c.svix.endpoint().replay_missing(c.app_uid.clone(), c.ep_id.clone(), ReplayIn::new(since), None).await?;
    let bulk = BulkReplayIn { status: Some(MessageStatus::Success), ..BulkReplayIn::new(since) };
    let bulk = c.svix.endpoint().bulk_replay(c.app_uid.clone(), c.ep_id.clone(), bulk, None).await?;
    check!(recover.task == BackgroundTaskType::EndpointRecover, "{recover:?}");
    check!(replay.task == BackgroundTaskType::EndpointReplay, "{replay:?}");
    check!(bulk.task == BackgroundTaskType::EndpointBulkReplay, "{bulk:?}");
    for (id, task) in [(&recover.id, recover.task), (&replay.id, replay.task), (&bulk.id, bulk.task)] {
        check!(id.starts_with("qtask_"), "{id}");
        let got = wait_for(&format!("{id} to finish"), || async {
            let got = c.svix.background_task().get(id.clone()).await?;
            Ok((got.status != BackgroundTaskStatus::Running).then_some(got))
        })
        .await?;
        check!(got.status == BackgroundTaskStatus::Finished && got.task == task, "{got:?}");
    }
    let options = BackgroundTaskListOptions { task: Some(BackgroundTaskType::EndpointRecover), ..Default::default() };
    let listed = c.svix.background_task().list(Some(options)).await?;
    check!(listed.data.iter().any(|t| t.id == recover.id), "{listed:?}");
    check!(listed.data.iter().all(|t| t.task == BackgroundTaskType::EndpointRecover), "{listed:?}");
    Ok(())
}

async fn integrations(c: &Ctx) -> Outcome {
    let integration = c.svix.integration();
    let input = IntegrationIn { feature_flags: Some(set(["beta"])), ..IntegrationIn::new("Zapier".into()) };
    let created = integration.create(c.app_uid.clone(), input, None).await?;
    check!(created.id.starts_with("integ_") && created.feature_flags == Some(set(["beta"])), "{created:?}");
    let listed = integration.list(c.app_uid.clone(), None).await?;
    check!(listed.data.iter().any(|i| i.id == created.id), "{listed:?}");
    let renamed = IntegrationUpdate::new("Zapier EU".into());
    let updated = integration.update(c.app_uid.clone(), created.id.clone(), renamed).await?;
    let got = integration.get(c.app_uid.clone(), created.id.clone()).await?;
    check!(updated.name == "Zapier EU" && got.name == "Zapier EU", "{updated:?}");
    let key = integration.rotate_key(c.app_uid.clone(), created.id.clone(), None).await?.key;
    let third_party = c.with_token(&key);
    let endpoints = third_party.endpoint().list(c.app_uid.clone(), None).await?;
    check!(endpoints.data.iter().map(|e| &e.id).eq([&c.ep_id]), "{endpoints:?}");
    expect_http_error(403, third_party.application().list(None)).await?;
    integration.delete(c.app_uid.clone(), created.id.clone()).await?;
    expect_http_error(401, third_party.endpoint().list(c.app_uid.clone(), None)).await
}

async fn portal(c: &Ctx) -> Outcome {
    let access = c.svix.authentication().app_portal_access(c.app_uid.clone(), AppPortalAccessIn::new(), None).await?;
    check!(access.url.starts_with("http") && access.url.contains(&access.token), "{access:?}");
    let tenant = c.with_token(&access.token);
    check!(tenant.application().get(c.app_uid.clone()).await?.id == c.app_id, "portal token cannot read its app");
    let listed = tenant.endpoint().list(c.app_uid.clone(), None).await?;
    check!(listed.data.iter().map(|e| &e.id).eq([&c.ep_id]), "portal token endpoint list");
    expect_http_error(403, tenant.application().list(None)).await?;
    // Deprecated in favour of capabilities, but platforms still send it.
    #[allow(deprecated)]
    let read_only = AppPortalAccessIn { read_only: Some(true), ..AppPortalAccessIn::new() };
    let read_only = c.svix.authentication().app_portal_access(c.app_uid.clone(), read_only, None).await?;
    let viewer = c.with_token(&read_only.token);
    expect_http_error(403, viewer.endpoint().create(c.app_uid.clone(), EndpointIn::new(HOOK_URL.into()), None)).await?;
    check!(!viewer.message().list(c.app_uid.clone(), None).await?.data.is_empty(), "a read-only token can read");
    Ok(())
}

async fn validation_error(c: &Ctx) -> Outcome {
    match c.svix.endpoint().create(c.app_uid.clone(), EndpointIn::new("ftp://nope".into()), None).await {
        Err(Error::Validation(e)) => {
            check!(e.status.as_u16() == 422, "{}", e.status);
            let detail = e.payload.ok_or("a 422 without a body")?.detail;
            check!(detail.iter().any(|d| d.loc.last().is_some_and(|l| l == "url")), "{detail:?}");
            Ok(())
        }
        other => Err(format!("expected a validation error, got {other:?}").into()),
    }
}

async fn view_base(c: &mut Ctx) -> Outcome {
    let access_in =
        AppPortalAccessIn { capabilities: Some(set([AppPortalCapability::ViewBase])), ..AppPortalAccessIn::new() };
    let access = c.svix.authentication().app_portal_access(c.app_uid.clone(), access_in, None).await?;
    let viewer = c.with_token(&access.token);
    let (app, ep) = (c.app_uid.clone(), c.ep_id.clone());
    check!(viewer.application().get(app.clone()).await?.id == c.app_id, "ViewBase reads its app");
    let listed = viewer.endpoint().list(app.clone(), None).await?;
    check!(listed.data.iter().map(|e| &e.id).eq([&c.ep_id]), "ViewBase lists endpoints");
    check!(viewer.message().list(app.clone(), None).await?.data.len() == 2, "ViewBase lists messages");
    viewer.message_attempt().list_by_endpoint(app.clone(), ep.clone(), None).await?;
    let eps = viewer.endpoint();
    expect_http_error(403, eps.create(app.clone(), EndpointIn::new(HOOK_URL.into()), None)).await?;
    let patch = EndpointPatch { description: Some("x".into()), ..EndpointPatch::new() };
    expect_http_error(403, eps.patch(app.clone(), ep.clone(), patch)).await?;
    expect_http_error(403, eps.delete(app.clone(), ep.clone())).await?;
    expect_http_error(403, eps.get_secret(app.clone(), ep.clone())).await?;
    expect_http_error(403, eps.rotate_secret(app.clone(), ep.clone(), EndpointSecretRotateIn::new(), None)).await?;
    expect_http_error(403, eps.recover(app, ep, RecoverIn::new(Utc::now()), None)).await?;
    c.view_base = Some(viewer);
    Ok(())
}

async fn tokens(c: &Ctx) -> Outcome {
    let auth = c.svix.authentication();
    let (app, ep) = (c.app_uid.clone(), c.ep_id.clone());
    let caps = set([AppPortalCapability::ViewBase, AppPortalCapability::ViewEndpointSecret]);
    let access_in = AppPortalAccessIn { capabilities: Some(caps), ..AppPortalAccessIn::new() };
    let viewer = c.with_token(&auth.app_portal_access(app.clone(), access_in, None).await?.token);
    check!(viewer.endpoint().get_secret(app.clone(), ep.clone()).await?.key.starts_with("whsec_"), "secret read");
    expect_http_error(403, viewer.endpoint().rotate_secret(app.clone(), ep, EndpointSecretRotateIn::new(), None))
        .await?;
    let leaving = c.with_token(&auth.app_portal_access(app.clone(), AppPortalAccessIn::new(), None).await?.token);
    leaving.authentication().logout(None).await?;
    expect_http_error(401, leaving.application().get(app.clone())).await?;
    check!(viewer.application().get(app.clone()).await?.id == c.app_id, "logout revoked another token");
    auth.expire_all(app.clone(), ApplicationTokenExpireIn::new(), None).await?;
    expect_http_error(401, viewer.application().get(app.clone())).await?;
    let view_base = c.view_base.as_ref().ok_or("no ViewBase token")?;
    expect_http_error(401, view_base.message().list(app, None)).await
}

async fn data_and_catalog(c: &Ctx) -> Outcome {
    let msgs = c.svix.message();
    let app = c.app_uid.clone();
    let precheck =
        MessagePrecheckIn { channels: Some(set(["billing"])), ..MessagePrecheckIn::new(c.event_type.clone()) };
    check!(msgs.precheck(app.clone(), precheck, None).await?.active, "precheck");
    check!(!msgs.precheck(app.clone(), MessagePrecheckIn::new("no.such".into()), None).await?.active, "precheck");
    let bulk = BulkExpungeContentsIn { ids: Some(set([c.other_id.as_str(), "msg_none"])) };
    let out = msgs.bulk_expunge_content(app.clone(), bulk, None).await?;
    let expected =
        [(c.other_id.clone(), BulkExpungeStatus::Expunged), ("msg_none".to_string(), BulkExpungeStatus::NotFound)];
    check!(out.results == expected.into_iter().collect(), "{out:?}");
    let task = msgs.expunge_all_contents(app, None).await?;
    check!(task.task == BackgroundTaskType::ApplicationPurgeContent, "{task:?}");
    let name = format!("imported.{}", c.run);
    let spec = json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
                      "webhooks": {name.clone(): {"post": {"summary": "Imported"}}}});
    let import = EventTypeImportOpenApiIn { spec: Some(spec), ..EventTypeImportOpenApiIn::new() };
    let imported = c.svix.event_type().import_openapi(import, None).await?;
    check!(imported.data.modified == [name], "{imported:?}");
    Ok(())
}

async fn operational(c: &Ctx) -> Outcome {
    let ops = c.svix.operational_webhook().endpoint();
    let ep_in = OperationalWebhookEndpointIn {
        event_types: Some(set(["endpoint.disabled"])),
        ..OperationalWebhookEndpointIn::new(HOOK_URL.into())
    };
    let created = ops.create(ep_in, None).await?;
    check!(created.event_types == Some(set(["endpoint.disabled"])), "{created:?}");
    check!(ops.get(created.id.clone()).await?.url == HOOK_URL, "operational endpoint get");
    check!(ops.list(None).await?.data.iter().any(|e| e.id == created.id), "operational endpoint list");
    let upsert = OperationalWebhookEndpointUpsertIn {
        event_types: Some(set(["endpoint.deleted"])),
        ..OperationalWebhookEndpointUpsertIn::new(HOOK_URL.into())
    };
    let updated = ops.upsert(created.id.clone(), upsert).await?;
    check!(updated.event_types == Some(set(["endpoint.deleted"])), "{updated:?}");
    check!(ops.get_secret(created.id.clone()).await?.key.starts_with("whsec_"), "operational endpoint secret");
    ops.delete(created.id.clone()).await?;
    expect_http_error(404, ops.get(created.id)).await
}

async fn upserts(c: &Ctx) -> Outcome {
    // PUT replaces: the uid is sent again, or it would be cleared.
    let app_in = ApplicationIn {
        uid: Some(c.app_uid.clone()),
        metadata: Some(map([("k", "w")])),
        ..ApplicationIn::new("SDK app updated".into())
    };
    let app = c.svix.application().upsert(c.app_uid.clone(), app_in).await?;
    check!(app.id == c.app_id && app.name == "SDK app updated" && app.metadata == map([("k", "w")]), "{app:?}");
    let url = format!("{HOOK_URL}/v2");
    let ep_in = EndpointUpsertIn {
        uid: Some(format!("ep-{}", c.run)),
        event_types: Some(set([c.event_type.as_str()])),
        channels: Some(set(["billing"])),
        ..EndpointUpsertIn::new(url.clone())
    };
    let ep = c.svix.endpoint().upsert(c.app_uid.clone(), c.ep_id.clone(), ep_in).await?;
    check!(ep.id == c.ep_id && ep.url == url && ep.description.is_empty(), "{ep:?}");
    let types = c.svix.event_type();
    let et = types.upsert(c.event_type.clone(), EventTypeUpsertIn::new("Paid, updated".into())).await?;
    check!(et.description == "Paid, updated", "{et:?}");
    let patch = EventTypePatch { deprecated: Some(true), ..EventTypePatch::new() };
    let patched = types.patch(c.event_type.clone(), patch).await?;
    check!(patched.deprecated && patched.description == "Paid, updated", "{patched:?}");
    types.delete(c.event_type.clone(), None).await?;
    check!(types.get(c.event_type.clone()).await?.archived == Some(true), "archived event type");
    let live = types.list(Some(EventTypeListOptions { limit: Some(250), ..Default::default() })).await?;
    check!(!live.data.iter().any(|e| e.name == c.event_type), "an archived event type is listed");
    let options = EventTypeListOptions { limit: Some(250), include_archived: Some(true), ..Default::default() };
    check!(types.list(Some(options)).await?.data.iter().any(|e| e.name == c.event_type), "include_archived");
    Ok(())
}

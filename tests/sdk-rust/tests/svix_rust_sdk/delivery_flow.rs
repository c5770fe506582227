//! Deliveries to a local receiver: the `delivery` flow. An endpoint that
//! answers 410 is disabled and the operational webhook says so, signed;
//! attempts to a healthy and a failing endpoint are listed, filtered,
//! expunged and resent.

use std::collections::BTreeSet;

use chrono::{Duration as Span, Utc};
use serde_json::{json, Value};
use svix::api::{
    MessageAttemptListAttemptedMessagesOptions, MessageAttemptListByEndpointOptions, MessageAttemptListByMsgOptions,
    Svix,
};
use svix::models::{
    ApplicationIn, EndpointIn, EndpointOut, EventExampleIn, EventTypeIn, MessageIn, MessageOut, MessageStatus,
    OperationalWebhookEndpointIn, StatusCodeClass,
};
use svix::webhooks::Webhook;

use crate::flow::{check, client, wait_for, Flow, Outcome, Report};
use crate::receiver::Receiver;
use crate::set;

struct Ctx<'r> {
    svix: Svix,
    receiver: &'r Receiver,
    app_uid: String,
    ok: Option<EndpointOut>,
    fail: Option<EndpointOut>,
    first: Option<MessageOut>,
    second: Option<MessageOut>,
}

impl Ctx<'_> {
    fn app(&self) -> String {
        self.app_uid.clone()
    }

    fn ok(&self) -> &EndpointOut {
        self.ok.as_ref().expect("the healthy endpoint")
    }

    fn fail(&self) -> &EndpointOut {
        self.fail.as_ref().expect("the failing endpoint")
    }

    fn first(&self) -> &MessageOut {
        self.first.as_ref().expect("the first message")
    }

    fn second(&self) -> &MessageOut {
        self.second.as_ref().expect("the second message")
    }
}

pub async fn run(server_url: &str, admin_token: &str, run: &str, receiver: &Receiver, report: &mut Report) {
    let mut flow = Flow::new("delivery", report);
    let mut c = Ctx {
        svix: client(server_url, admin_token),
        receiver,
        app_uid: format!("sdk-delivery-{run}"),
        ok: None,
        fail: None,
        first: None,
        second: None,
    };
    flow.step(
        "a 410 disables an endpoint; the operational webhook gets a signed endpoint.disabled",
        operational_disabled(&c),
    )
    .await;
    flow.step("messages reach a healthy and a failing endpoint; attempts are recorded", deliveries(&mut c)).await;
    flow.step(
        "attempt filters change the result: status, status_code_class, event_types, channel, tag",
        attempt_filters(&c),
    )
    .await;
    flow.step("with_msg, attempted messages and destinations filters", with_msg_and_attempted(&c)).await;
    flow.step("message_attempt.get, then expunge_content removes the response body", expunge_attempt(&c)).await;
    flow.step("endpoint.send_example sends the chosen example to that endpoint only", send_example(&c, run)).await;
    flow.step("message_attempt.resend delivers again", resend(&c)).await;
}

async fn operational_disabled(c: &Ctx<'_>) -> Outcome {
    let ops = c.svix.operational_webhook().endpoint();
    let ops_in = OperationalWebhookEndpointIn {
        event_types: Some(set(["endpoint.disabled"])),
        ..OperationalWebhookEndpointIn::new(c.receiver.url("/ops"))
    };
    let ops_ep = ops.create(ops_in, None).await?;
    let secret = ops.get_secret(ops_ep.id.clone()).await?.key;
    let app_in = ApplicationIn { uid: Some(c.app()), ..ApplicationIn::new("Delivery app".into()) };
    let app = c.svix.application().create(app_in, None).await?;
    let gone = c.svix.endpoint().create(c.app(), EndpointIn::new(c.receiver.url("/gone")), None).await?;
    c.svix.message().create(c.app(), MessageIn::new("gone.test".into(), json!({"n": 0})), None).await?;
    let webhook = Webhook::new(&secret)?;
    let event = wait_for("an endpoint.disabled operational webhook", || async {
        for r in c.receiver.on("/ops") {
            // Fails unless signed with the operational endpoint's secret.
            webhook.verify(&r.body, &r.headers)?;
            let event: Value = serde_json::from_slice(&r.body)?;
            if event["type"] == "endpoint.disabled" && event["data"]["endpointId"] == gone.id.as_str() {
                return Ok(Some(event));
            }
        }
        Ok(None)
    })
    .await?;
    check!(event["data"]["appId"] == app.id.as_str(), "{event}");
    check!(event["data"]["appUid"] == c.app_uid.as_str() && event["data"]["trigger"] == "automatic", "{event}");
    check!(event["timestamp"].is_string(), "{event}");
    check!(c.svix.endpoint().get(c.app(), gone.id).await?.disabled == Some(true), "the endpoint is not disabled");
    ops.delete(ops_ep.id).await?;
    Ok(())
}

async fn deliveries(c: &mut Ctx<'_>) -> Outcome {
    let eps = c.svix.endpoint();
    let ok = eps.create(c.app(), EndpointIn::new(c.receiver.url("/ok")), None).await?;
    let fail = eps.create(c.app(), EndpointIn::new(c.receiver.url("/fail")), None).await?;
    let message = |event_type: &str, n: i32, channel: &str, tag: &str| MessageIn {
        channels: Some(set([channel])),
        tags: Some(set([tag])),
        ..MessageIn::new(event_type.into(), json!({"n": n}))
    };
    let first = c.svix.message().create(c.app(), message("order.created", 1, "eu", "alpha"), None).await?;
    let second = c.svix.message().create(c.app(), message("order.shipped", 2, "us", "beta"), None).await?;
    let attempts = c.svix.message_attempt();
    for ep in [&ok, &fail] {
        wait_for(&format!("two attempts to {}", ep.url), || async {
            let got = attempts.list_by_endpoint(c.app(), ep.id.clone(), None).await?;
            Ok((got.data.len() >= 2).then_some(()))
        })
        .await?;
    }
    // The two messages' attempts may run side by side: compare as sets.
    let ok_attempts = attempts.list_by_endpoint(c.app(), ok.id.clone(), None).await?;
    let msg_ids: BTreeSet<&str> = ok_attempts.data.iter().map(|a| a.msg_id.as_str()).collect();
    check!(msg_ids == BTreeSet::from([second.id.as_str(), first.id.as_str()]), "{ok_attempts:?}");
    check!(
        ok_attempts.data.iter().all(|a| a.response_status_code == 200 && a.status == MessageStatus::Success),
        "{ok_attempts:?}"
    );
    let stats = wait_for("the failing endpoint's stats", || async {
        let got = eps.get_stats(c.app(), fail.id.clone(), None).await?;
        Ok((got.fail == 2).then_some(got))
    })
    .await?;
    check!(stats.success == 0 && stats.pending == 0, "{stats:?}");
    check!(eps.get_stats(c.app(), ok.id.clone(), None).await?.success == 2, "ok endpoint stats");
    (c.ok, c.fail, c.first, c.second) = (Some(ok), Some(fail), Some(first), Some(second));
    Ok(())
}

/// Lists of both messages are compared as sets: their attempts (and, within
/// one millisecond, their ids) have no order between them.
async fn attempt_filters(c: &Ctx<'_>) -> Outcome {
    let attempts = c.svix.message_attempt();
    let (first, second) = (c.first().id.clone(), c.second().id.clone());
    let both = vec![second.clone(), first.clone()];
    type Options = MessageAttemptListByEndpointOptions;
    let o = Options::default;
    let hour_ago = Utc::now() - Span::hours(1);
    let (ok, fail) = (c.ok(), c.fail());
    let cases: [(&str, &EndpointOut, Options, Vec<String>); 12] = [
        ("no filter", ok, o(), both.clone()),
        ("event_types a", ok, Options { event_types: Some(set(["order.created"])), ..o() }, vec![first.clone()]),
        (
            "event_types a,b",
            ok,
            Options { event_types: Some(set(["order.shipped", "order.created"])), ..o() },
            both.clone(),
        ),
        ("channel", ok, Options { channel: Some("us".into()), ..o() }, vec![second.clone()]),
        ("tag", ok, Options { tag: Some("alpha".into()), ..o() }, vec![first.clone()]),
        ("tag and channel", ok, Options { tag: Some("alpha".into()), channel: Some("us".into()), ..o() }, vec![]),
        ("2xx", ok, Options { status_code_class: Some(StatusCodeClass::Code2xx), ..o() }, both.clone()),
        ("5xx", ok, Options { status_code_class: Some(StatusCodeClass::Code5xx), ..o() }, vec![]),
        ("status fail", ok, Options { status: Some(MessageStatus::Fail), ..o() }, vec![]),
        ("status fail, failing", fail, Options { status: Some(MessageStatus::Fail), ..o() }, both.clone()),
        (
            "5xx and channel, failing",
            fail,
            Options { status_code_class: Some(StatusCodeClass::Code5xx), channel: Some("eu".into()), ..o() },
            vec![first.clone()],
        ),
        ("before", ok, Options { before: Some(hour_ago), ..o() }, vec![]),
    ];
    for (label, ep, options, expected) in cases {
        let got = attempts.list_by_endpoint(c.app(), ep.id.clone(), Some(options)).await?;
        let got: BTreeSet<String> = got.data.into_iter().map(|a| a.msg_id).collect();
        let expected: BTreeSet<String> = expected.into_iter().collect();
        check!(got == expected, "list_by_endpoint ({label}): {got:?} != {expected:?}");
    }

    let endpoints_of = |options: MessageAttemptListByMsgOptions| {
        let first = first.clone();
        async move {
            let got = c.svix.message_attempt().list_by_msg(c.app(), first, Some(options)).await?;
            Ok::<_, svix::error::Error>(got.data.into_iter().map(|a| a.endpoint_id).collect::<Vec<_>>())
        }
    };
    let by_msg = MessageAttemptListByMsgOptions::default;
    let (ok, fail) = (c.ok().id.clone(), c.fail().id.clone());
    let all: BTreeSet<String> = endpoints_of(by_msg()).await?.into_iter().collect();
    check!(all == set([ok.as_str(), fail.as_str()]), "list_by_msg: {all:?}");
    let class = |class| MessageAttemptListByMsgOptions { status_code_class: Some(class), ..by_msg() };
    check!(endpoints_of(class(StatusCodeClass::Code2xx)).await? == [ok.clone()], "2xx by msg");
    check!(endpoints_of(class(StatusCodeClass::Code5xx)).await? == [fail.clone()], "5xx by msg");
    let failed = MessageAttemptListByMsgOptions { status: Some(MessageStatus::Fail), ..by_msg() };
    check!(endpoints_of(failed).await? == [fail], "status by msg");
    let to_ok = MessageAttemptListByMsgOptions { endpoint_id: Some(ok.clone()), ..by_msg() };
    check!(endpoints_of(to_ok).await? == [ok], "endpoint_id by msg");
    Ok(())
}

async fn with_msg_and_attempted(c: &Ctx<'_>) -> Outcome {
    let attempts = c.svix.message_attempt();
    let (ok, fail) = (c.ok().id.clone(), c.fail().id.clone());
    let (first, second) = (c.first().id.clone(), c.second().id.clone());
    let created =
        || MessageAttemptListByEndpointOptions { event_types: Some(set(["order.created"])), ..Default::default() };
    let plain = attempts.list_by_endpoint(c.app(), ok.clone(), Some(created())).await?;
    check!(plain.data[0].msg.is_none(), "{plain:?}");
    let with_msg = MessageAttemptListByEndpointOptions { with_msg: Some(true), ..created() };
    let with_msg = attempts.list_by_endpoint(c.app(), ok.clone(), Some(with_msg)).await?;
    let msg = with_msg.data[0].msg.as_ref().ok_or("with_msg gave no message")?;
    check!(msg.id == first && msg.event_type == "order.created", "{with_msg:?}");

    let attempted = |ep: &str, options: MessageAttemptListAttemptedMessagesOptions| {
        let ep = ep.to_string();
        async move {
            let got = c.svix.message_attempt().list_attempted_messages(c.app(), ep, Some(options)).await?;
            Ok::<_, svix::error::Error>(got.data.into_iter().map(|m| m.id).collect::<BTreeSet<_>>())
        }
    };
    let options = MessageAttemptListAttemptedMessagesOptions::default;
    let both = set([first.as_str(), second.as_str()]);
    check!(attempted(&ok, options()).await? == both, "attempted messages");
    let eu = MessageAttemptListAttemptedMessagesOptions { channel: Some("eu".into()), ..options() };
    check!(attempted(&ok, eu).await? == set([first.as_str()]), "attempted messages by channel");
    let beta = MessageAttemptListAttemptedMessagesOptions { tag: Some("beta".into()), ..options() };
    check!(attempted(&ok, beta).await? == set([second.as_str()]), "attempted messages by tag");
    let shipped = MessageAttemptListAttemptedMessagesOptions { event_types: Some(set(["order.shipped"])), ..options() };
    check!(attempted(&ok, shipped).await? == set([second.as_str()]), "attempted messages by event type");
    let failed = || MessageAttemptListAttemptedMessagesOptions { status: Some(MessageStatus::Fail), ..options() };
    check!(attempted(&ok, failed()).await?.is_empty(), "attempted messages by status");
    check!(attempted(&fail, failed()).await? == both, "failed attempted messages");
    let dests = attempts.list_attempted_destinations(c.app(), first, None).await?;
    let ids: BTreeSet<String> = dests.data.iter().map(|d| d.id.clone()).collect();
    check!(ids == set([ok.as_str(), fail.as_str()]), "{dests:?}");
    let status_of = |id: &str| dests.data.iter().find(|d| d.id == id).map(|d| d.status);
    check!(
        status_of(&ok) == Some(MessageStatus::Success) && status_of(&fail) == Some(MessageStatus::Fail),
        "{dests:?}"
    );
    Ok(())
}

async fn expunge_attempt(c: &Ctx<'_>) -> Outcome {
    let attempts = c.svix.message_attempt();
    let first = c.first().id.clone();
    let to_ok = || MessageAttemptListByMsgOptions { endpoint_id: Some(c.ok().id.clone()), ..Default::default() };
    let listed = attempts.list_by_msg(c.app(), first.clone(), Some(to_ok())).await?;
    let attempt = listed.data.first().ok_or("no attempt to the healthy endpoint")?;
    let got = attempts.get(c.app(), first.clone(), attempt.id.clone(), None).await?;
    check!(got.id == attempt.id && got.response == r#"{"receivedOn":"/ok"}"#, "{got:?}");
    attempts.expunge_content(c.app(), first.clone(), attempt.id.clone()).await?;
    let after = attempts.get(c.app(), first.clone(), attempt.id.clone(), None).await?;
    check!(!after.response.contains("receivedOn"), "{after:?}");
    let listed = attempts.list_by_msg(c.app(), first, Some(to_ok())).await?;
    check!(!listed.data[0].response.contains("receivedOn"), "{listed:?}");
    Ok(())
}

async fn send_example(c: &Ctx<'_>, run: &str) -> Outcome {
    let name = format!("order.example.{run}");
    let examples = json!([{"n": "first"}, {"n": "second"}]);
    let schemas = json!({"1": {"type": "object", "examples": examples}});
    let et_in = EventTypeIn { schemas: Some(schemas), ..EventTypeIn::new(name.clone(), "Examples".into()) };
    c.svix.event_type().create(et_in, None).await?;
    let ok = c.ok().id.clone();
    let example = |index| EventExampleIn { example_index: Some(index), ..EventExampleIn::new(name.clone()) };
    let msg = c.svix.endpoint().send_example(c.app(), ok.clone(), example(1), None).await?;
    check!(msg.event_type == name, "{msg:?}");
    let delivered = wait_for("the example's delivery", || async {
        let on_ok = c.receiver.on("/ok");
        Ok(on_ok.into_iter().find(|r| r.headers.get("webhook-id").is_some_and(|v| v == msg.id.as_str())))
    })
    .await?;
    let body: Value = serde_json::from_slice(&delivered.body)?;
    check!(body == examples[1], "{body}");
    let dests = c.svix.message_attempt().list_attempted_destinations(c.app(), msg.id.clone(), None).await?;
    check!(dests.data.iter().map(|d| &d.id).eq([&ok]), "{dests:?}");
    match c.svix.endpoint().send_example(c.app(), ok, example(2), None).await {
        Err(svix::error::Error::Validation(e)) => {
            let detail = e.payload.ok_or("a 422 without a body")?.detail;
            check!(detail.iter().any(|d| d.loc.last().is_some_and(|l| l == "exampleIndex")), "{detail:?}");
            Ok(())
        }
        other => Err(format!("an example index past the end: expected a 422, got {other:?}").into()),
    }
}

async fn resend(c: &Ctx<'_>) -> Outcome {
    let attempts = c.svix.message_attempt();
    let (first, ok) = (c.first().id.clone(), c.ok().id.clone());
    let before = c.receiver.on("/ok").len();
    attempts.resend(c.app(), first.clone(), ok.clone(), None).await?;
    let to_ok = || MessageAttemptListByMsgOptions { endpoint_id: Some(ok.clone()), ..Default::default() };
    wait_for("the resent attempt", || async {
        let got = attempts.list_by_msg(c.app(), first.clone(), Some(to_ok())).await?;
        Ok((got.data.len() == 2).then_some(()))
    })
    .await?;
    let sent = c.receiver.on("/ok").split_off(before);
    check!(sent.len() == 1 && sent[0].headers.get("webhook-id").is_some_and(|v| v == first.as_str()), "{sent:?}");
    c.svix.application().delete(c.app()).await?;
    Ok(())
}

"""Drives a running Hookline server with the official Svix Python SDK, unchanged.

Only `server_url` is set. Run by tests/e2e/sdk_compat.rs with SERVER_URL and
TOKEN (an admin token) in the environment; prints one line per check, then
`N passed, M failed`, and exits non-zero if any check failed. The JavaScript
(js/svix_sdk.mjs) and Rust (tests/sdk-rust) SDKs run the same scenarios.

The checks run in order and share state (the application, the endpoint...),
so after the first failure of the synchronous flow the rest of it is skipped
(and counted as failed); the asynchronous flow runs regardless.
"""

import asyncio
import datetime as dt
import http.server
import json
import os
import threading
import time
import sys
import traceback
import uuid

from svix.api import (
    AppPortalAccessIn,
    ApplicationIn,
    ApplicationTokenExpireIn,
    BulkExpungeContentsIn,
    BulkReplayIn,
    IntegrationIn,
    IntegrationUpdate,
    EventTypeImportOpenApiIn,
    MessagePrecheckIn,
    OperationalWebhookEndpointIn,
    BackgroundTaskListOptions,
    ApplicationPatch,
    EndpointHeadersIn,
    EndpointHeadersPatchIn,
    EndpointIn,
    EndpointPatch,
    EndpointUpsertIn,
    EventExampleIn,
    EndpointSecretRotateIn,
    EventTypeIn,
    EventTypeListOptions,
    EventTypePatch,
    EventTypeUpsertIn,
    MessageAttemptListAttemptedMessagesOptions,
    MessageAttemptListByEndpointOptions,
    MessageAttemptListByMsgOptions,
    MessageCreateOptions,
    MessageGetOptions,
    MessageIn,
    MessageListOptions,
    ApplicationListOptions,
    OperationalWebhookEndpointUpsertIn,
    Ordering,
    RecoverIn,
    ReplayIn,
    Svix,
    SvixAsync,
    SvixOptions,
)
from svix.api.errors.http_error import HttpError
from svix.models import (
    AppPortalCapability,
    BackgroundTaskStatus,
    BackgroundTaskType,
    BulkExpungeStatus,
    MessageStatus,
    StatusCodeClass,
)
from svix.webhooks import Webhook
from svix.api.errors.http_validation_error import HTTPValidationError

SERVER_URL = os.environ["SERVER_URL"]
TOKEN = os.environ["TOKEN"]
# Never resolves (RFC 6761): nothing is sent anywhere if delivery is attempted.
HOOK_URL = "https://receiver.example.invalid/webhook"
RUN = uuid.uuid4().hex[:8]
# How long a delivery or a background task may take.
WAIT_SECONDS = 30

passed = 0
failed = 0


def options():
    # No client-side retries: a 5xx must surface as a failure, not be hidden.
    return SvixOptions(server_url=SERVER_URL, retry_schedule=[])


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def expect_http_error(status, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except HttpError as e:
        check(e.status_code == status, f"expected HTTP {status}, got {e.status_code}: {e}")
        check(isinstance(e.code, str) and e.code, f"error without code: {e}")
        return e
    raise AssertionError(f"expected HttpError {status}, but the call succeeded")


def wait_for(what, probe):
    """Polls `probe` until it answers something truthy; fails naming `what` after WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not (got := probe()):
        check(time.monotonic() < deadline, f"timed out waiting for {what}")
        time.sleep(0.05)
    return got


class Receiver:
    """A local HTTP receiver: records every request; answers 410 on /gone,
    500 on /fail, and 200 with a small JSON body elsewhere."""

    def __init__(self):
        self.received = []
        lock = threading.Lock()
        received = self.received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with lock:
                    received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status = {"/gone": 410, "/fail": 500}.get(self.path, 200)
                reply = json.dumps({"receivedOn": self.path}, separators=(",", ":")).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path):
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def on(self, path):
        return [(h, b) for (p, h, b) in list(self.received) if p == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Flow:
    """Runs named steps in order; after a failure the rest are skipped."""

    def __init__(self, name):
        self.name = name
        self.broken = False

    def step(self, label, fn):
        global passed, failed
        full = f"{self.name}: {label}"
        if self.broken:
            failed += 1
            print(f"SKIP {full} (an earlier step failed)")
            return None
        try:
            result = fn()
        except Exception:  # noqa: BLE001 - report every kind of failure
            failed += 1
            self.broken = True
            print(f"FAIL {full}")
            traceback.print_exc(file=sys.stdout)
            return None
        passed += 1
        print(f"ok   {full}")
        return result


def sync_flow():
    svix = Svix(TOKEN, options())
    flow = Flow("sync")
    s = {}
    app_uid = f"sdk-app-{RUN}"
    event_type = f"invoice.paid.{RUN}"

    flow.step("health", lambda: svix.health.get())

    def create_app():
        app = svix.application.create(ApplicationIn(name="SDK app", uid=app_uid, metadata={"k": "v"}))
        check(app.id.startswith("app_"), app.id)
        check(app.uid == app_uid, app.uid)
        check(app.metadata == {"k": "v"}, app.metadata)
        check(app.created_at.tzinfo is not None, app.created_at)
        s["app"] = app

    flow.step("application.create with uid", create_app)
    flow.step(
        "application.create with the same uid raises 409",
        lambda: expect_http_error(409, svix.application.create, ApplicationIn(name="again", uid=app_uid)),
    )

    def get_or_create():
        app = svix.application.get_or_create(ApplicationIn(name="again", uid=app_uid))
        check(app.id == s["app"].id, f"{app.id} != {s['app'].id}")
        check(app.name == "SDK app", app.name)

    flow.step("application.get_or_create returns the existing app", get_or_create)

    def app_reads():
        check(svix.application.get(app_uid).id == s["app"].id, "get by uid")
        check(svix.application.get(s["app"].id).uid == app_uid, "get by id")
        listed = svix.application.list(ApplicationListOptions(limit=250, order=Ordering.ASCENDING))
        check(s["app"].id in [a.id for a in listed.data], "app missing from list")
        patched = svix.application.patch(app_uid, ApplicationPatch(name="SDK app renamed"))
        check(patched.name == "SDK app renamed" and patched.uid == app_uid, patched)

    flow.step("application.get / list / patch", app_reads)

    def create_event_type():
        et = svix.event_type.create(
            EventTypeIn(
                name=event_type,
                description="An invoice was paid",
                schemas={"1": {"type": "object", "properties": {"amount": {"type": "number"}}}},
            )
        )
        check(et.name == event_type, et.name)
        check(et.deprecated is False, et.deprecated)
        check(et.schemas["1"]["type"] == "object", et.schemas)
        listed = svix.event_type.list(EventTypeListOptions(limit=250, with_content=True))
        check(event_type in [e.name for e in listed.data], "event type missing from list")
        check(svix.event_type.get(event_type).description == "An invoice was paid", "event type get")

    flow.step("event_type.create / list / get", create_event_type)

    def create_endpoint():
        ep = svix.endpoint.create(
            app_uid,
            EndpointIn(
                url=HOOK_URL,
                uid=f"ep-{RUN}",
                event_types=[event_type],
                throttle_rate=10,
                channels=["billing"],
                headers={"X-Api-Key": "k1", "X-Drop": "gone"},
                metadata={"owner": "billing"},
            ),
        )
        check(ep.id.startswith("ep_"), ep.id)
        check(ep.event_types == [event_type], ep.event_types)
        check(ep.throttle_rate == 10, ep.throttle_rate)
        check(ep.channels == ["billing"], ep.channels)
        check(ep.metadata == {"owner": "billing"}, ep.metadata)
        check(ep.description == "", repr(ep.description))
        check(ep.disabled is False, ep.disabled)
        s["ep"] = ep

    flow.step("endpoint.create with event_types, throttle_rate, headers, metadata", create_endpoint)

    def endpoint_reads():
        by_uid = svix.endpoint.get(app_uid, f"ep-{RUN}")
        check(by_uid.id == s["ep"].id, "endpoint get by uid")
        patched = svix.endpoint.patch(app_uid, s["ep"].id, EndpointPatch(description="Billing receiver"))
        check(patched.description == "Billing receiver" and patched.throttle_rate == 10, patched)
        listed = svix.endpoint.list(app_uid)
        check([e.id for e in listed.data] == [s["ep"].id], listed)

    flow.step("endpoint.get by uid / patch / list", endpoint_reads)

    def headers():
        got = svix.endpoint.get_headers(app_uid, s["ep"].id)
        # A credential header is named in `sensitive`, its value never shown.
        check(got.headers == {"X-Drop": "gone"} and got.sensitive == ["X-Api-Key"], got)
        svix.endpoint.patch_headers(
            app_uid, s["ep"].id, EndpointHeadersPatchIn(headers={"X-New": "n"}, delete_headers=["X-Drop"])
        )
        got = svix.endpoint.get_headers(app_uid, s["ep"].id)
        check(got.headers == {"X-New": "n"} and got.sensitive == ["X-Api-Key"], got)
        svix.endpoint.set_headers(app_uid, s["ep"].id, EndpointHeadersIn(headers={"X-Only": "1"}))
        got = svix.endpoint.get_headers(app_uid, s["ep"].id)
        check(got.headers == {"X-Only": "1"}, got.headers)

    flow.step("endpoint headers get / patch (delete_headers) / set", headers)

    def send_idempotent():
        msg_in = MessageIn(event_type=event_type, payload={"amount": 42, "currency": "EUR"}, channels=["billing"])
        key = f"key-{RUN}"
        first = svix.message.create(app_uid, msg_in, MessageCreateOptions(idempotency_key=key))
        check(first.id.startswith("msg_"), first.id)
        again = svix.message.create(app_uid, msg_in, MessageCreateOptions(idempotency_key=key))
        check(again.id == first.id, f"same key gave another message: {again.id} != {first.id}")
        s["msg"] = first
        # Without an explicit key the SDK sends a fresh one: a new message.
        other = svix.message.create(app_uid, MessageIn(event_type="other.type", event_id=f"evt-{RUN}", payload={}))
        check(other.id != first.id, "an auto-keyed message reused an id")
        check(other.event_id == f"evt-{RUN}", other.event_id)
        s["other"] = other

    flow.step("message.create with an idempotency key, twice: one message", send_idempotent)
    flow.step(
        "message.create with a duplicate event_id raises 409",
        lambda: expect_http_error(
            409, svix.message.create, app_uid, MessageIn(event_type="other.type", event_id=f"evt-{RUN}", payload={})
        ),
    )

    def list_messages():
        both = {s["other"].id, s["msg"].id}
        plain = svix.message.list(app_uid)
        check({m.id for m in plain.data} == both and len(plain.data) == 2, [m.id for m in plain.data])
        check(all(m.payload == {} for m in plain.data), "the SDK default (with_content=false) carries no payload")
        check(plain.done is True and plain.iterator is not None, plain)
        full = svix.message.list(app_uid, MessageListOptions(with_content=True))
        by_id = {m.id: m for m in full.data}
        check(by_id[s["msg"].id].payload == {"amount": 42, "currency": "EUR"}, by_id[s["msg"].id].payload)
        filtered = svix.message.list(app_uid, MessageListOptions(event_types=[event_type], channel="billing"))
        check([m.id for m in filtered.data] == [s["msg"].id], filtered)
        now = dt.datetime.now(dt.timezone.utc)
        window = svix.message.list(
            app_uid, MessageListOptions(after=now - dt.timedelta(hours=1), before=now + dt.timedelta(hours=1))
        )
        check(len(window.data) == 2, window)
        empty = svix.message.list(app_uid, MessageListOptions(before=now - dt.timedelta(hours=1)))
        check(empty.data == [] and empty.iterator is None, empty)
        paged = svix.message.list(app_uid, MessageListOptions(limit=1))
        check(len(paged.data) == 1 and paged.done is False, paged)
        rest = svix.message.list(app_uid, MessageListOptions(limit=1, iterator=paged.iterator))
        check([m.id for m in rest.data] == list(both - {paged.data[0].id}) and rest.done is True, rest)

    flow.step("message.list with and without content, filters, pages", list_messages)

    def get_message():
        got = svix.message.get(app_uid, s["msg"].id, MessageGetOptions(with_content=True))
        check(got.payload == {"amount": 42, "currency": "EUR"}, got.payload)
        check(got.event_type == event_type and got.channels == ["billing"], got)
        by_event_id = svix.message.get(app_uid, f"evt-{RUN}")
        check(by_event_id.id == s["other"].id, by_event_id)

    flow.step("message.get by id and by event_id", get_message)

    def secrets():
        first = svix.endpoint.get_secret(app_uid, s["ep"].id).key
        check(first.startswith("whsec_"), first)
        rotated = svix.endpoint.rotate_secret(app_uid, s["ep"].id, EndpointSecretRotateIn())
        check(rotated.key.startswith("whsec_") and rotated.key != first, rotated)
        now = svix.endpoint.get_secret(app_uid, s["ep"].id).key
        check(now == rotated.key, f"get_secret after rotate: {now} != {rotated.key}")
        chosen = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        svix.endpoint.rotate_secret(app_uid, s["ep"].id, EndpointSecretRotateIn(key=chosen))
        check(svix.endpoint.get_secret(app_uid, s["ep"].id).key == chosen, "supplied key not honoured")

    flow.step("endpoint secret get / rotate / get shows the new key", secrets)

    def attempts():
        by_msg = svix.message_attempt.list_by_msg(app_uid, s["msg"].id, MessageAttemptListByMsgOptions(limit=10))
        check(isinstance(by_msg.data, list) and isinstance(by_msg.done, bool), by_msg)
        by_ep = svix.message_attempt.list_by_endpoint(
            app_uid, s["ep"].id, MessageAttemptListByEndpointOptions(limit=10)
        )
        check(isinstance(by_ep.data, list), by_ep)
        for a in list(by_msg.data) + list(by_ep.data):
            check(a.msg_id == s["msg"].id and a.endpoint_id == s["ep"].id, a)
        dests = svix.message_attempt.list_attempted_destinations(app_uid, s["msg"].id)
        check([d.id for d in dests.data] == [s["ep"].id], dests)
        # "other.type" is filtered out by the endpoint: no destination.
        none = svix.message_attempt.list_attempted_destinations(app_uid, s["other"].id)
        check(none.data == [], none)

    flow.step("message_attempt list_by_msg / list_by_endpoint / destinations", attempts)

    def tasks():
        since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
        started = [
            svix.endpoint.recover(app_uid, s["ep"].id, RecoverIn(since=since)),
            svix.endpoint.replay_missing(app_uid, s["ep"].id, ReplayIn(since=since)),
            svix.endpoint.bulk_replay(app_uid, s["ep"].id, BulkReplayIn(since=since, status=MessageStatus.SUCCESS)),
        ]
        kinds = [BackgroundTaskType.ENDPOINT_RECOVER, BackgroundTaskType.ENDPOINT_REPLAY, BackgroundTaskType.ENDPOINT_BULK_REPLAY]
        check([t.task for t in started] == kinds, started)
        for t in started:
            check(t.id.startswith("qtask_") and t.updated_at is not None, t)
            deadline = time.monotonic() + 30
            while (got := svix.background_task.get(t.id)).status == BackgroundTaskStatus.RUNNING:
                check(time.monotonic() < deadline, f"{t.id} still running")
                time.sleep(0.05)
            check(got.status == BackgroundTaskStatus.FINISHED and got.task == t.task, got)
        listed = svix.background_task.list(BackgroundTaskListOptions(task=BackgroundTaskType.ENDPOINT_RECOVER))
        check(started[0].id in [t.id for t in listed.data], listed)
        check(all(t.task == BackgroundTaskType.ENDPOINT_RECOVER for t in listed.data), listed)

    flow.step("endpoint.recover / replay_missing / bulk_replay run as background tasks to finished", tasks)

    def attempt_stats():
        # The receiver's name never resolves; how long the lookup takes before
        # the attempt is recorded is up to the machine's resolver.
        def listed():
            opts = MessageAttemptListByEndpointOptions(limit=50)
            return svix.message_attempt.list_by_endpoint(app_uid, s["ep"].id, opts).data

        attempts = wait_for("the endpoint's first attempt", listed)
        stats = svix.endpoint.get_attempt_stats(app_uid, s["ep"].id)
        check(stats.success + stats.fail >= len(attempts) and stats.canceled == 0, stats)

    flow.step("endpoint.get_attempt_stats counts the endpoint's attempts", attempt_stats)

    def integrations():
        created = svix.integration.create(app_uid, IntegrationIn(name="Zapier", feature_flags=["beta"]))
        check(created.id.startswith("integ_") and created.feature_flags == ["beta"], created)
        check(created.id in [i.id for i in svix.integration.list(app_uid).data], "integration missing from list")
        updated = svix.integration.update(app_uid, created.id, IntegrationUpdate(name="Zapier EU"))
        check(updated.name == "Zapier EU" and svix.integration.get(app_uid, created.id).name == "Zapier EU", updated)
        key = svix.integration.rotate_key(app_uid, created.id).key
        third_party = Svix(key, options())
        check([e.id for e in third_party.endpoint.list(app_uid).data] == [s["ep"].id], "the key reads its app")
        expect_http_error(403, third_party.application.list)
        svix.integration.delete(app_uid, created.id)
        expect_http_error(401, third_party.endpoint.list, app_uid)

    flow.step("integration create / list / get / update / rotate_key / delete", integrations)

    def portal():
        access = svix.authentication.app_portal_access(app_uid, AppPortalAccessIn())
        check(access.url.startswith("http") and access.token in access.url, access)
        tenant = Svix(access.token, options())
        check(tenant.application.get(app_uid).id == s["app"].id, "portal token cannot read its app")
        check([e.id for e in tenant.endpoint.list(app_uid).data] == [s["ep"].id], "portal token endpoint list")
        expect_http_error(403, tenant.application.list)
        read_only = svix.authentication.app_portal_access(app_uid, AppPortalAccessIn(read_only=True))
        viewer = Svix(read_only.token, options())
        expect_http_error(403, viewer.endpoint.create, app_uid, EndpointIn(url=HOOK_URL))
        check(viewer.message.list(app_uid).data != [], "a read-only token can read")

    flow.step("authentication.app_portal_access gives working tokens", portal)

    def validation_error():
        try:
            svix.endpoint.create(app_uid, EndpointIn(url="ftp://nope"))
        except HTTPValidationError as e:
            check(e.status_code == 422, e.status_code)
            check(any(d.loc[-1] == "url" for d in e.detail), e.detail)
            return
        raise AssertionError("expected HTTPValidationError")

    flow.step("a 422 surfaces as HTTPValidationError naming the field", validation_error)

    def view_base():
        access = svix.authentication.app_portal_access(app_uid, AppPortalAccessIn(capabilities=[AppPortalCapability.VIEW_BASE]))
        viewer = Svix(access.token, options())
        check(viewer.application.get(app_uid).id == s["app"].id, "ViewBase reads its app")
        check([e.id for e in viewer.endpoint.list(app_uid).data] == [s["ep"].id], "ViewBase lists endpoints")
        check(len(viewer.message.list(app_uid).data) == 2, "ViewBase lists messages")
        check(isinstance(viewer.message_attempt.list_by_endpoint(app_uid, s["ep"].id).data, list), "ViewBase attempts")
        expect_http_error(403, viewer.endpoint.create, app_uid, EndpointIn(url=HOOK_URL))
        expect_http_error(403, viewer.endpoint.patch, app_uid, s["ep"].id, EndpointPatch(description="x"))
        expect_http_error(403, viewer.endpoint.delete, app_uid, s["ep"].id)
        expect_http_error(403, viewer.endpoint.get_secret, app_uid, s["ep"].id)
        expect_http_error(403, viewer.endpoint.rotate_secret, app_uid, s["ep"].id, EndpointSecretRotateIn())
        now = dt.datetime.now(dt.timezone.utc)
        expect_http_error(403, viewer.endpoint.recover, app_uid, s["ep"].id, RecoverIn(since=now))
        s["view_base"] = viewer

    flow.step("a ViewBase token reads, but gets 403 on writes and on secrets", view_base)

    def tokens():
        caps = [AppPortalCapability.VIEW_BASE, AppPortalCapability.VIEW_ENDPOINT_SECRET]
        viewer = Svix(svix.authentication.app_portal_access(app_uid, AppPortalAccessIn(capabilities=caps)).token, options())
        check(viewer.endpoint.get_secret(app_uid, s["ep"].id).key.startswith("whsec_"), "ViewEndpointSecret reads the secret")
        expect_http_error(403, viewer.endpoint.rotate_secret, app_uid, s["ep"].id, EndpointSecretRotateIn())
        leaving = Svix(svix.authentication.app_portal_access(app_uid, AppPortalAccessIn()).token, options())
        leaving.authentication.logout()
        expect_http_error(401, leaving.application.get, app_uid)
        check(viewer.application.get(app_uid).id == s["app"].id, "logout revoked another token")
        svix.authentication.expire_all(app_uid, ApplicationTokenExpireIn())
        expect_http_error(401, viewer.application.get, app_uid)
        expect_http_error(401, s["view_base"].message.list, app_uid)

    flow.step("capabilities, authentication.logout and expire_all", tokens)

    def data_and_catalog():
        check(svix.message.precheck(app_uid, MessagePrecheckIn(event_type=event_type, channels=["billing"])).active is True, "precheck")
        check(svix.message.precheck(app_uid, MessagePrecheckIn(event_type="no.such")).active is False, "precheck")
        out = svix.message.bulk_expunge_content(app_uid, BulkExpungeContentsIn(ids=[s["other"].id, "msg_none"]))
        check(out.results == {s["other"].id: BulkExpungeStatus.EXPUNGED, "msg_none": BulkExpungeStatus.NOT_FOUND}, out)
        task = svix.message.expunge_all_contents(app_uid)
        check(task.task == BackgroundTaskType.APPLICATION_PURGE_CONTENT, task)
        spec = {"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
                "webhooks": {f"imported.{RUN}": {"post": {"summary": "Imported"}}}}
        imported = svix.event_type.import_openapi(EventTypeImportOpenApiIn(spec=spec))
        check(imported.data.modified == [f"imported.{RUN}"], imported)

    flow.step("message precheck / bulk_expunge / expunge_all_contents, event_type.import_openapi", data_and_catalog)

    def operational():
        ops = svix.operational_webhook.endpoint
        created = ops.create(OperationalWebhookEndpointIn(url=HOOK_URL, event_types=["endpoint.disabled"]))
        check(created.event_types == ["endpoint.disabled"], created)
        check(ops.get(created.id).url == HOOK_URL, "operational endpoint get")
        check(created.id in [e.id for e in ops.list().data], "operational endpoint list")
        updated = ops.upsert(created.id, OperationalWebhookEndpointUpsertIn(url=HOOK_URL, event_types=["endpoint.deleted"]))
        check(updated.event_types == ["endpoint.deleted"], updated)
        check(ops.get_secret(created.id).key.startswith("whsec_"), "operational endpoint secret")
        ops.delete(created.id)
        expect_http_error(404, ops.get, created.id)

    flow.step("operational_webhook.endpoint create / get / list / upsert / secret / delete", operational)

    def upserts():
        # PUT replaces: the uid is sent again, or it would be cleared.
        app = svix.application.upsert(app_uid, ApplicationIn(name="SDK app updated", uid=app_uid, metadata={"k": "w"}))
        check(app.id == s["app"].id and app.name == "SDK app updated" and app.metadata == {"k": "w"}, app)
        ep = svix.endpoint.upsert(
            app_uid,
            s["ep"].id,
            EndpointUpsertIn(url=f"{HOOK_URL}/v2", uid=f"ep-{RUN}", event_types=[event_type], channels=["billing"]),
        )
        check(ep.id == s["ep"].id and ep.url == f"{HOOK_URL}/v2" and ep.description == "", ep)
        et = svix.event_type.upsert(event_type, EventTypeUpsertIn(description="Paid, updated"))
        check(et.description == "Paid, updated", et)
        patched = svix.event_type.patch(event_type, EventTypePatch(deprecated=True))
        check(patched.deprecated is True and patched.description == "Paid, updated", patched)
        svix.event_type.delete(event_type)
        check(svix.event_type.get(event_type).archived is True, "archived event type")
        live = svix.event_type.list(EventTypeListOptions(limit=250))
        check(event_type not in [e.name for e in live.data], "an archived event type is listed")
        everything = svix.event_type.list(EventTypeListOptions(limit=250, include_archived=True))
        check(event_type in [e.name for e in everything.data], "include_archived lists it")

    flow.step("application.upsert / endpoint.upsert / event_type.upsert, patch, delete (archive)", upserts)

    def expunge():
        svix.message.expunge_content(app_uid, s["msg"].id)
        got = svix.message.get(app_uid, s["msg"].id, MessageGetOptions(with_content=True))
        check(got.payload == {}, got.payload)

    flow.step("message.expunge_content", expunge)

    def delete_endpoint():
        svix.endpoint.delete(app_uid, s["ep"].id)
        expect_http_error(404, svix.endpoint.get, app_uid, s["ep"].id)
        check(svix.endpoint.list(app_uid).data == [], "endpoint still listed")

    flow.step("endpoint.delete, then get raises 404", delete_endpoint)

    def delete_app():
        svix.application.delete(app_uid)
        expect_http_error(404, svix.application.get, app_uid)

    flow.step("application.delete", delete_app)


def delivery_flow(receiver):
    svix = Svix(TOKEN, options())
    flow = Flow("delivery")
    s = {}
    app_uid = f"sdk-delivery-{RUN}"

    def operational_disabled():
        ops = svix.operational_webhook.endpoint.create(
            OperationalWebhookEndpointIn(url=receiver.url("/ops"), event_types=["endpoint.disabled"])
        )
        secret = svix.operational_webhook.endpoint.get_secret(ops.id).key
        svix.application.create(ApplicationIn(name="Delivery app", uid=app_uid))
        gone = svix.endpoint.create(app_uid, EndpointIn(url=receiver.url("/gone")))
        svix.message.create(app_uid, MessageIn(event_type="gone.test", payload={"n": 0}))

        def disabled_event():
            for headers, body in receiver.on("/ops"):
                # Raises unless signed with the operational endpoint's secret.
                Webhook(secret).verify(body, headers)
                event = json.loads(body)
                if event["type"] == "endpoint.disabled" and event["data"].get("endpointId") == gone.id:
                    return event
            return None

        event = wait_for("an endpoint.disabled operational webhook", disabled_event)
        check(event["data"]["appId"] == svix.application.get(app_uid).id, event)
        check(event["data"]["appUid"] == app_uid and event["data"]["trigger"] == "automatic", event)
        check(isinstance(event["timestamp"], str), event)
        check(svix.endpoint.get(app_uid, gone.id).disabled is True, "the endpoint is not disabled")
        svix.operational_webhook.endpoint.delete(ops.id)

    flow.step("a 410 disables an endpoint; the operational webhook gets a signed endpoint.disabled", operational_disabled)

    def deliveries():
        s["ok"] = svix.endpoint.create(app_uid, EndpointIn(url=receiver.url("/ok")))
        s["fail"] = svix.endpoint.create(app_uid, EndpointIn(url=receiver.url("/fail")))
        s["first"] = svix.message.create(
            app_uid, MessageIn(event_type="order.created", payload={"n": 1}, channels=["eu"], tags=["alpha"])
        )
        s["second"] = svix.message.create(
            app_uid, MessageIn(event_type="order.shipped", payload={"n": 2}, channels=["us"], tags=["beta"])
        )
        for ep in (s["ok"], s["fail"]):
            wait_for(
                f"two attempts to {ep.url}",
                lambda: len(svix.message_attempt.list_by_endpoint(app_uid, ep.id).data) >= 2,
            )
        # The two messages' attempts may run side by side: compare as sets.
        ok_attempts = svix.message_attempt.list_by_endpoint(app_uid, s["ok"].id)
        check(sorted(a.msg_id for a in ok_attempts.data) == sorted([s["second"].id, s["first"].id]), ok_attempts)
        check(all(a.response_status_code == 200 and a.status == MessageStatus.SUCCESS for a in ok_attempts.data), ok_attempts)
        stats = wait_for(
            "the failing endpoint's stats",
            lambda: (got := svix.endpoint.get_stats(app_uid, s["fail"].id)).fail == 2 and got,
        )
        check(stats.success == 0 and stats.pending == 0, stats)
        check(svix.endpoint.get_stats(app_uid, s["ok"].id).success == 2, "ok endpoint stats")

    flow.step("messages reach a healthy and a failing endpoint; attempts are recorded", deliveries)

    # Lists of both messages are compared as sets: their attempts (and, within
    # one millisecond, their ids) have no order between them.
    def attempt_filters():
        def msg_ids(ep, **options):
            listed = svix.message_attempt.list_by_endpoint(app_uid, ep.id, MessageAttemptListByEndpointOptions(**options))
            return sorted(a.msg_id for a in listed.data)

        first, second = s["first"].id, s["second"].id
        both = sorted([second, first])
        hour_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
        cases = [
            (s["ok"], {}, both),
            (s["ok"], {"event_types": ["order.created"]}, [first]),
            (s["ok"], {"event_types": ["order.shipped", "order.created"]}, both),
            (s["ok"], {"channel": "us"}, [second]),
            (s["ok"], {"tag": "alpha"}, [first]),
            (s["ok"], {"tag": "alpha", "channel": "us"}, []),
            (s["ok"], {"status_code_class": StatusCodeClass.CODE2XX}, both),
            (s["ok"], {"status_code_class": StatusCodeClass.CODE5XX}, []),
            (s["ok"], {"status": MessageStatus.FAIL}, []),
            (s["fail"], {"status": MessageStatus.FAIL}, both),
            (s["fail"], {"status_code_class": StatusCodeClass.CODE5XX, "channel": "eu"}, [first]),
            (s["ok"], {"before": hour_ago}, []),
        ]
        for ep, options, expected in cases:
            got = msg_ids(ep, **options)
            check(got == expected, f"list_by_endpoint {options}: {got} != {expected}")

        def endpoints_of(**options):
            listed = svix.message_attempt.list_by_msg(app_uid, first, MessageAttemptListByMsgOptions(**options))
            return [a.endpoint_id for a in listed.data]

        check(sorted(endpoints_of()) == sorted([s["ok"].id, s["fail"].id]), "list_by_msg")
        check(endpoints_of(status_code_class=StatusCodeClass.CODE2XX) == [s["ok"].id], "2xx by msg")
        check(endpoints_of(status_code_class=StatusCodeClass.CODE5XX) == [s["fail"].id], "5xx by msg")
        check(endpoints_of(status=MessageStatus.FAIL) == [s["fail"].id], "status by msg")
        check(endpoints_of(endpoint_id=s["ok"].id) == [s["ok"].id], "endpoint_id by msg")

    flow.step("attempt filters change the result: status, status_code_class, event_types, channel, tag", attempt_filters)

    def with_msg_and_attempted():
        ok, fail = s["ok"].id, s["fail"].id
        first, second = s["first"].id, s["second"].id
        plain = svix.message_attempt.list_by_endpoint(
            app_uid, ok, MessageAttemptListByEndpointOptions(event_types=["order.created"])
        )
        check(plain.data[0].msg is None, plain)
        with_msg = svix.message_attempt.list_by_endpoint(
            app_uid, ok, MessageAttemptListByEndpointOptions(event_types=["order.created"], with_msg=True)
        )
        msg = with_msg.data[0].msg
        check(msg is not None and msg.id == first and msg.event_type == "order.created", with_msg)

        def attempted(ep=ok, **options):
            listed = svix.message_attempt.list_attempted_messages(
                app_uid, ep, MessageAttemptListAttemptedMessagesOptions(**options)
            )
            return sorted(m.id for m in listed.data)

        check(attempted() == sorted([second, first]), "attempted messages")
        check(attempted(channel="eu") == [first], "attempted messages by channel")
        check(attempted(tag="beta") == [second], "attempted messages by tag")
        check(attempted(event_types=["order.shipped"]) == [second], "by event type")
        check(attempted(status=MessageStatus.FAIL) == [], "attempted messages by status")
        check(attempted(fail, status=MessageStatus.FAIL) == sorted([second, first]), "failed attempted messages")
        dests = svix.message_attempt.list_attempted_destinations(app_uid, first)
        check(sorted(d.id for d in dests.data) == sorted([ok, fail]), dests)
        by_id = {d.id: d.status for d in dests.data}
        check(by_id[ok] == MessageStatus.SUCCESS and by_id[fail] == MessageStatus.FAIL, dests)

    flow.step("with_msg, attempted messages and destinations filters", with_msg_and_attempted)

    def expunge_attempt():
        first, ok = s["first"].id, s["ok"].id
        by_ok = MessageAttemptListByMsgOptions(endpoint_id=ok)
        attempt = svix.message_attempt.list_by_msg(app_uid, first, by_ok).data[0]
        got = svix.message_attempt.get(app_uid, first, attempt.id)
        check(got.id == attempt.id and got.response == '{"receivedOn":"/ok"}', got)
        svix.message_attempt.expunge_content(app_uid, first, attempt.id)
        after = svix.message_attempt.get(app_uid, first, attempt.id)
        check("receivedOn" not in after.response, after)
        listed = svix.message_attempt.list_by_msg(app_uid, first, by_ok)
        check("receivedOn" not in listed.data[0].response, listed)

    flow.step("message_attempt.get, then expunge_content removes the response body", expunge_attempt)

    def send_example():
        name = f"order.example.{RUN}"
        examples = [{"n": "first"}, {"n": "second"}]
        svix.event_type.create(EventTypeIn(name=name, description="Examples", schemas={"1": {"type": "object", "examples": examples}}))
        msg = svix.endpoint.send_example(app_uid, s["ok"].id, EventExampleIn(event_type=name, example_index=1))
        check(msg.event_type == name, msg)

        def delivered():
            return next((b for (h, b) in receiver.on("/ok") if h.get("webhook-id") == msg.id), None)

        body = wait_for("the example's delivery", delivered)
        check(json.loads(body) == examples[1], body)
        dests = svix.message_attempt.list_attempted_destinations(app_uid, msg.id)
        check([d.id for d in dests.data] == [s["ok"].id], dests)
        try:
            svix.endpoint.send_example(app_uid, s["ok"].id, EventExampleIn(event_type=name, example_index=2))
        except HTTPValidationError as e:
            check(any(d.loc[-1] == "exampleIndex" for d in e.detail), e.detail)
        else:
            raise AssertionError("an example index past the end was accepted")

    flow.step("endpoint.send_example sends the chosen example to that endpoint only", send_example)

    def resend():
        first, ok = s["first"].id, s["ok"].id
        before = len(receiver.on("/ok"))
        svix.message_attempt.resend(app_uid, first, ok)
        by_ok = MessageAttemptListByMsgOptions(endpoint_id=ok)
        wait_for("the resent attempt", lambda: len(svix.message_attempt.list_by_msg(app_uid, first, by_ok).data) == 2)
        sent = receiver.on("/ok")[before:]
        check(len(sent) == 1 and sent[0][0]["webhook-id"] == first, sent)
        svix.application.delete(app_uid)

    flow.step("message_attempt.resend delivers again", resend)


async def async_flow_steps(flow):
    svix = SvixAsync(TOKEN, options())
    app_uid = f"sdk-async-{RUN}"
    s = {}

    async def run(label, fn):
        global passed, failed
        full = f"async: {label}"
        if flow.broken:
            failed += 1
            print(f"SKIP {full} (an earlier step failed)")
            return
        try:
            await fn()
        except Exception:  # noqa: BLE001
            failed += 1
            flow.broken = True
            print(f"FAIL {full}")
            traceback.print_exc(file=sys.stdout)
            return
        passed += 1
        print(f"ok   {full}")

    async def create_app():
        s["app"] = await svix.application.create(ApplicationIn(name="Async app", uid=app_uid))
        try:
            await svix.application.create(ApplicationIn(name="Async app", uid=app_uid))
        except HttpError as e:
            check(e.status_code == 409, e.status_code)
        else:
            raise AssertionError("expected 409")
        again = await svix.application.get_or_create(ApplicationIn(name="x", uid=app_uid))
        check(again.id == s["app"].id, again)

    async def endpoint():
        s["ep"] = await svix.endpoint.create(app_uid, EndpointIn(url=HOOK_URL, throttle_rate=5, metadata={"a": "b"}))
        check(s["ep"].throttle_rate == 5 and s["ep"].description == "", s["ep"])

    async def messages():
        msg_in = MessageIn(event_type="async.event", payload={"n": 1})
        first = await svix.message.create(app_uid, msg_in, MessageCreateOptions(idempotency_key=f"a-{RUN}"))
        again = await svix.message.create(app_uid, msg_in, MessageCreateOptions(idempotency_key=f"a-{RUN}"))
        check(first.id == again.id, (first.id, again.id))
        listed = await svix.message.list(app_uid)
        check([m.id for m in listed.data] == [first.id] and listed.data[0].payload == {}, listed)
        got = await svix.message.get(app_uid, first.id, MessageGetOptions(with_content=True))
        check(got.payload == {"n": 1}, got.payload)
        s["msg"] = first

    async def secret():
        old = (await svix.endpoint.get_secret(app_uid, s["ep"].id)).key
        new = (await svix.endpoint.rotate_secret(app_uid, s["ep"].id, EndpointSecretRotateIn())).key
        check(new != old, "rotation kept the key")
        check((await svix.endpoint.get_secret(app_uid, s["ep"].id)).key == new, "get after rotate")

    async def attempts_and_portal():
        await svix.message_attempt.list_by_msg(app_uid, s["msg"].id)
        await svix.message_attempt.list_by_endpoint(app_uid, s["ep"].id)
        access = await svix.authentication.app_portal_access(app_uid, AppPortalAccessIn(expiry=600))
        check(access.token, access)

    async def cleanup():
        await svix.endpoint.delete(app_uid, s["ep"].id)
        await svix.application.delete(app_uid)
        try:
            await svix.application.get(app_uid)
        except HttpError as e:
            check(e.status_code == 404, e.status_code)
        else:
            raise AssertionError("expected 404")

    await run("application create / 409 / get_or_create", create_app)
    await run("endpoint.create", endpoint)
    await run("message create twice with one key, list, get", messages)
    await run("endpoint secret rotate", secret)
    await run("attempt lists and app portal access", attempts_and_portal)
    await run("endpoint and application delete", cleanup)


def main():
    print(f"svix SDK against {SERVER_URL}")
    receiver = Receiver()
    try:
        sync_flow()
        delivery_flow(receiver)
        asyncio.run(async_flow_steps(Flow("async")))
    finally:
        receiver.close()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

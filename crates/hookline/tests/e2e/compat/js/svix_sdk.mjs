// Drives a running Hookline server with the official Svix JavaScript SDK
// (the npm package `svix`, pinned in package.json), unchanged: only
// `serverUrl` is set.
//
// Run by tests/e2e/sdk_compat.rs with SERVER_URL and TOKEN (an admin token)
// in the environment and SVIX_NODE_MODULES naming the node_modules that holds
// `svix` (`npm ci` in this directory); the same scenarios as svix_sdk.py. Prints
// one line per check, then `N passed, M failed`, and exits non-zero if any
// check failed.
//
// The checks of a flow run in order and share state (the application, the
// endpoint...), so after the first failure of a flow the rest of it is
// skipped (and counted as failed); the next flow runs regardless.
//
// Every answer the SDK parsed is checked for the fields its models declare
// required (the JavaScript SDK does not check them itself): see `strict`.

import http from "node:http";
import path from "node:path";
import { createRequire } from "node:module";
import { randomUUID } from "node:crypto";
import { pathToFileURL } from "node:url";

// `svix` from $SVIX_NODE_MODULES, wherever that is: resolved as a module
// inside it would be (so the package's own `exports` pick the file).
const modules = process.env.SVIX_NODE_MODULES;
if (!modules) {
  throw new Error("SVIX_NODE_MODULES is not set: the node_modules directory holding svix");
}
const resolveFromModules = createRequire(path.join(path.resolve(modules), "_"));
const sdk = await import(pathToFileURL(resolveFromModules.resolve("svix")).href);
const {
  ApiException,
  AppPortalCapability,
  BackgroundTaskStatus,
  BackgroundTaskType,
  BulkExpungeStatus,
  MessageStatus,
  Ordering,
  StatusCodeClass,
  Svix,
  Webhook,
} = sdk;

const SERVER_URL = process.env.SERVER_URL;
const TOKEN = process.env.TOKEN;
// Never resolves (RFC 6761): nothing is sent anywhere if delivery is attempted.
const HOOK_URL = "https://receiver.example.invalid/webhook";
const RUN = randomUUID().replaceAll("-", "").slice(0, 8);
// How long a delivery or a background task may take.
const WAIT_MS = 30_000;

let passed = 0;
let failed = 0;

class CheckFailed extends Error {}

function check(cond, what) {
  if (!cond) {
    throw new CheckFailed(typeof what === "string" ? what : JSON.stringify(what));
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it answers something truthy; fails naming `what` after WAIT_MS. */
async function waitFor(what, probe) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const got = await probe();
    if (got) {
      return got;
    }
    check(Date.now() < deadline, `timed out waiting for ${what}`);
    await sleep(50);
  }
}

// ---- every parsed answer carries the fields the SDK's models require ------

/** Required fields of the models, by the prefix of their id. */
const REQUIRED_BY_PREFIX = {
  app_: ["id", "name", "metadata", "createdAt", "updatedAt"],
  ep_: ["id", "url", "description", "createdAt", "updatedAt"],
  msg_: ["id", "eventType", "payload", "timestamp"],
  atmpt_: [
    "id",
    "url",
    "response",
    "responseStatusCode",
    "responseDurationMs",
    "status",
    "statusText",
    "triggerType",
    "msgId",
    "endpointId",
    "timestamp",
  ],
  qtask_: ["id", "status", "task", "updatedAt"],
  integ_: ["id", "name", "createdAt", "updatedAt"],
};
const EVENT_TYPE_REQUIRED = ["name", "description", "deprecated", "createdAt", "updatedAt"];
// Free-form values: their content is the caller's, not a model.
const FREE_FORM = new Set(["payload", "schemas", "metadata", "headers", "results"]);

function strictValue(value, where, resource) {
  if (value instanceof Date) {
    check(!Number.isNaN(value.getTime()), `${where} is not a valid date`);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => strictValue(item, `${where}[${i}]`, resource));
    return;
  }
  if (value === null || typeof value !== "object") {
    return;
  }
  const required = [];
  if ("data" in value && "done" in value) {
    required.push("data", "iterator", "done");
    check(typeof value.done === "boolean", `${where}.done is not a boolean`);
  }
  if (typeof value.id === "string") {
    const prefix = Object.keys(REQUIRED_BY_PREFIX).find((p) => value.id.startsWith(p));
    check(prefix, `${where}.id ${value.id} has no known prefix`);
    required.push(...REQUIRED_BY_PREFIX[prefix]);
    // An endpoint, unless it is a message's destination (with its status).
    if (prefix === "ep_" && !("statusText" in value)) {
      required.push("metadata");
    }
  } else if (resource === "eventType" && typeof value.name === "string") {
    required.push(...EVENT_TYPE_REQUIRED);
  }
  for (const field of required) {
    check(value[field] !== undefined, `${where} lacks the required field ${field}: ${JSON.stringify(value)}`);
  }
  for (const [key, inner] of Object.entries(value)) {
    if (!FREE_FORM.has(key)) {
      strictValue(inner, `${where}.${key}`, resource);
    }
  }
}

/** A client whose every call's answer is checked by `strictValue`. */
function strict(client) {
  const wrap = (target, path) =>
    new Proxy(target, {
      get(obj, prop) {
        const value = Reflect.get(obj, prop, obj);
        if (typeof prop !== "string" || prop === "then") {
          return value;
        }
        if (typeof value === "function") {
          return async (...args) => {
            const out = await value.apply(obj, args);
            strictValue(out, `${path}.${prop}()`, path.split(".")[1]);
            return out;
          };
        }
        if (value !== null && typeof value === "object" && !prop.startsWith("request")) {
          return wrap(value, `${path}.${prop}`);
        }
        return value;
      },
    });
  return wrap(client, "svix");
}

function client(token) {
  // No client-side retries: a 5xx must surface as a failure, not be hidden.
  return strict(new Svix(token, { serverUrl: SERVER_URL, retryScheduleInMs: [] }));
}

async function expectHttpError(status, fn) {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof ApiException)) {
      throw e;
    }
    check(e.code === status, `expected HTTP ${status}, got ${e.code}: ${JSON.stringify(e.body)}`);
    if (status !== 422) {
      check(typeof e.body?.code === "string" && e.body.code, `error without code: ${JSON.stringify(e.body)}`);
    }
    return e;
  }
  throw new CheckFailed(`expected HTTP ${status}, but the call succeeded`);
}

const ids = (list) => list.data.map((x) => x.id);
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const sorted = (a) => [...a].sort();

/** Runs named steps in order; after a failure the rest are skipped. */
class Flow {
  constructor(name) {
    this.name = name;
    this.broken = false;
  }

  async step(label, fn) {
    const full = `${this.name}: ${label}`;
    if (this.broken) {
      failed += 1;
      console.log(`SKIP ${full} (an earlier step failed)`);
      return undefined;
    }
    try {
      const result = await fn();
      passed += 1;
      console.log(`ok   ${full}`);
      return result;
    } catch (e) {
      failed += 1;
      this.broken = true;
      console.log(`FAIL ${full}`);
      console.log(e instanceof ApiException ? `${e.stack}\nbody: ${JSON.stringify(e.body)}` : e.stack);
      return undefined;
    }
  }
}

// ---- a local receiver for deliveries ---------------------------------------

/**
 * Records every request; answers 410 on /gone, 500 on /fail, and 200 with
 * a small JSON body elsewhere.
 */
async function startReceiver() {
  const received = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      received.push({ path: req.url, headers: { ...req.headers }, body: Buffer.concat(chunks).toString("utf8") });
      const status = req.url === "/gone" ? 410 : req.url === "/fail" ? 500 : 200;
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify({ receivedOn: req.url }));
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    on: (path) => received.filter((r) => r.path === path),
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

// ---- the API, resource by resource ----------------------------------------

async function apiFlow() {
  const svix = client(TOKEN);
  const flow = new Flow("api");
  const s = {};
  const appUid = `sdk-app-${RUN}`;
  const eventType = `invoice.paid.${RUN}`;

  await flow.step("health", () => svix.health.get());

  await flow.step("application.create with uid", async () => {
    const app = await svix.application.create({ name: "SDK app", uid: appUid, metadata: { k: "v" } });
    check(app.id.startsWith("app_"), app.id);
    check(app.uid === appUid, app.uid);
    check(same(app.metadata, { k: "v" }), app.metadata);
    check(app.createdAt instanceof Date, app.createdAt);
    s.app = app;
  });
  await flow.step("application.create with the same uid raises 409", () =>
    expectHttpError(409, () => svix.application.create({ name: "again", uid: appUid }))
  );
  await flow.step("application.getOrCreate returns the existing app", async () => {
    const app = await svix.application.getOrCreate({ name: "again", uid: appUid });
    check(app.id === s.app.id, `${app.id} != ${s.app.id}`);
    check(app.name === "SDK app", app.name);
  });
  await flow.step("application.get / list / patch", async () => {
    check((await svix.application.get(appUid)).id === s.app.id, "get by uid");
    check((await svix.application.get(s.app.id)).uid === appUid, "get by id");
    const listed = await svix.application.list({ limit: 250, order: Ordering.Ascending });
    check(ids(listed).includes(s.app.id), "app missing from list");
    const patched = await svix.application.patch(appUid, { name: "SDK app renamed" });
    check(patched.name === "SDK app renamed" && patched.uid === appUid, patched);
  });

  await flow.step("eventType.create / list / get", async () => {
    const et = await svix.eventType.create({
      name: eventType,
      description: "An invoice was paid",
      schemas: { 1: { type: "object", properties: { amount: { type: "number" } } } },
    });
    check(et.name === eventType, et.name);
    check(et.deprecated === false, et.deprecated);
    check(et.schemas["1"].type === "object", et.schemas);
    const listed = await svix.eventType.list({ limit: 250, withContent: true });
    check(listed.data.map((e) => e.name).includes(eventType), "event type missing from list");
    check((await svix.eventType.get(eventType)).description === "An invoice was paid", "event type get");
  });

  await flow.step("endpoint.create with eventTypes, throttleRate, headers, metadata", async () => {
    const ep = await svix.endpoint.create(appUid, {
      url: HOOK_URL,
      uid: `ep-${RUN}`,
      eventTypes: [eventType],
      throttleRate: 10,
      channels: ["billing"],
      headers: { "X-Api-Key": "k1", "X-Drop": "gone" },
      metadata: { owner: "billing" },
    });
    check(ep.id.startsWith("ep_"), ep.id);
    check(same(ep.eventTypes, [eventType]), ep.eventTypes);
    check(ep.throttleRate === 10, ep.throttleRate);
    check(same(ep.channels, ["billing"]), ep.channels);
    check(same(ep.metadata, { owner: "billing" }), ep.metadata);
    check(ep.description === "", ep.description);
    check(ep.disabled === false, ep.disabled);
    s.ep = ep;
  });
  await flow.step("endpoint.get by uid / patch / list", async () => {
    check((await svix.endpoint.get(appUid, `ep-${RUN}`)).id === s.ep.id, "endpoint get by uid");
    const patched = await svix.endpoint.patch(appUid, s.ep.id, { description: "Billing receiver" });
    check(patched.description === "Billing receiver" && patched.throttleRate === 10, patched);
    check(same(ids(await svix.endpoint.list(appUid)), [s.ep.id]), "endpoint list");
  });
  await flow.step("endpoint headers get / patch (deleteHeaders) / set", async () => {
    let got = await svix.endpoint.getHeaders(appUid, s.ep.id);
    // A credential header is named in `sensitive`, its value never shown.
    check(same(got.headers, { "X-Drop": "gone" }) && same(got.sensitive, ["X-Api-Key"]), got);
    await svix.endpoint.patchHeaders(appUid, s.ep.id, { headers: { "X-New": "n" }, deleteHeaders: ["X-Drop"] });
    got = await svix.endpoint.getHeaders(appUid, s.ep.id);
    check(same(got.headers, { "X-New": "n" }) && same(got.sensitive, ["X-Api-Key"]), got);
    await svix.endpoint.setHeaders(appUid, s.ep.id, { headers: { "X-Only": "1" } });
    got = await svix.endpoint.getHeaders(appUid, s.ep.id);
    check(same(got.headers, { "X-Only": "1" }), got.headers);
  });

  await flow.step("message.create with an idempotency key, twice: one message", async () => {
    const msgIn = { eventType, payload: { amount: 42, currency: "EUR" }, channels: ["billing"] };
    const key = `key-${RUN}`;
    const first = await svix.message.create(appUid, msgIn, { idempotencyKey: key });
    check(first.id.startsWith("msg_"), first.id);
    const again = await svix.message.create(appUid, msgIn, { idempotencyKey: key });
    check(again.id === first.id, `same key gave another message: ${again.id} != ${first.id}`);
    s.msg = first;
    // Without an explicit key the SDK sends a fresh one: a new message.
    const other = await svix.message.create(appUid, { eventType: "other.type", eventId: `evt-${RUN}`, payload: {} });
    check(other.id !== first.id, "an auto-keyed message reused an id");
    check(other.eventId === `evt-${RUN}`, other.eventId);
    s.other = other;
  });
  await flow.step("message.create with a duplicate eventId raises 409", () =>
    expectHttpError(409, () =>
      svix.message.create(appUid, { eventType: "other.type", eventId: `evt-${RUN}`, payload: {} })
    )
  );
  await flow.step("message.list with and without content, filters, pages", async () => {
    const both = sorted([s.other.id, s.msg.id]);
    const plain = await svix.message.list(appUid, { withContent: false });
    check(same(sorted(ids(plain)), both), ids(plain));
    check(plain.data.every((m) => same(m.payload, {})), "withContent: false carries no payload");
    check(plain.done === true && plain.iterator !== null, plain);
    const full = await svix.message.list(appUid, { withContent: true });
    const byId = Object.fromEntries(full.data.map((m) => [m.id, m]));
    check(same(byId[s.msg.id].payload, { amount: 42, currency: "EUR" }), byId[s.msg.id].payload);
    const filtered = await svix.message.list(appUid, { eventTypes: [eventType], channel: "billing" });
    check(same(ids(filtered), [s.msg.id]), ids(filtered));
    const now = Date.now();
    const hour = 3600_000;
    const window = await svix.message.list(appUid, { after: new Date(now - hour), before: new Date(now + hour) });
    check(window.data.length === 2, ids(window));
    const empty = await svix.message.list(appUid, { before: new Date(now - hour) });
    check(empty.data.length === 0 && empty.iterator === null, empty);
    const paged = await svix.message.list(appUid, { limit: 1 });
    check(paged.data.length === 1 && paged.done === false, paged);
    const rest = await svix.message.list(appUid, { limit: 1, iterator: paged.iterator });
    check(same(ids(rest), both.filter((id) => id !== paged.data[0].id)) && rest.done === true, rest);
  });
  await flow.step("message.get by id and by eventId", async () => {
    const got = await svix.message.get(appUid, s.msg.id, { withContent: true });
    check(same(got.payload, { amount: 42, currency: "EUR" }), got.payload);
    check(got.eventType === eventType && same(got.channels, ["billing"]), got);
    check((await svix.message.get(appUid, `evt-${RUN}`)).id === s.other.id, "get by eventId");
  });

  await flow.step("endpoint secret get / rotate / get shows the new key", async () => {
    const first = (await svix.endpoint.getSecret(appUid, s.ep.id)).key;
    check(first.startsWith("whsec_"), first);
    // The JavaScript SDK's rotateSecret answers nothing: read the new key.
    await svix.endpoint.rotateSecret(appUid, s.ep.id, {});
    const rotated = (await svix.endpoint.getSecret(appUid, s.ep.id)).key;
    check(rotated.startsWith("whsec_") && rotated !== first, rotated);
    const chosen = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    await svix.endpoint.rotateSecret(appUid, s.ep.id, { key: chosen });
    check((await svix.endpoint.getSecret(appUid, s.ep.id)).key === chosen, "supplied key not honoured");
  });

  await flow.step("messageAttempt listByMsg / listByEndpoint / destinations", async () => {
    const byMsg = await svix.messageAttempt.listByMsg(appUid, s.msg.id, { limit: 10 });
    check(Array.isArray(byMsg.data) && typeof byMsg.done === "boolean", byMsg);
    const byEp = await svix.messageAttempt.listByEndpoint(appUid, s.ep.id, { limit: 10 });
    check(Array.isArray(byEp.data), byEp);
    for (const a of [...byMsg.data, ...byEp.data]) {
      check(a.msgId === s.msg.id && a.endpointId === s.ep.id, a);
    }
    const dests = await svix.messageAttempt.listAttemptedDestinations(appUid, s.msg.id);
    check(same(ids(dests), [s.ep.id]), dests);
    // "other.type" is filtered out by the endpoint: no destination.
    const none = await svix.messageAttempt.listAttemptedDestinations(appUid, s.other.id);
    check(none.data.length === 0, none);
  });

  await flow.step("endpoint.recover / replayMissing / bulkReplay run as background tasks to finished", async () => {
    const since = new Date(Date.now() - 3600_000);
    const started = [
      await svix.endpoint.recover(appUid, s.ep.id, { since }),
      await svix.endpoint.replayMissing(appUid, s.ep.id, { since }),
      await svix.endpoint.bulkReplay(appUid, s.ep.id, { since, status: MessageStatus.Success }),
    ];
    check(
      same(
        started.map((t) => t.task),
        [BackgroundTaskType.EndpointRecover, BackgroundTaskType.EndpointReplay, BackgroundTaskType.EndpointBulkReplay]
      ),
      started
    );
    for (const t of started) {
      check(t.id.startsWith("qtask_") && t.updatedAt instanceof Date, t);
      const got = await waitFor(`${t.id} to finish`, async () => {
        const task = await svix.backgroundTask.get(t.id);
        return task.status !== BackgroundTaskStatus.Running && task;
      });
      check(got.status === BackgroundTaskStatus.Finished && got.task === t.task, got);
    }
    const listed = await svix.backgroundTask.list({ task: BackgroundTaskType.EndpointRecover });
    check(ids(listed).includes(started[0].id), listed);
    check(
      listed.data.every((t) => t.task === BackgroundTaskType.EndpointRecover),
      listed
    );
  });

  await flow.step("integration create / list / get / update / rotateKey / delete", async () => {
    const created = await svix.integration.create(appUid, { name: "Zapier", featureFlags: ["beta"] });
    check(created.id.startsWith("integ_") && same(created.featureFlags, ["beta"]), created);
    check(ids(await svix.integration.list(appUid)).includes(created.id), "integration missing from list");
    const updated = await svix.integration.update(appUid, created.id, { name: "Zapier EU" });
    check(updated.name === "Zapier EU" && (await svix.integration.get(appUid, created.id)).name === "Zapier EU", updated);
    const thirdParty = client((await svix.integration.rotateKey(appUid, created.id)).key);
    check(same(ids(await thirdParty.endpoint.list(appUid)), [s.ep.id]), "the key reads its app");
    await expectHttpError(403, () => thirdParty.application.list());
    await svix.integration.delete(appUid, created.id);
    await expectHttpError(401, () => thirdParty.endpoint.list(appUid));
  });

  await flow.step("authentication.appPortalAccess gives working tokens", async () => {
    const access = await svix.authentication.appPortalAccess(appUid, {});
    check(access.url.startsWith("http") && access.url.includes(access.token), access);
    const tenant = client(access.token);
    check((await tenant.application.get(appUid)).id === s.app.id, "portal token cannot read its app");
    check(same(ids(await tenant.endpoint.list(appUid)), [s.ep.id]), "portal token endpoint list");
    await expectHttpError(403, () => tenant.application.list());
    const readOnly = await svix.authentication.appPortalAccess(appUid, { readOnly: true });
    const viewer = client(readOnly.token);
    await expectHttpError(403, () => viewer.endpoint.create(appUid, { url: HOOK_URL }));
    check((await viewer.message.list(appUid)).data.length > 0, "a read-only token can read");
  });

  await flow.step("a 422 surfaces as an ApiException naming the field", async () => {
    const e = await expectHttpError(422, () => svix.endpoint.create(appUid, { url: "ftp://nope" }));
    check(e.body.detail.some((d) => d.loc[d.loc.length - 1] === "url"), e.body);
  });

  await flow.step("a ViewBase token reads, but gets 403 on writes and on secrets", async () => {
    const access = await svix.authentication.appPortalAccess(appUid, {
      capabilities: [AppPortalCapability.ViewBase],
    });
    const viewer = client(access.token);
    check((await viewer.application.get(appUid)).id === s.app.id, "ViewBase reads its app");
    check(same(ids(await viewer.endpoint.list(appUid)), [s.ep.id]), "ViewBase lists endpoints");
    check((await viewer.message.list(appUid)).data.length === 2, "ViewBase lists messages");
    check(Array.isArray((await viewer.messageAttempt.listByEndpoint(appUid, s.ep.id)).data), "ViewBase attempts");
    await expectHttpError(403, () => viewer.endpoint.create(appUid, { url: HOOK_URL }));
    await expectHttpError(403, () => viewer.endpoint.patch(appUid, s.ep.id, { description: "x" }));
    await expectHttpError(403, () => viewer.endpoint.delete(appUid, s.ep.id));
    await expectHttpError(403, () => viewer.endpoint.getSecret(appUid, s.ep.id));
    await expectHttpError(403, () => viewer.endpoint.rotateSecret(appUid, s.ep.id, {}));
    await expectHttpError(403, () => viewer.endpoint.recover(appUid, s.ep.id, { since: new Date() }));
    s.viewBase = viewer;
  });

  await flow.step("capabilities, authentication.logout and expireAll", async () => {
    const caps = [AppPortalCapability.ViewBase, AppPortalCapability.ViewEndpointSecret];
    const viewer = client((await svix.authentication.appPortalAccess(appUid, { capabilities: caps })).token);
    check((await viewer.endpoint.getSecret(appUid, s.ep.id)).key.startsWith("whsec_"), "ViewEndpointSecret reads");
    await expectHttpError(403, () => viewer.endpoint.rotateSecret(appUid, s.ep.id, {}));
    const leaving = client((await svix.authentication.appPortalAccess(appUid, {})).token);
    await leaving.authentication.logout();
    await expectHttpError(401, () => leaving.application.get(appUid));
    check((await viewer.application.get(appUid)).id === s.app.id, "logout revoked another token");
    await svix.authentication.expireAll(appUid, {});
    await expectHttpError(401, () => viewer.application.get(appUid));
    await expectHttpError(401, () => s.viewBase.message.list(appUid));
  });

  await flow.step(
    "message precheck / bulkExpungeContent / expungeAllContents, eventType.importOpenapi",
    async () => {
      check(
        (await svix.message.precheck(appUid, { eventType, channels: ["billing"] })).active === true,
        "precheck"
      );
      check((await svix.message.precheck(appUid, { eventType: "no.such" })).active === false, "precheck");
      const out = await svix.message.bulkExpungeContent(appUid, { ids: [s.other.id, "msg_none"] });
      check(
        same(out.results, {
          [s.other.id]: BulkExpungeStatus.Expunged,
          msg_none: BulkExpungeStatus.NotFound,
        }),
        out
      );
      const task = await svix.message.expungeAllContents(appUid);
      check(task.task === BackgroundTaskType.ApplicationPurgeContent, task);
      const spec = {
        openapi: "3.1.0",
        info: { title: "t", version: "1" },
        webhooks: { [`imported.${RUN}`]: { post: { summary: "Imported" } } },
      };
      const imported = await svix.eventType.importOpenapi({ spec });
      check(same(imported.data.modified, [`imported.${RUN}`]), imported);
    }
  );

  await flow.step("operationalWebhook.endpoint create / get / list / upsert / secret / delete", async () => {
    const ops = svix.operationalWebhook.endpoint;
    const created = await ops.create({ url: HOOK_URL, eventTypes: ["endpoint.disabled"] });
    check(same(created.eventTypes, ["endpoint.disabled"]), created);
    check((await ops.get(created.id)).url === HOOK_URL, "operational endpoint get");
    check(ids(await ops.list()).includes(created.id), "operational endpoint list");
    const updated = await ops.upsert(created.id, { url: HOOK_URL, eventTypes: ["endpoint.deleted"] });
    check(same(updated.eventTypes, ["endpoint.deleted"]), updated);
    check((await ops.getSecret(created.id)).key.startsWith("whsec_"), "operational endpoint secret");
    await ops.delete(created.id);
    await expectHttpError(404, () => ops.get(created.id));
  });

  await flow.step("application.upsert / endpoint.upsert / eventType.upsert, patch, delete (archive)", async () => {
    // PUT replaces: the uid is sent again, or it would be cleared.
    const app = await svix.application.upsert(appUid, { name: "SDK app updated", uid: appUid, metadata: { k: "w" } });
    check(app.id === s.app.id && app.name === "SDK app updated" && same(app.metadata, { k: "w" }), app);
    const ep = await svix.endpoint.upsert(appUid, s.ep.id, {
      url: `${HOOK_URL}/v2`,
      uid: `ep-${RUN}`,
      eventTypes: [eventType],
      channels: ["billing"],
    });
    check(ep.id === s.ep.id && ep.url === `${HOOK_URL}/v2` && ep.description === "", ep);
    const et = await svix.eventType.upsert(eventType, { description: "Paid, updated" });
    check(et.description === "Paid, updated", et);
    const patched = await svix.eventType.patch(eventType, { deprecated: true });
    check(patched.deprecated === true && patched.description === "Paid, updated", patched);
    await svix.eventType.delete(eventType);
    check((await svix.eventType.get(eventType)).archived === true, "archived event type");
    const live = await svix.eventType.list({ limit: 250 });
    check(!live.data.some((e) => e.name === eventType), "an archived event type is listed");
    const all = await svix.eventType.list({ limit: 250, includeArchived: true });
    check(all.data.some((e) => e.name === eventType), "includeArchived lists it");
  });

  await flow.step("message.expungeContent", async () => {
    await svix.message.expungeContent(appUid, s.msg.id);
    const got = await svix.message.get(appUid, s.msg.id, { withContent: true });
    check(same(got.payload, {}), got.payload);
  });
  await flow.step("endpoint.delete, then get raises 404", async () => {
    await svix.endpoint.delete(appUid, s.ep.id);
    await expectHttpError(404, () => svix.endpoint.get(appUid, s.ep.id));
    check((await svix.endpoint.list(appUid)).data.length === 0, "endpoint still listed");
  });
  await flow.step("application.delete", async () => {
    await svix.application.delete(appUid);
    await expectHttpError(404, () => svix.application.get(appUid));
  });
}

// ---- deliveries to a local receiver ----------------------------------------

async function deliveryFlow(receiver) {
  const svix = client(TOKEN);
  const flow = new Flow("delivery");
  const s = {};
  const appUid = `sdk-delivery-${RUN}`;

  await flow.step("a 410 disables an endpoint; the operational webhook gets a signed endpoint.disabled", async () => {
    const ops = await svix.operationalWebhook.endpoint.create({
      url: receiver.url("/ops"),
      eventTypes: ["endpoint.disabled"],
    });
    const secret = (await svix.operationalWebhook.endpoint.getSecret(ops.id)).key;
    await svix.application.create({ name: "Delivery app", uid: appUid });
    const gone = await svix.endpoint.create(appUid, { url: receiver.url("/gone") });
    await svix.message.create(appUid, { eventType: "gone.test", payload: { n: 0 } });
    const event = await waitFor("an endpoint.disabled operational webhook", () => {
      for (const r of receiver.on("/ops")) {
        // Throws unless signed with the operational endpoint's secret.
        new Webhook(secret).verify(r.body, r.headers);
        const body = JSON.parse(r.body);
        if (body.type === "endpoint.disabled" && body.data?.endpointId === gone.id) {
          return body;
        }
      }
      return undefined;
    });
    check(event.data.appId === (await svix.application.get(appUid)).id, event);
    check(event.data.appUid === appUid && event.data.trigger === "automatic", event);
    check(typeof event.timestamp === "string", event);
    check((await svix.endpoint.get(appUid, gone.id)).disabled === true, "the endpoint is not disabled");
    await svix.operationalWebhook.endpoint.delete(ops.id);
  });

  await flow.step("messages reach a healthy and a failing endpoint; attempts are recorded", async () => {
    s.ok = await svix.endpoint.create(appUid, { url: receiver.url("/ok") });
    s.fail = await svix.endpoint.create(appUid, { url: receiver.url("/fail") });
    s.first = await svix.message.create(appUid, {
      eventType: "order.created",
      payload: { n: 1 },
      channels: ["eu"],
      tags: ["alpha"],
    });
    s.second = await svix.message.create(appUid, {
      eventType: "order.shipped",
      payload: { n: 2 },
      channels: ["us"],
      tags: ["beta"],
    });
    for (const ep of [s.ok, s.fail]) {
      await waitFor(`two attempts to ${ep.url}`, async () => {
        const got = await svix.messageAttempt.listByEndpoint(appUid, ep.id);
        return got.data.length >= 2;
      });
    }
    // The two messages' attempts may run side by side: compare as sets.
    const okAttempts = await svix.messageAttempt.listByEndpoint(appUid, s.ok.id);
    check(same(sorted(okAttempts.data.map((a) => a.msgId)), sorted([s.second.id, s.first.id])), okAttempts);
    check(okAttempts.data.every((a) => a.responseStatusCode === 200 && a.status === MessageStatus.Success), okAttempts);
    const stats = await waitFor("the failing endpoint's stats", async () => {
      const got = await svix.endpoint.getStats(appUid, s.fail.id);
      return got.fail === 2 && got;
    });
    check(stats.success === 0 && stats.pending === 0, stats);
    check((await svix.endpoint.getStats(appUid, s.ok.id)).success === 2, "ok endpoint stats");
  });

  // Lists of both messages are compared as sets: their attempts (and, within
  // one millisecond, their ids) have no order between them.
  await flow.step("attempt filters change the result: status, statusCodeClass, eventTypes, channel, tag", async () => {
    const msgIds = async (ep, options) =>
      sorted((await svix.messageAttempt.listByEndpoint(appUid, ep.id, options)).data.map((a) => a.msgId));
    const both = sorted([s.second.id, s.first.id]);
    const cases = [
      [s.ok, {}, both],
      [s.ok, { eventTypes: ["order.created"] }, [s.first.id]],
      [s.ok, { eventTypes: ["order.shipped", "order.created"] }, both],
      [s.ok, { channel: "us" }, [s.second.id]],
      [s.ok, { tag: "alpha" }, [s.first.id]],
      [s.ok, { tag: "alpha", channel: "us" }, []],
      [s.ok, { statusCodeClass: StatusCodeClass.Code2xx }, both],
      [s.ok, { statusCodeClass: StatusCodeClass.Code5xx }, []],
      [s.ok, { status: MessageStatus.Fail }, []],
      [s.fail, { status: MessageStatus.Fail }, both],
      [s.fail, { statusCodeClass: StatusCodeClass.Code5xx, channel: "eu" }, [s.first.id]],
      [s.ok, { before: new Date(Date.now() - 3600_000) }, []],
    ];
    for (const [ep, options, expected] of cases) {
      const got = await msgIds(ep, options);
      check(same(got, expected), `listByEndpoint ${JSON.stringify(options)}: ${got} != ${expected}`);
    }
    const endpointsOf = async (options) =>
      (await svix.messageAttempt.listByMsg(appUid, s.first.id, options)).data.map((a) => a.endpointId);
    check(same(sorted(await endpointsOf({})), sorted([s.ok.id, s.fail.id])), "listByMsg");
    check(same(await endpointsOf({ statusCodeClass: StatusCodeClass.Code2xx }), [s.ok.id]), "2xx by msg");
    check(same(await endpointsOf({ statusCodeClass: StatusCodeClass.Code5xx }), [s.fail.id]), "5xx by msg");
    check(same(await endpointsOf({ status: MessageStatus.Fail }), [s.fail.id]), "status by msg");
    check(same(await endpointsOf({ endpointId: s.ok.id }), [s.ok.id]), "endpointId by msg");
  });

  await flow.step("withMsg, attempted messages and destinations filters", async () => {
    const plain = await svix.messageAttempt.listByEndpoint(appUid, s.ok.id, { eventTypes: ["order.created"] });
    check(plain.data[0].msg == null, plain);
    const withMsg = await svix.messageAttempt.listByEndpoint(appUid, s.ok.id, {
      eventTypes: ["order.created"],
      withMsg: true,
    });
    const msg = withMsg.data[0].msg;
    check(msg && msg.id === s.first.id && msg.eventType === "order.created", withMsg);
    const attempted = async (options) =>
      sorted(ids(await svix.messageAttempt.listAttemptedMessages(appUid, s.ok.id, options)));
    check(same(await attempted({}), sorted([s.second.id, s.first.id])), "attempted messages");
    check(same(await attempted({ channel: "eu" }), [s.first.id]), "attempted messages by channel");
    check(same(await attempted({ tag: "beta" }), [s.second.id]), "attempted messages by tag");
    check(same(await attempted({ eventTypes: ["order.shipped"] }), [s.second.id]), "by event type");
    check(same(await attempted({ status: MessageStatus.Fail }), []), "attempted messages by status");
    const failed = await svix.messageAttempt.listAttemptedMessages(appUid, s.fail.id, { status: MessageStatus.Fail });
    check(same(sorted(ids(failed)), sorted([s.second.id, s.first.id])), failed);
    const dests = await svix.messageAttempt.listAttemptedDestinations(appUid, s.first.id);
    check(same(sorted(ids(dests)), sorted([s.ok.id, s.fail.id])), dests);
    const byId = Object.fromEntries(dests.data.map((d) => [d.id, d.status]));
    check(byId[s.ok.id] === MessageStatus.Success && byId[s.fail.id] === MessageStatus.Fail, dests);
  });

  await flow.step("messageAttempt.get, then expungeContent removes the response body", async () => {
    const [attempt] = (await svix.messageAttempt.listByMsg(appUid, s.first.id, { endpointId: s.ok.id })).data;
    const got = await svix.messageAttempt.get(appUid, s.first.id, attempt.id);
    check(got.id === attempt.id && got.response === JSON.stringify({ receivedOn: "/ok" }), got);
    await svix.messageAttempt.expungeContent(appUid, s.first.id, attempt.id);
    const after = await svix.messageAttempt.get(appUid, s.first.id, attempt.id);
    check(!after.response.includes("receivedOn"), after);
    const listed = await svix.messageAttempt.listByMsg(appUid, s.first.id, { endpointId: s.ok.id });
    check(!listed.data[0].response.includes("receivedOn"), listed);
  });

  await flow.step("endpoint.sendExample sends the chosen example to that endpoint only", async () => {
    const name = `order.example.${RUN}`;
    const examples = [{ n: "first" }, { n: "second" }];
    await svix.eventType.create({ name, description: "Examples", schemas: { 1: { type: "object", examples } } });
    const msg = await svix.endpoint.sendExample(appUid, s.ok.id, { eventType: name, exampleIndex: 1 });
    check(msg.eventType === name, msg);
    const delivered = await waitFor("the example's delivery", () =>
      receiver.on("/ok").find((r) => r.headers["webhook-id"] === msg.id)
    );
    check(same(JSON.parse(delivered.body), examples[1]), delivered.body);
    check(same(ids(await svix.messageAttempt.listAttemptedDestinations(appUid, msg.id)), [s.ok.id]), "destinations");
    const e = await expectHttpError(422, () =>
      svix.endpoint.sendExample(appUid, s.ok.id, { eventType: name, exampleIndex: 2 })
    );
    check(e.body.detail.some((d) => d.loc[d.loc.length - 1] === "exampleIndex"), e.body);
  });

  await flow.step("messageAttempt.resend delivers again", async () => {
    const before = receiver.on("/ok").length;
    await svix.messageAttempt.resend(appUid, s.first.id, s.ok.id);
    await waitFor("the resent attempt", async () => {
      const got = await svix.messageAttempt.listByMsg(appUid, s.first.id, { endpointId: s.ok.id });
      return got.data.length === 2;
    });
    const sent = receiver.on("/ok").slice(before);
    check(sent.length === 1 && sent[0].headers["webhook-id"] === s.first.id, sent);
    await svix.application.delete(appUid);
  });
}

async function main() {
  console.log(`svix JavaScript SDK against ${SERVER_URL}`);
  const receiver = await startReceiver();
  try {
    await apiFlow();
    await deliveryFlow(receiver);
  } finally {
    receiver.close();
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

await main();

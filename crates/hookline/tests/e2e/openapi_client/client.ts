// A small client of Hookline written against the TypeScript types that
// openapi-typescript generates from the served /api/v1/openapi.json (the test
// writes them to ./schema.d.ts beside a copy of this file). It is only
// type-checked (tsc --noEmit --strict, by tests/e2e/openapi_client.rs), never
// run: it proves the generated types describe real operations precisely
// enough to write a client against, and the `@ts-expect-error` lines prove
// they are not `any` (each must be an error, or tsc fails).
import createClient from "openapi-fetch";
import type { components, operations, paths } from "./schema";

type Schemas = components["schemas"];
export type ApplicationOut = Schemas["ApplicationOut"];
export type EndpointOut = Schemas["EndpointOut"];
export type MessageOut = Schemas["MessageOut"];
export type AttemptOut = Schemas["AttemptOut"];

export function hookline(baseUrl: string, token: string) {
  return createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });
}

/** Throws the server's error body, or returns the typed answer. */
function ok<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.data === undefined) {
    throw new Error(`${result.response.status}: ${JSON.stringify(result.error)}`);
  }
  return result.data;
}

export async function createApplication(baseUrl: string, token: string, name: string): Promise<ApplicationOut> {
  const client = hookline(baseUrl, token);
  // Only `name` is required: the other fields of ApplicationIn are optional.
  const app = ok(await client.POST("/api/v1/app", { body: { name } }));
  const id: string = app.id;
  const uid: string | null = app.uid;
  const metadata: Record<string, string> = app.metadata;
  void [id, uid, metadata];
  return app;
}

export async function createEndpoint(baseUrl: string, token: string, appId: string, url: string): Promise<EndpointOut> {
  const client = hookline(baseUrl, token);
  const endpoint = ok(
    await client.POST("/api/v1/app/{app_id}/endpoint", {
      params: { path: { app_id: appId } },
      body: { url, filterTypes: ["invoice.paid"], metadata: { team: "billing" } },
    }),
  );
  const version: number = endpoint.version;
  const disabled: boolean = endpoint.disabled;
  void [version, disabled];
  return endpoint;
}

export async function sendMessage(baseUrl: string, token: string, appId: string): Promise<MessageOut> {
  const client = hookline(baseUrl, token);
  const body: Schemas["MessageIn"] = { eventType: "invoice.paid", payload: { invoiceId: "in_1234", amount: 4200 } };
  const { data, error, response } = await client.POST("/api/v1/app/{app_id}/msg", {
    params: { path: { app_id: appId }, header: { "idempotency-key": "key-1" }, query: { with_content: true } },
    body,
  });
  if (error !== undefined) {
    // The error answers are typed too: HttpError or HTTPValidationError.
    throw new Error(`${response.status}: ${JSON.stringify(error)}`);
  }
  const eventType: string = data.eventType;
  const eventId: string | null = data.eventId;
  void [eventType, eventId];
  return data;
}

export async function listAttempts(
  baseUrl: string,
  token: string,
  appId: string,
  endpointId: string,
): Promise<AttemptOut[]> {
  const client = hookline(baseUrl, token);
  const attempts: AttemptOut[] = [];
  let iterator: string | undefined;
  for (;;) {
    const page = ok(
      await client.GET("/api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}", {
        params: {
          path: { app_id: appId, endpoint_id: endpointId },
          query: { limit: 50, iterator, status: 2, with_msg: true },
        },
      }),
    );
    attempts.push(...page.data);
    if (page.done || page.iterator === null) return attempts;
    iterator = page.iterator;
  }
}

export async function attemptsOfMessage(baseUrl: string, token: string, appId: string, msgId: string) {
  const client = hookline(baseUrl, token);
  const page = ok(
    await client.GET("/api/v1/app/{app_id}/attempt/msg/{msg_id}", {
      params: { path: { app_id: appId, msg_id: msgId } },
    }),
  );
  return page.data.map((a) => ({ code: a.responseStatusCode, status: a.statusText, url: a.url }));
}

// The same types, used without openapi-fetch.
type CreateMessage = operations["v1.message.create"];
export type MessageCreated = CreateMessage["responses"][202]["content"]["application/json"];
type ListAttemptsQuery = NonNullable<operations["v1.message-attempt.list-by-endpoint"]["parameters"]["query"]>;
export const failedOnly: ListAttemptsQuery = { status: 2, order: "descending" };

export async function typeErrors(baseUrl: string, token: string) {
  const client = hookline(baseUrl, token);
  // @ts-expect-error EndpointIn requires `url`.
  await client.POST("/api/v1/app/{app_id}/endpoint", { params: { path: { app_id: "app" } }, body: {} });
  // @ts-expect-error the path parameter `app_id` is required.
  await client.POST("/api/v1/app/{app_id}/msg", { params: { path: {} }, body: { eventType: "a", payload: {} } });
  // @ts-expect-error no such path.
  await client.GET("/api/v1/no-such-path");
  // @ts-expect-error `status` is an enum of attempt statuses.
  const query: ListAttemptsQuery = { status: 9 };
  const app = ok(await client.POST("/api/v1/app", { body: { name: "a" } }));
  // @ts-expect-error ApplicationOut has no `url`.
  void app.url;
  void query;
}

import { describe, expect, expectTypeOf, it } from "vitest";
import { createClient, type BatchOp } from "../src/client.js";
import {
  AbeError,
  ConflictError,
  ForbiddenError,
  GoneError,
  NetworkError,
  NotFoundError,
  RateLimitedError,
  UnauthorizedError,
  ValidationError,
  parseRetryAfter,
} from "../src/errors.js";
import type { FetchLike } from "../src/http.js";
import { listInsert, set } from "../src/operations.js";
// What `abe gen types --lang ts -c examples/todo/abe.yaml` writes.
// The generator's own golden output for the todo example: the SDK is
// checked against exactly what `abe gen types --lang ts` writes.
import type { Collections, TodosRecord } from "../../../engine/tstypes/testdata/todo.js";

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: unknown;
  signal: AbortSignal | undefined;
}

function fake(answer: (s: Seen) => Response | Promise<Response>) {
  const seen: Seen[] = [];
  const fetch: FetchLike = async (url, init) => {
    const s: Seen = {
      method: init.method ?? "GET",
      url,
      headers: { ...((init.headers ?? {}) as Record<string, string>) },
      body: typeof init.body === "string" ? JSON.parse(init.body) : undefined,
      signal: init.signal ?? undefined,
    };
    seen.push(s);
    return answer(s);
  };
  return { seen, client: createClient<Collections>({ url: "http://abe.test/base/", fetch, coordination: "none", autoRefresh: false }) };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(body === null ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": status >= 400 ? "application/problem+json" : "application/json", ...headers },
  });

const todo: TodosRecord = { id: "t1", version: 3, created_at: "x", updated_at: "x", project: "p1", title: "Water", done: false, tags: null };

describe("records", () => {
  it("sends each call to its endpoint with its query, headers and body", async () => {
    const { seen, client } = fake((s) => (s.method === "DELETE" ? json(204, null) : json(200, s.url.includes("?") || s.method === "GET" ? { items: [todo], next_cursor: null } : todo)));
    const todos = client.records("todos");
    await todos.get("t/1", { fields: ["title", "done"], expand: "project" });
    await todos.list({ filter: "done == false", sort: ["-created_at", "title"], limit: 10, cursor: "c1", count: true });
    await todos.create({ project: "p1", title: "Water" });
    await todos.update("t1", { done: true }, { ifMatch: 3 });
    await todos.applyOps("t1", [set("title", "Dig"), listInsert("tags", "x")]);
    await todos.replace("t1", { project: "p1", title: "Rake" }, { ifMatch: 4 });
    await todos.delete("t1", { ifMatch: 5 });
    await client.changes("todos", 41, { limit: 2 });
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      "GET http://abe.test/base/api/collections/todos/records/t%2F1?fields=title%2Cdone&expand=project",
      "GET http://abe.test/base/api/collections/todos/records?filter=done+%3D%3D+false&sort=-created_at%2Ctitle&limit=10&cursor=c1&count=true",
      "POST http://abe.test/base/api/collections/todos/records",
      "PATCH http://abe.test/base/api/collections/todos/records/t1",
      "PATCH http://abe.test/base/api/collections/todos/records/t1",
      "PUT http://abe.test/base/api/collections/todos/records/t1",
      "DELETE http://abe.test/base/api/collections/todos/records/t1",
      "GET http://abe.test/base/api/collections/todos/changes?since=41&limit=2",
    ]);
    expect(seen[2]?.body).toEqual({ project: "p1", title: "Water" });
    expect(seen[2]?.headers["Content-Type"]).toBe("application/json");
    expect(seen[3]?.headers["If-Match"]).toBe('"3"');
    expect(seen[4]?.body).toEqual({ ops: [set("title", "Dig"), listInsert("tags", "x")] });
    expect(seen[4]?.headers["If-Match"]).toBeUndefined();
    expect(seen[5]?.headers["If-Match"]).toBe('"4"');
    expect(seen[6]?.headers["If-Match"]).toBe('"5"');
    expect(seen[0]?.headers.Authorization).toBeUndefined();
  });

  it("iterates over every page", async () => {
    const pages: Record<string, unknown> = {
      "": { items: [{ ...todo, id: "1" }, { ...todo, id: "2" }], next_cursor: "a" },
      a: { items: [{ ...todo, id: "3" }], next_cursor: null },
    };
    const { client } = fake((s) => json(200, pages[new URL(s.url).searchParams.get("cursor") ?? ""]));
    const ids: string[] = [];
    for await (const t of client.records("todos").iterate({ limit: 2 })) ids.push(t.id);
    expect(ids).toEqual(["1", "2", "3"]);
  });

  it("sends a batch and answers its results", async () => {
    const { seen, client } = fake(() => json(200, { results: [{ status: 201, record: todo }, { status: 204 }] }));
    const ops: BatchOp<Collections>[] = [
      { collection: "todos", action: "create", data: { project: "p1", title: "Water" } },
      { collection: "projects", action: "update", id: "p1", version: 1, ops: [listInsert("members", "u2")] },
      { collection: "todos", action: "delete", id: "t0", version: 3 },
    ];
    const r = await client.batch(ops);
    expect(seen[0]?.url).toBe("http://abe.test/base/api/batch");
    expect(seen[0]?.body).toEqual({ ops });
    expect(r.results[0]?.status).toBe(201);
  });

  it("exposes the transport (status, headers and parsed body)", async () => {
    const { client } = fake(() => json(201, { ok: true }, { ETag: '"1"' }));
    const r = await client.request<{ ok: boolean }>("POST", "/api/anything", { a: 1 }, { headers: { "X-Test": "1" } });
    expect(r.status).toBe(201);
    expect(r.headers.get("etag")).toBe('"1"');
    expect(r.data.ok).toBe(true);
  });
});

describe("errors", () => {
  const cases: Array<[number, new (...a: never[]) => AbeError, Record<string, string>?]> = [
    [400, ValidationError],
    [401, UnauthorizedError],
    [403, ForbiddenError],
    [404, NotFoundError],
    [409, ConflictError],
    [410, GoneError],
    [422, ValidationError],
    [429, RateLimitedError, { "Retry-After": "7" }],
    [500, AbeError],
    [503, AbeError],
  ];
  for (const [status, cls, headers] of cases) {
    it(`maps ${status} to ${cls.name}`, async () => {
      const { client } = fake(() => json(status, { type: "about:blank", title: "T", status, detail: `d${status}`, request_id: "r1" }, headers));
      const err = await client.records("todos").get("x").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(cls);
      expect(err).toBeInstanceOf(AbeError);
      const e = err as AbeError;
      expect(e.status).toBe(status);
      expect(e.message).toBe(`d${status}`);
      expect(e.requestId).toBe("r1");
      expect(e.name).toBe(cls.name);
    });
  }

  it("error.code is the code of the problem type, else of the status", async () => {
    const answers = [
      json(409, { type: "https://abe.dev/errors/version_conflict", status: 409, detail: "moved on" }),
      json(401, { type: "https://abe.dev/errors/token_expired", status: 401 }),
      json(404, { type: "about:blank", status: 404 }),
      json(422, { status: 422 }),
      json(418, { status: 418 }),
      json(502, { status: 502 }),
    ];
    let i = 0;
    const { client } = fake(() => answers[i++]!);
    const codes: string[] = [];
    for (let n = 0; n < answers.length; n++) {
      const e = (await client.records("todos").get("x").catch((e: unknown) => e)) as AbeError;
      codes.push(e.code);
    }
    expect(codes).toEqual(["version_conflict", "token_expired", "not_found", "validation", "bad_request", "internal"]);
    expect(new NetworkError("down").code).toBe("network");
  });

  it("a conflict carries the current record", async () => {
    const { client } = fake(() => json(409, { status: 409, detail: "the record has changed", current: { ...todo, version: 4 } }));
    const err = await client.records("todos").update("t1", { done: true }, { ifMatch: 3 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as ConflictError<TodosRecord>).current?.version).toBe(4);
  });

  it("a validation error names every field", async () => {
    const errors = [
      { field: "title", message: "is required" },
      { field: "project", message: "no such record" },
    ];
    const { client } = fake(() => json(422, { status: 422, detail: "the record has invalid fields", errors }));
    const err = (await client.records("todos").create({ project: "x", title: "" }).catch((e: unknown) => e)) as ValidationError;
    expect(err.fieldErrors).toEqual(errors);
    expect(err.fields).toEqual({ title: "is required", project: "no such record" });
  });

  it("a batch failure names the index", async () => {
    const { client } = fake(() => json(403, { status: 403, detail: "op 1: refused", index: 1 }));
    const err = (await client.batch([]).catch((e: unknown) => e)) as ForbiddenError;
    expect(err).toBeInstanceOf(ForbiddenError);
    expect(err.index).toBe(1);
  });

  it("rate limits carry retryAfter in seconds (also from an HTTP date)", async () => {
    const { client } = fake(() => json(429, { status: 429 }, { "Retry-After": "12" }));
    const err = (await client.records("todos").list().catch((e: unknown) => e)) as RateLimitedError;
    expect(err.retryAfter).toBe(12);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 0)).toBe(10);
    expect(parseRetryAfter(null)).toBeUndefined();
  });

  it("an error answer that is not JSON is still typed", async () => {
    const { client } = fake(() => new Response("bad gateway", { status: 502 }));
    const err = (await client.records("todos").list().catch((e: unknown) => e)) as AbeError;
    expect(err.status).toBe(502);
    expect(err.message).toBe("bad gateway");
  });

  it("a failed fetch is a NetworkError (status 0)", async () => {
    const { client } = fake(() => Promise.reject(new TypeError("fetch failed")));
    const err = (await client.records("todos").list().catch((e: unknown) => e)) as NetworkError;
    expect(err).toBeInstanceOf(NetworkError);
    expect(err.status).toBe(0);
    expect(err.cause).toBeInstanceOf(TypeError);
  });

  it("a 2xx answer that is not JSON is a NetworkError", async () => {
    const { client } = fake(() => new Response("<html>", { status: 200 }));
    await expect(client.records("todos").list()).rejects.toBeInstanceOf(NetworkError);
  });
});

describe("AbortSignal", () => {
  it("passes the signal to fetch and rejects with its reason when aborted", async () => {
    const { seen, client } = fake(
      (s) =>
        new Promise<Response>((_, rej) => {
          s.signal?.addEventListener("abort", () => rej(s.signal?.reason));
        }),
    );
    const ac = new AbortController();
    const p = client.records("todos").list({ signal: ac.signal });
    await new Promise((r) => setTimeout(r, 1));
    ac.abort();
    const err = await p.catch((e: unknown) => e);
    expect(seen[0]?.signal).toBe(ac.signal);
    expect((err as Error).name).toBe("AbortError");
    expect(err).not.toBeInstanceOf(AbeError);
  });

  it("does not send a request whose signal is already aborted", async () => {
    const { seen, client } = fake(() => json(200, todo));
    const ac = new AbortController();
    ac.abort();
    await expect(client.records("todos").get("t1", { signal: ac.signal })).rejects.toMatchObject({ name: "AbortError" });
    await expect(client.auth.login({ email: "a", password: "b" }, { signal: ac.signal })).rejects.toMatchObject({ name: "AbortError" });
    expect(seen).toHaveLength(0);
  });
});

describe("types", () => {
  it("types records by the generated Collections", () => {
    const { client } = fake(() => json(200, todo));
    expectTypeOf(client.records("todos").get).returns.resolves.toEqualTypeOf<TodosRecord>();
    expectTypeOf(client.records("projects").create).parameter(0).toHaveProperty("owner");
    // @ts-expect-error: not a collection of this app
    client.records("nope");
    // @ts-expect-error: title must be a string
    void client.records("todos").update("t1", { title: 1 }).catch(() => {});
    const untyped = createClient({ url: "http://x", fetch: () => Promise.resolve(json(200, {})), coordination: "none" });
    expectTypeOf(untyped.records("anything").get).returns.resolves.toHaveProperty("version");
    untyped.close();
  });
});

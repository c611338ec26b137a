// The write queue against a real abe serve: CRUD, refusals, conflicts,
// and exactly-once delivery across lost answers and a kill -9.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RecordCache, type RecordData } from "../src/cache.js";
import { NetworkError } from "../src/errors.js";
import { HttpTransport, type Transport } from "../src/http.js";
import { MemoryQueueStorage, WriteQueue, mergeFields, type WriteConflict, type QueueOptions, type QueuedWrite } from "../src/queue.js";
import { createProject, registerUser, startServer, type AbeServer, type TestUser } from "./harness.js";

let srv: AbeServer;
let alice: TestUser;
let project: { id: string };

function transportFor(user: TestUser): HttpTransport {
  const t = new HttpTransport({ url: srv.url });
  t.tokens = { getAccessToken: async () => user.accessToken, onUnauthorized: async () => false };
  return t;
}

function queueFor(user: TestUser, o: Partial<QueueOptions> = {}): { q: WriteQueue; cache: RecordCache } {
  const cache = new RecordCache();
  const q = new WriteQueue({ transport: transportFor(user), cache, storage: new MemoryQueueStorage(), backoff: { initial: 100, max: 1000 }, ...o });
  return { q, cache };
}

/** The change log of one record, oldest first. */
const changesOf = (id: string) => srv.sql<{ op: string; version: string }>("SELECT op, version FROM abe.changes WHERE record_id = $1 ORDER BY seq", [id]);

beforeAll(async () => {
  srv = await startServer();
  alice = await registerUser(srv);
  project = await createProject(srv, alice);
});
afterAll(async () => {
  await srv?.stop();
});

describe("the write queue against abe", () => {
  it("creates, updates, applies operations and deletes through /api/batch", async () => {
    const { q, cache } = queueFor(alice);
    const a = q.create("todos", { project: project.id, title: "Water", tags: ["garden"] });
    const b = q.create("todos", { project: project.id, title: "Weed" });
    q.update("todos", a, { done: true }, { ifMatch: true });
    q.applyOps("todos", a, [{ op: "listInsert", path: ["tags"], value: "daily", where: "prepend" }]);
    q.delete("todos", b);
    // Optimistic: visible before the server answers.
    expect(cache.get("todos", a)).toMatchObject({ title: "Water", done: true, tags: ["daily", "garden"] });
    expect(cache.get("todos", b)).toBeUndefined();
    await q.flush();
    const got = await srv.api<RecordData>("GET", `/api/collections/todos/records/${a}`, undefined, alice.accessToken);
    expect(got.body).toMatchObject({ id: a, title: "Water", done: true, tags: ["daily", "garden"], version: 3 });
    expect(cache.get("todos", a)).toMatchObject({ version: 3, done: true, tags: ["daily", "garden"] });
    expect(cache.getServer("todos", a)?.updated_at).toBe(got.body.updated_at);
    expect((await srv.api("GET", `/api/collections/todos/records/${b}`, undefined, alice.accessToken)).status).toBe(404);
    expect((await changesOf(b)).map((c) => c.op)).toEqual(["create", "delete"]);
  });

  it("rolls back a write the server refuses (422, 403) and tells onRollback", async () => {
    const rolled: [QueuedWrite, number][] = [];
    const { q, cache } = queueFor(alice, { onRollback: (w, e) => rolled.push([w, e.status]) });
    const bad = q.create("todos", { project: project.id, title: "" }); // min 1
    const bob = await registerUser(srv);
    const { q: qb, cache: cb } = queueFor(bob, { onRollback: (w, e) => rolled.push([w, e.status]) });
    const foreign = qb.create("todos", { project: project.id, title: "not my project" });
    expect(cb.get("todos", foreign)).toBeDefined();
    await q.flush();
    await qb.flush();
    expect(rolled.map(([w, s]) => [w.recordId, s])).toEqual([
      [bad, 422],
      [foreign, 403],
    ]);
    expect(cache.get("todos", bad)).toBeUndefined();
    expect(cb.get("todos", foreign)).toBeUndefined();
    expect((await srv.sql("SELECT id FROM todos WHERE id = ANY($1)", [[bad, foreign]])).length).toBe(0);
  });

  it("rolls back a conditional write on 409 and merges base, local and remote field by field", async () => {
    const conflicts: WriteConflict[] = [];
    const { q, cache } = queueFor(alice, {
      onConflict: (c) => {
        conflicts.push(c);
        const m = mergeFields(c.base, c.local, c.remote);
        return m.changes;
      },
    });
    const id = q.create("todos", { project: project.id, title: "Prune", done: false });
    await q.flush();
    expect(cache.getVersion("todos", id)).toBe(1);
    // Another client renames it.
    const other = await srv.api("PATCH", `/api/collections/todos/records/${id}`, { title: "Prune roses" }, alice.accessToken);
    expect(other.status).toBe(200);
    const w = q.update("todos", id, { done: true, note: "mine" }, { ifMatch: true });
    expect(cache.get("todos", id)).toMatchObject({ title: "Prune", done: true });
    await expect(q.wait(w)).resolves.toBe("conflict");
    expect(conflicts).toHaveLength(1);
    expect(conflicts[0]).toMatchObject({
      base: { version: 1, title: "Prune", done: false },
      local: { version: 1, title: "Prune", done: true, note: "mine" },
      remote: { version: 2, title: "Prune roses", done: false },
    });
    expect(conflicts[0]!.error.status).toBe(409);
    await q.flush();
    const now = await srv.api<RecordData>("GET", `/api/collections/todos/records/${id}`, undefined, alice.accessToken);
    expect(now.body).toMatchObject({ version: 3, title: "Prune roses", done: true, note: "mine" });
    expect(cache.get("todos", id)).toMatchObject({ version: 3, title: "Prune roses", done: true, note: "mine" });
  });

  it("lands a batch exactly once when its answer is lost (the retry meets its own writes)", async () => {
    const real = transportFor(alice);
    let lose = 2;
    // Sends the request, lets it commit, and loses the answer: the worst case for a retry.
    const lossy: Transport = {
      async request(method, path, body, opts) {
        const res = await real.request(method, path, body, opts);
        if (path === "/api/batch" && lose-- > 0) throw new NetworkError("the answer was lost");
        return res as never;
      },
    };
    const cache = new RecordCache();
    const problems: unknown[] = [];
    const q = new WriteQueue({
      transport: lossy,
      cache,
      storage: new MemoryQueueStorage(),
      backoff: { initial: 50, max: 200 },
      onRollback: (w) => problems.push(w),
      onConflict: (c) => void problems.push(c),
      onDrop: (w) => problems.push(w),
    });
    const id = q.create("todos", { project: project.id, title: "Once", tags: [] });
    q.applyOps("todos", id, [{ op: "listInsert", path: ["tags"], value: "a" }]);
    await q.flush();
    const u = q.update("todos", id, { title: "Once more" }, { ifMatch: true });
    await expect(q.wait(u)).resolves.toBe("applied");
    expect(problems).toEqual([]);
    expect((await changesOf(id)).map((c) => [c.op, Number(c.version)])).toEqual([
      ["create", 1],
      ["update", 2],
      ["update", 3],
    ]);
    expect(cache.get("todos", id)).toMatchObject({ version: 3, title: "Once more", tags: ["a"] });
  });

  it("keeps writes across kill -9 of the server and a reload of the page; each lands exactly once", async () => {
    const storage = new MemoryQueueStorage();
    const { q: q1 } = queueFor(alice, { storage, maxBatch: 3 });
    const ids: string[] = [];
    const updates = new Map<string, number>();
    const write = (q: WriteQueue, i: number) => {
      const id = q.create("todos", { project: project.id, title: `t${i}`, tags: [] });
      ids.push(id);
      q.update("todos", id, { done: true });
      q.applyOps("todos", id, [{ op: "listInsert", path: ["tags"], value: `x${i}` }]);
      updates.set(id, 2);
    };
    for (let i = 0; i < 6; i++) write(q1, i);
    // Let the first batches land, then kill the server mid-queue.
    await new Promise<void>((res) => {
      const off = q1.onChange((w) => {
        if (w.length <= 12) {
          off();
          res();
        }
      });
    });
    await srv.kill();
    for (let i = 6; i < 10; i++) write(q1, i);
    await new Promise((r) => setTimeout(r, 500)); // failing attempts, backing off
    expect(q1.pending.length).toBeGreaterThan(0);
    q1.close(); // the page goes away with writes pending (some maybe sent)

    await srv.restart();
    const { q: q2, cache: c2 } = queueFor(alice, { storage });
    await q2.ready;
    expect(c2.get("todos", ids[9]!)).toMatchObject({ title: "t9", done: true, tags: ["x9"] });
    await q2.flush();

    const rows = await srv.sql<{ id: string; title: string; done: boolean; tags: string[]; version: string }>(
      "SELECT id, title, done, tags, version FROM todos WHERE id = ANY($1) ORDER BY title",
      [ids],
    );
    expect(rows).toHaveLength(10);
    for (const r of rows) {
      const i = r.title.slice(1);
      expect(r).toMatchObject({ done: true, tags: [`x${i}`] });
      expect(Number(r.version)).toBe(3);
      const log = await changesOf(r.id);
      expect(log.map((c) => [c.op, Number(c.version)])).toEqual([
        ["create", 1],
        ["update", 2],
        ["update", 3],
      ]);
    }
  });
});

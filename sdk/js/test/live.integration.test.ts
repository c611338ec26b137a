// Live queries against a real abe serve, in Node (memory store): a
// filtered query places local writes by running its filter on the
// client, hears other clients through realtime, and rolls a refused
// write back to the server's record.
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, MemoryTokenStore, type AbeClient, type LiveResult, type WebSocketConstructor } from "../src/index.js";
import type { RecordData } from "../src/realtime.js";
import { createProject, registerUser, startServer, type AbeServer, type TestUser } from "./harness.js";

let srv: AbeServer;
let alice: TestUser;
let project: { id: string };

beforeAll(async () => {
  srv = await startServer();
  alice = await registerUser(srv);
  project = await createProject(srv, alice);
});
afterAll(async () => {
  await srv?.stop();
});

async function clientFor(user: TestUser, fetch?: typeof globalThis.fetch): Promise<AbeClient> {
  const c = createClient({
    url: srv.url,
    fetch,
    tokenStore: new MemoryTokenStore(),
    offline: { storage: "memory", WebSocket: WebSocket as unknown as WebSocketConstructor, backoff: { initial: 50, max: 200 } },
  });
  await c.auth.login({ email: user.email, password: user.password });
  return c;
}

/** Collects a live query's results; `next(check)` waits for one that passes. */
function watch(c: AbeClient, filter?: string) {
  const seen: LiveResult<RecordData>[] = [];
  const waiting: { check: (r: LiveResult<RecordData>) => boolean; done: (r: LiveResult<RecordData>) => void }[] = [];
  const off = c.live("todos", { filter, sort: ["title"] }).subscribe((r) => {
    seen.push(r);
    for (const w of [...waiting]) {
      if (!w.check(r)) continue;
      waiting.splice(waiting.indexOf(w), 1);
      w.done(r);
    }
  });
  const next = (check: (r: LiveResult<RecordData>) => boolean) =>
    new Promise<LiveResult<RecordData>>((done) => {
      const last = seen.at(-1);
      if (last && check(last)) return done(last);
      waiting.push({ check, done });
    });
  return { seen, next, off };
}

const titles = (r: LiveResult<RecordData>) => r.records.map((t) => t.title);

describe("live queries against abe", () => {
  it("places local writes in a filtered query at once, by its filter, and keeps them there when they land", async () => {
    const c = await clientFor(alice);
    const open = watch(c, `done == false && project == "${project.id}"`);
    await open.next((r) => r.source === "server");

    // No round trip: the write shows in the same tick's results, though
    // it lacks done (the server's default), which the filter reads.
    const id = c.writes.create("todos", { project: project.id, title: "Water" });
    expect(titles(open.seen.at(-1)!)).toEqual(["Water"]);
    expect(open.seen.at(-1)!.pending).toBe(1);
    c.writes.update("todos", id, { done: true });
    expect(titles(open.seen.at(-1)!)).toEqual([]);
    c.writes.update("todos", id, { done: false });
    expect(titles(open.seen.at(-1)!)).toEqual(["Water"]);
    await c.writes.flush();
    const landed = await open.next((r) => r.pending === 0);
    expect(titles(landed)).toEqual(["Water"]);
    expect(landed.records[0]!.version).toBe(3);

    // Another client's change arrives through realtime, and leaves the query by the filter.
    const other = await srv.api("PATCH", `/api/collections/todos/records/${id}`, { done: true }, alice.accessToken);
    expect(other.status).toBe(200);
    expect(titles(await open.next((r) => r.records.length === 0))).toEqual([]);
    open.off();
    c.close();
  });

  it("rolls a refused write back to the server's record in every live query", async () => {
    const bob = await registerUser(srv);
    // Bob is a member of Alice's project: he may edit its todos but not delete them.
    const p = await srv.api<{ version: number }>("PATCH", `/api/collections/projects/records/${project.id}`, { members: [bob.id] }, alice.accessToken);
    expect(p.status).toBe(200);
    const t = await srv.api<{ id: string }>("POST", "/api/collections/todos/records", { project: project.id, title: "Keep" }, alice.accessToken);
    const c = await clientFor(bob);
    const all = watch(c);
    await all.next((r) => r.source === "server" && titles(r).includes("Keep"));
    const w = c.writes.delete("todos", t.body.id);
    expect(titles(all.seen.at(-1)!)).not.toContain("Keep");
    expect(await c.writes.wait(w)).toBe("rolledBack");
    expect(titles(await all.next((r) => r.pending === 0 && titles(r).includes("Keep")))).toContain("Keep");
    all.off();
    c.close();
  });

  it("answers a live record, and hears its deletion", async () => {
    const c = await clientFor(alice);
    const t = await srv.api<{ id: string }>("POST", "/api/collections/todos/records", { project: project.id, title: "One" }, alice.accessToken);
    const seen: (RecordData | undefined)[] = [];
    let ready!: () => void;
    let gone!: () => void;
    const first = new Promise<void>((r) => (ready = r));
    const deleted = new Promise<void>((r) => (gone = r));
    const off = c.liveRecord("todos", t.body.id).subscribe((r) => {
      seen.push(r.record);
      if (r.source === "server" && r.record) ready();
      if (r.source === "server" && !r.record && seen.some(Boolean)) gone();
    });
    await first;
    expect(seen.at(-1)).toMatchObject({ title: "One" });
    expect((await srv.api("DELETE", `/api/collections/todos/records/${t.body.id}`, undefined, alice.accessToken)).status).toBe(204);
    await deleted;
    off();
    c.close();
  });

  it("tries a failed fetch again by itself, with backoff, until the server answers", async () => {
    // The first lists fail as if abe were restarting; nothing else (no
    // reconnect, no "online" event) happens to wake the query.
    let failing = 3;
    const lists: string[] = [];
    const c = await clientFor(alice, async (input, init) => {
      const url = String(input instanceof Request ? input.url : input);
      if (url.includes("/api/collections/todos/records?") || url.endsWith("/api/collections/todos/records")) {
        lists.push(url);
        if (failing-- > 0) throw new TypeError("fetch failed");
      }
      return fetch(input, init);
    });
    const q = watch(c);
    const failed = await q.next((r) => r.error?.status === 0);
    expect(failed.source).toBe("cache");
    const ok = await q.next((r) => r.source === "server" && r.error === null);
    expect(ok.records.length).toBeGreaterThan(0);
    expect(lists.length).toBe(4);
    q.off();
    c.close();
  });

  it("never sends an earlier version's localStorage queue with the token of a user who signs in later", async () => {
    // SDK 0.1 kept one queue per browser, not saying whose writes it held:
    // only the session a page opens first takes it. A 0.1 tab still open
    // writes there later; a user who then signs in here must not send it.
    const m = new Map<string, string>();
    const ls = { get length() { return m.size; }, key: (i: number) => [...m.keys()][i] ?? null, getItem: (k: string) => m.get(k) ?? null, setItem: (k: string, v: string) => void m.set(k, v), removeItem: (k: string) => void m.delete(k) };
    (globalThis as { localStorage?: unknown }).localStorage = ls;
    try {
      const c = createClient({ url: srv.url, tokenStore: new MemoryTokenStore(), offline: { storage: "memory", WebSocket: WebSocket as unknown as WebSocketConstructor, backoff: { initial: 50, max: 200 } } });
      await c.writes.flush(); // the first session (nobody's) has loaded its queue
      const id = "01900000-0000-7000-8000-00000000c0de";
      m.set("abe.queue:oldtab", JSON.stringify([{ id: "01900000-0000-7000-8000-00000000c0df", collection: "todos", action: "create", recordId: id, data: { project: project.id, title: "Whose?" }, base: null }]));
      m.set("abe.queue:tabs", JSON.stringify({ oldtab: Date.now() }));
      await c.auth.login({ email: alice.email, password: alice.password });
      await c.writes.flush();
      expect(c.writes.pending).toEqual([]);
      expect(await srv.sql("SELECT id FROM todos WHERE id = $1", [id])).toEqual([]);
      expect(m.has("abe.queue:oldtab")).toBe(true);
      c.close();
    } finally {
      delete (globalThis as { localStorage?: unknown }).localStorage;
    }
  });

  it("takes writes, queries and undo before the offline layer has loaded, in order and exactly once", async () => {
    // The layer is a chunk the client imports on first use (src/lazy.ts):
    // everything asked of it in the same tick as createClient waits for it.
    const posts: string[] = [];
    const c = createClient({
      url: srv.url,
      tokenStore: new MemoryTokenStore(),
      fetch: (input, init) => {
        if (init?.method === "POST" || init?.method === "PATCH") posts.push(`${init.method} ${new URL(String(input)).pathname}`);
        return fetch(input, init);
      },
      offline: { storage: "memory", WebSocket: WebSocket as unknown as WebSocketConstructor, backoff: { initial: 50, max: 200 } },
    });
    await c.auth.login({ email: alice.email, password: alice.password });
    const filter = `project == "${project.id}" && title.startsWith("Early")`;
    const q = c.live("todos", { filter, sort: ["title"] });
    expect(q.current).toEqual({ records: [], source: "cache", pending: 0, error: null });
    expect(c.live("todos", { filter, sort: "title" })).toBe(q);
    const seen: string[][] = [];
    const off = q.subscribe((r) => seen.push(r.records.map((t) => String(t.title))));
    const undoable: boolean[] = [];
    const offUndo = c.history.subscribe(() => undoable.push(c.history.canUndo));
    expect(c.history.canUndo).toBe(false);
    expect(c.writes.pending).toEqual([]);

    const id = c.writes.create("todos", { project: project.id, title: "Early bird" });
    const w1 = c.writes.update("todos", id, { title: "Early riser" });
    const w2 = c.writes.applyOps("todos", id, [{ op: "set", path: ["done"], value: true }]);
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set([id, w1, w2]).size).toBe(3);
    expect(await c.writes.wait(w2)).toBe("applied");
    expect(await c.writes.wait(w1)).toBe("applied");
    await c.writes.flush();

    const rows = await srv.sql("SELECT title, done FROM todos WHERE id = $1", [id]);
    expect(rows).toEqual([{ title: "Early riser", done: true }]);
    // Each write went out once (batched or not), none twice.
    expect(posts.length).toBeLessThanOrEqual(3);
    await expect.poll(() => seen.at(-1)).toEqual(["Early riser"]);
    // After the load the same question gets the same object, and the history is the layer's.
    expect(c.live("todos", { filter, sort: ["title"] })).toBe(q);
    expect(c.history.canUndo).toBe(true);
    expect(undoable).toContain(true);
    // The three writes came within one step's window: undo takes the record away.
    expect(await c.history.undo()).toBe(true);
    await c.writes.flush();
    expect(await srv.sql("SELECT done FROM todos WHERE id = $1", [id])).toEqual([]);
    await expect.poll(() => seen.at(-1)).toEqual([]);
    off();
    offUndo();
    c.close();
  });
});

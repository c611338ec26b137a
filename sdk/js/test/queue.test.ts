import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { RecordCache } from "../src/cache.js";
import { MemoryQueueStorage, WriteQueue, mergeFields, uuidv7, type WriteConflict, type QueueOptions, type QueuedWrite } from "../src/queue.js";
import { FakeServer, problem } from "./fake-batch-server.js";

let srv: FakeServer;
let cache: RecordCache;
const queue = (o: Partial<QueueOptions> = {}) =>
  new WriteQueue({ transport: srv, cache, storage: new MemoryQueueStorage(), random: () => 0.5, backoff: { initial: 1000, max: 16_000 }, ...o });

beforeEach(() => {
  vi.useFakeTimers();
  srv = new FakeServer();
  cache = new RecordCache();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("uuidv7 and mergeFields", () => {
  it("makes time-ordered version 7 UUIDs", () => {
    const a = uuidv7(1_700_000_000_000);
    const b = uuidv7(1_700_000_000_001);
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a < b).toBe(true);
    expect(a.slice(0, 13)).toBe("018bcfe5-6800");
  });

  it("merges fields three ways and names the conflicts", () => {
    const base = { id: "a", version: 1, title: "t", done: false, note: "n", tags: ["x"] };
    const local = { id: "a", version: 1, title: "mine", done: true, note: "n", tags: ["x"] };
    const remote = { id: "a", version: 2, title: "theirs", done: false, note: "their note", tags: ["x"] };
    const m = mergeFields(base, local, remote);
    expect(m.conflicts).toEqual(["title"]);
    expect(m.changes).toEqual({ done: true });
    expect(m.merged).toEqual({ id: "a", version: 2, title: "theirs", done: true, note: "their note", tags: ["x"] });
    // The same change on both sides is no conflict.
    expect(mergeFields(base, { ...base, title: "same" }, { ...remote, title: "same" }).conflicts).toEqual([]);
  });
});

describe("WriteQueue", () => {
  it("applies writes optimistically and sends consecutive writes in one batch", async () => {
    const q = queue();
    const id = q.create("todos", { title: "Water", done: false });
    q.update("todos", id, { done: true });
    const id2 = q.create("todos", { title: "Weed" });
    expect(cache.get("todos", id)).toMatchObject({ title: "Water", done: true, version: 0 });
    expect(cache.get("todos", id2)?.title).toBe("Weed");
    await q.flush();
    expect(srv.batches).toHaveLength(1);
    expect(srv.batches[0]!.map((o) => o.action)).toEqual(["create", "update", "create"]);
    expect(cache.get("todos", id)).toMatchObject({ title: "Water", done: true, version: 2 });
    expect(cache.getServer("todos", id)?.version).toBe(2);
    expect(q.pending).toHaveLength(0);
  });

  it("retries network errors and 5xx with exponential backoff and jitter, then lands once", async () => {
    srv.script = ["offline", problem(503), "offline"];
    const q = queue();
    const id = q.create("todos", { title: "a" });
    const w = q.update("todos", id, { title: "b" });
    await vi.advanceTimersByTimeAsync(0);
    expect(srv.batches).toHaveLength(1);
    // random() = 0.5: 750 ms, 1500 ms, 3000 ms.
    await vi.advanceTimersByTimeAsync(749);
    expect(srv.batches).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(srv.batches).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1499);
    expect(srv.batches).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(srv.batches).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(3000);
    expect(srv.batches).toHaveLength(4);
    await expect(q.wait(w)).resolves.toBe("applied");
    expect(srv.rec("todos", id)).toMatchObject({ title: "b", version: 2 });
  });

  it("honours Retry-After on 429", async () => {
    srv.script = [problem(429, {}, { "Retry-After": "7" })];
    const q = queue();
    q.create("todos", { title: "a" });
    await vi.advanceTimersByTimeAsync(6_999);
    expect(srv.batches).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(srv.batches).toHaveLength(2);
    await q.flush();
  });

  it("rolls back a write the server refuses (422, 403, 400) and still sends the others", async () => {
    srv.records.set("todos/a", { id: "a", version: 3, title: "kept" });
    cache.put("todos", { id: "a", version: 3, title: "kept" });
    const rolled: [QueuedWrite, number][] = [];
    const q = queue({ onRollback: (w, e) => rolled.push([w, e.status]) });
    q.update("todos", "a", { done: true });
    const bad = q.update("todos", "a", { title: "" });
    const id = q.create("todos", { title: "fine" });
    expect(cache.get("todos", "a")?.title).toBe("");
    await expect(q.wait(bad)).resolves.toBe("rolledBack");
    await q.flush();
    expect(rolled.map(([w, s]) => [w.id, s])).toEqual([[bad, 422]]);
    expect(cache.get("todos", "a")).toMatchObject({ title: "kept", done: true, version: 4 });
    expect(srv.rec("todos", id)?.title).toBe("fine");
    srv.script = [problem(403, { index: 0 })];
    q.update("todos", "a", { title: "forbidden" });
    await q.flush();
    expect(rolled.map(([, s]) => s)).toEqual([422, 403]);
    expect(cache.get("todos", "a")?.title).toBe("kept");
  });

  it("on 409 of a conditional write rolls back and hands base, local and remote to onConflict; its merge is written", async () => {
    srv.records.set("todos/a", { id: "a", version: 1, title: "t", done: false });
    cache.put("todos", { id: "a", version: 1, title: "t", done: false });
    // Someone else changes the title meanwhile.
    srv.records.set("todos/a", { id: "a", version: 2, title: "theirs", done: false });
    const seen: WriteConflict[] = [];
    const q = queue({
      onConflict: (c) => {
        seen.push(c);
        return mergeFields(c.base, c.local, c.remote).changes;
      },
    });
    const w = q.update("todos", "a", { done: true }, { ifMatch: true });
    expect(srv.batches).toHaveLength(0);
    await expect(q.wait(w)).resolves.toBe("conflict");
    await q.flush();
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      base: { version: 1, title: "t", done: false },
      local: { version: 1, title: "t", done: true },
      remote: { version: 2, title: "theirs", done: false },
    });
    expect(srv.batches.at(-1)).toEqual([{ collection: "todos", action: "update", id: "a", version: 2, data: { done: true } }]);
    expect(srv.rec("todos", "a")).toEqual({ id: "a", version: 3, title: "theirs", done: true });
    expect(cache.get("todos", "a")).toEqual({ id: "a", version: 3, title: "theirs", done: true });
  });

  it("drops a write for other 4xx (404) and reports it", async () => {
    const dropped: number[] = [];
    const q = queue({ onDrop: (_w, e) => dropped.push(e.status) });
    const w = q.update("todos", "gone", { title: "x" });
    await expect(q.wait(w)).resolves.toBe("dropped");
    expect(dropped).toEqual([404]);
  });

  it("counts a retried create whose first answer was lost as applied: the record exists once", async () => {
    srv.script = ["lose"];
    const q = queue();
    const id = q.create("todos", { title: "once" });
    const w = q.pending[0]!.id;
    q.update("todos", id, { done: true });
    await vi.advanceTimersByTimeAsync(60_000);
    await expect(q.wait(w)).resolves.toBe("applied");
    expect(srv.batches).toHaveLength(2); // the lost one, and the retry the server refused as a taken id
    expect([...srv.records.values()]).toEqual([{ id, version: 2, title: "once", done: true }]);
    expect(cache.get("todos", id)).toEqual({ id, version: 2, title: "once", done: true });
  });

  it("counts a retried conditional update and delete whose answers were lost as applied", async () => {
    srv.records.set("todos/a", { id: "a", version: 1, title: "t" });
    srv.records.set("todos/b", { id: "b", version: 1, title: "t" });
    cache.put("todos", { id: "a", version: 1, title: "t" });
    cache.put("todos", { id: "b", version: 1, title: "t" });
    const conflicts: WriteConflict[] = [];
    srv.script = ["lose", "lose"];
    const q = queue({ onConflict: (c) => void conflicts.push(c) });
    const w = q.update("todos", "a", { title: "u" }, { ifMatch: true });
    await vi.advanceTimersByTimeAsync(60_000);
    await expect(q.wait(w)).resolves.toBe("applied");
    const d = q.delete("todos", "b");
    await vi.advanceTimersByTimeAsync(60_000);
    await expect(q.wait(d)).resolves.toBe("applied");
    expect(conflicts).toEqual([]);
    expect(srv.rec("todos", "a")).toEqual({ id: "a", version: 2, title: "u" });
    expect(srv.rec("todos", "b")).toBeUndefined();
  });

  it("moves later conditional writes of a record to the version its earlier write made", async () => {
    const q = queue();
    const id = q.create("todos", { title: "a" });
    q.update("todos", id, { title: "b" }, { ifMatch: true });
    q.apply([{ collection: "todos", id, ops: [{ op: "set", path: ["title"], value: "c" }] }], { ifMatch: true });
    await q.flush();
    expect(srv.batches.map((b) => b.map((o) => o.version))).toEqual([[undefined], [1], [2]]);
    expect(srv.rec("todos", id)).toMatchObject({ title: "c", version: 3 });
  });

  it("persists: writes queued offline survive a reload and are sent once", async () => {
    const storage = new MemoryQueueStorage();
    srv.offline = true;
    const q1 = queue({ storage });
    const id = q1.create("todos", { title: "offline" });
    q1.update("todos", id, { done: true });
    await vi.advanceTimersByTimeAsync(5_000);
    q1.close(); // the page goes away
    expect((storage.load() ?? []).map((w) => w.action)).toEqual(["create", "update"]);

    cache = new RecordCache();
    srv.offline = false;
    const q2 = queue({ storage });
    await q2.ready;
    expect(cache.get("todos", id)).toMatchObject({ title: "offline", done: true });
    await q2.flush();
    expect(srv.rec("todos", id)).toMatchObject({ title: "offline", done: true, version: 2 });
    expect(storage.load()).toEqual([]);
  });

  it("treats a reload during an unanswered send as a possible landing (no duplicate, no error)", async () => {
    const storage = new MemoryQueueStorage();
    srv.script = ["lose"];
    const q1 = queue({ storage });
    const id = q1.create("todos", { title: "x" });
    await vi.advanceTimersByTimeAsync(0);
    q1.close();
    expect(storage.load()?.[0]?.sent).toBeTruthy();
    const dropped: unknown[] = [];
    const q2 = queue({ storage, onDrop: (w) => dropped.push(w), onRollback: (w) => dropped.push(w) });
    await q2.flush();
    expect(dropped).toEqual([]);
    expect([...srv.records.keys()]).toEqual([`todos/${id}`]);
  });

  it("finds the refused write of a batch the server did not name by sending one at a time", async () => {
    srv.script = [problem(400)]; // no index
    const rolled: string[] = [];
    const q = queue({ onRollback: (w) => rolled.push(w.recordId) });
    const a = q.create("todos", { title: "a" });
    const b = q.create("todos", { title: "" });
    const c = q.create("todos", { title: "c" });
    await q.flush();
    expect(srv.batches.map((x) => x.length)).toEqual([3, 1, 2, 1]); // solo until one lands; then the server names the index
    expect(rolled).toEqual([b]);
    expect([...srv.records.keys()].sort()).toEqual([`todos/${a}`, `todos/${c}`].sort());
  });

  it("clear() drops pending writes and their optimistic changes", async () => {
    srv.offline = true;
    const q = queue();
    const a = q.create("todos", { title: "a" });
    const w = q.pending[0]!.id;
    const outcome = q.wait(w);
    await q.clear();
    await expect(outcome).resolves.toBe("dropped");
    expect(cache.get("todos", a)).toBeUndefined();
    await q.flush();
    q.close();
  });
});

// Tabs sharing one connection and queue, in Node: two "tabs" of one realm
// (memory election and bus) over one store, a scripted WebSocket and the
// fake batch server. Only the leader opens a socket and sends; a
// follower's writes and subscriptions go through it; when it goes, the
// follower adopts its slot and subscribes again from the last seq.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { RecordCache } from "../src/cache.js";
import { WriteQueue } from "../src/queue.js";
import { RealtimeClient, type RealtimeNotice } from "../src/realtime.js";
import { MemoryStore, StoreQueueStorage } from "../src/store.js";
import { shareTabs, type Tabs } from "../src/tabs.js";
import { FakeServer } from "./fake-batch-server.js";
import { FakeWebSocket } from "./fake-ws.js";

let srv: FakeServer;
let store: MemoryStore;
let clock: number;
let name: string;
let n = 0;
const open: Tab[] = [];

beforeEach(() => {
  srv = new FakeServer();
  store = new MemoryStore("abe:test");
  clock = 1_000_000;
  name = `tabs-${++n}`;
  FakeWebSocket.all = [];
});
afterEach(() => {
  for (const t of open.splice(0)) t.close();
});

interface Tab {
  cache: RecordCache;
  queue: WriteQueue;
  tabs: Tabs;
  heard: RealtimeNotice[];
  close(): void;
}

/** A tab: its cache, queue (a slot of the shared store) and realtime client, and its part in the election. */
function tab(backoff = { initial: 10, max: 20 }): Tab {
  const cache = new RecordCache();
  const storage = new StoreQueueStorage(store, { locks: null, journal: null, staleAfter: 15_000, now: () => clock });
  const queue = new WriteQueue({ transport: srv, cache, storage, backoff, random: () => 0.5 });
  const rt = new RealtimeClient({ url: "http://abe.test", WebSocket: FakeWebSocket, unsubscribeDelay: 0 });
  const tabs = shareTabs(Promise.resolve(name), { queue, cache, rt, adopt: () => storage.adopt(), memory: true });
  const t: Tab = {
    cache,
    queue,
    tabs,
    heard: [],
    close() {
      queue.close();
      storage.close();
      tabs.close();
      rt.close();
    },
  };
  open.push(t);
  return t;
}

/** Opens the leader's socket and acknowledges what it subscribed to, at seq. */
async function serveSocket(seq: number): Promise<FakeWebSocket> {
  await vi.waitFor(() => expect(FakeWebSocket.all).toHaveLength(1));
  const ws = FakeWebSocket.last;
  ws.open();
  await vi.waitFor(() => expect(ws.ofType("subscribe")).toHaveLength(1));
  ws.msg({ type: "ack", id: ws.ofType("subscribe")[0]!.id, seq });
  return ws;
}

const titles = (t: Tab) => t.cache.getQuery({ collection: "todos", sort: "title" })?.map((r) => r.title);

describe("Tabs", () => {
  it("holds a follower's subscription on the leader's one socket and tells it the leader's notices", async () => {
    const a = tab();
    const b = tab();
    b.tabs.subscribe("collection:todos", (m) => b.heard.push(m), { filter: "done == false" });
    const ws = await serveSocket(5);
    expect(ws.ofType("subscribe")[0]).toMatchObject({ topic: "collection:todos", filter: "done == false" });
    await vi.waitFor(() => expect(b.heard).toEqual([{ type: "ready", topic: "collection:todos", seq: 5 }]));
    ws.msg({ type: "event", sub: ws.ofType("subscribe")[0]!.id, op: "create", id: "r1", version: 1, seq: 6, record: { id: "r1", version: 1 } });
    await vi.waitFor(() => expect(b.heard.at(-1)).toMatchObject({ type: "event", id: "r1", seq: 6 }));
    expect(FakeWebSocket.all).toHaveLength(1);
    expect(a.heard).toEqual([]);
  });

  it("shows a write in the other tab at once, sends it once from the leader, and lands it in both", async () => {
    const a = tab();
    const b = tab();
    for (const t of [a, b]) t.cache.setQuery({ collection: "todos", sort: "title" }, []);
    srv.offline = true;
    const fromB = b.queue.create("todos", { title: "Rake" });
    const writeB = b.queue.pending[0]!.id;
    const fromA = a.queue.create("todos", { title: "Sow" });
    // Each shows in the other tab before the server has it.
    await vi.waitFor(() => expect(titles(a)).toEqual(["Rake", "Sow"]));
    await vi.waitFor(() => expect(titles(b)).toEqual(["Rake", "Sow"]));
    expect(b.tabs.pending.map((w) => w.recordId).sort()).toEqual([fromA, fromB].sort());
    // The follower let go of its write once the leader had it.
    await vi.waitFor(() => expect(b.queue.pending).toHaveLength(0));
    expect((await store.readSlots()).flatMap((s) => s.writes.map((w) => w.recordId)).sort()).toEqual([fromA, fromB].sort());

    srv.offline = false;
    a.queue.retryNow();
    await b.tabs.flush();
    expect(srv.batches.flat().map((o) => o.id).sort()).toEqual([fromA, fromB].sort());
    expect(b.cache.getServer("todos", fromA)).toMatchObject({ title: "Sow", version: 1 });
    expect(titles(b)).toEqual(["Rake", "Sow"]);
    expect(await b.tabs.wait(writeB)).toBe("applied");
  });

  it("wakes the leader's queue from a follower (its tab came online or became visible) instead of leaving it in backoff", async () => {
    const slow = { initial: 3_600_000, max: 3_600_000 };
    const a = tab(slow);
    const b = tab(slow);
    srv.script = ["offline"];
    const id = b.queue.create("todos", { title: "Rake" });
    // b follows: its write went to a, whose first attempt failed into an hour's backoff.
    await vi.waitFor(() => expect(b.queue.pending).toHaveLength(0));
    await vi.waitFor(() => expect(srv.batches).toHaveLength(1));
    expect(a.queue.pending.map((w) => w.recordId)).toEqual([id]);
    b.tabs.retryNow();
    await b.tabs.flush();
    expect(srv.batches).toHaveLength(2);
    expect(srv.rec("todos", id)).toMatchObject({ title: "Rake" });
  });

  it("takes over when the leader goes: adopts its slot, sends its writes once, resubscribes from the last seq", async () => {
    const a = tab();
    const b = tab();
    b.tabs.subscribe("collection:todos", (m) => b.heard.push(m));
    const ws = await serveSocket(5);
    const sid = ws.ofType("subscribe")[0]!.id;
    ws.msg({ type: "event", sub: sid, op: "create", id: "r1", version: 1, seq: 7, record: { id: "r1", version: 1 } });
    await vi.waitFor(() => expect(b.heard.at(-1)).toMatchObject({ seq: 7 }));

    // The leader holds a write of each tab it could not send.
    srv.offline = true;
    const fromA = a.queue.create("todos", { title: "Rake" });
    const fromB = b.queue.create("todos", { title: "Sow" });
    await vi.waitFor(() => expect(a.queue.pending).toHaveLength(2));
    await vi.waitFor(() => expect(b.queue.pending).toHaveLength(0));
    await vi.waitFor(async () => expect((await store.readSlots()).flatMap((s) => s.writes)).toHaveLength(2));
    // It goes (its slot stale to the follower, which has no Web Locks here).
    clock += 60_000;
    a.close();
    srv.offline = false;
    // The follower leads: one socket more, subscribed since the seq it saw.
    await vi.waitFor(() => expect(FakeWebSocket.all).toHaveLength(2));
    const ws2 = FakeWebSocket.last;
    ws2.open();
    await vi.waitFor(() => expect(ws2.ofType("subscribe")).toEqual([expect.objectContaining({ topic: "collection:todos", since: 7 })]));
    const fromB2 = b.queue.create("todos", { title: "Weed" });
    await b.tabs.flush();
    const sent = srv.batches.flat().map((o) => o.id);
    expect(sent.sort()).toEqual([fromA, fromB, fromB2].sort());
    expect([...srv.records.keys()].sort()).toEqual([fromA, fromB, fromB2].map((id) => "todos/" + id).sort());
    expect(await store.readSlots()).toEqual([]);
  });

  it("lets a single tab lead: it holds the socket and sends its own writes", async () => {
    const a = tab();
    a.tabs.subscribe("collection:todos", (m) => a.heard.push(m));
    await serveSocket(3);
    await vi.waitFor(() => expect(a.heard).toEqual([{ type: "ready", topic: "collection:todos", seq: 3 }]));
    const id = a.queue.create("todos", { title: "Hoe" });
    expect(await a.tabs.wait(a.queue.pending[0]!.id)).toBe("applied");
    expect(srv.rec("todos", id)).toMatchObject({ title: "Hoe" });
  });
});

// The realtime client against a real abe serve: reference counts seen in
// the server's metrics, live events into the cache, reconnect after kill -9
// with catch-up by seq, and a refreshed token on the open socket.
import WS from "ws";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { RecordCache, type RecordData } from "../src/cache.js";
import { HttpTransport } from "../src/http.js";
import { MemoryQueueStorage, WriteQueue } from "../src/queue.js";
import { RealtimeClient, collectionTopic, recordTopic, type RealtimeEvent, type RealtimeNotice, type RealtimeOptions, type WebSocketConstructor } from "../src/realtime.js";
import { createProject, loginUser, registerUser, startServer, type AbeServer, type TestUser } from "./harness.js";

let srv: AbeServer;
let alice: TestUser;
let project: { id: string };

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const clients: RealtimeClient[] = [];
function client(user: TestUser, o: Partial<RealtimeOptions> = {}): RealtimeClient {
  const rt = new RealtimeClient({ url: srv.url, WebSocket: WS, getToken: () => user.accessToken, ...o });
  clients.push(rt);
  return rt;
}

async function createTodo(title: string): Promise<RecordData> {
  const a = await srv.api<RecordData>("POST", "/api/collections/todos/records", { project: project.id, title }, alice.accessToken);
  expect(a.status).toBe(201);
  return a.body;
}

beforeAll(async () => {
  srv = await startServer();
  alice = await registerUser(srv);
  project = await createProject(srv, alice);
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await until("every socket to close", async () => (await srv.metric("abe_realtime_connections")) === 0);
});
afterAll(async () => {
  await srv?.stop();
});

describe("realtime against abe", () => {
  it("makes one server subscription for ten subscribers, delivers to all, and ends it after the debounce", async () => {
    const rt = client(alice, { unsubscribeDelay: 500 });
    const got: RealtimeEvent[][] = Array.from({ length: 10 }, () => []);
    const offs = got.map((list) => rt.subscribe(collectionTopic("todos"), (n) => n.type === "event" && list.push(n)));
    await until("one subscription on the server", async () => (await srv.metric("abe_realtime_subscriptions")) === 1);
    expect(await srv.metric("abe_realtime_connections")).toBe(1);
    const t = await createTodo("Live");
    await until("ten deliveries", () => got.every((l) => l.length === 1));
    expect(got[0]![0]).toMatchObject({ op: "create", id: t.id, version: 1, record: { title: "Live" } });

    offs.slice(0, 9).forEach((off) => off());
    offs[9]!();
    // Still held during the debounce; a remount keeps it.
    const again = rt.subscribe(collectionTopic("todos"), () => {});
    await new Promise((r) => setTimeout(r, 700));
    expect(await srv.metric("abe_realtime_subscriptions")).toBe(1);
    again();
    await until("the server subscription to end", async () => (await srv.metric("abe_realtime_subscriptions")) === 0);
    await until("the socket to close", async () => (await srv.metric("abe_realtime_connections")) === 0);
    expect(rt.status).toBe("idle");
  });

  it("feeds another client's writes into the cache live", async () => {
    const bob = await registerUser(srv);
    // Bob is a member of the project, so he may read its todos.
    expect((await srv.api("PATCH", `/api/collections/projects/records/${project.id}`, { members: [bob.id] }, alice.accessToken)).status).toBe(200);
    const cache = new RecordCache();
    const rt = client(bob);
    const q = { collection: "todos", filter: `project == '${project.id}'` };
    rt.subscribe(collectionTopic("todos"), (n) => n.type === "event" && cache.applyEvent("todos", n, q), { filter: q.filter });
    cache.setQuery(q, []);
    await until("the subscription", async () => (await srv.metric("abe_realtime_subscriptions")) === 1);

    const t = new HttpTransport({ url: srv.url });
    t.tokens = { getAccessToken: async () => alice.accessToken, onUnauthorized: async () => false };
    const wq = new WriteQueue({ transport: t, cache: new RecordCache(), storage: new MemoryQueueStorage() });
    const id = wq.create("todos", { project: project.id, title: "From Alice" });
    await wq.flush();
    await until("the record in Bob's cache", () => cache.get("todos", id)?.title === "From Alice");
    expect(cache.getQuery(q)?.map((r) => r.id)).toContain(id);
    wq.update("todos", id, { title: "Edited" });
    await wq.flush();
    await until("the update in Bob's cache", () => cache.get("todos", id)?.title === "Edited");
    expect(cache.getVersion("todos", id)).toBe(2);
    wq.delete("todos", id);
    await wq.flush();
    await until("the delete in Bob's cache", () => cache.isDeleted("todos", id));
    expect(cache.getQuery(q)?.map((r) => r.id)).not.toContain(id);
  });

  it("reconnects after kill -9 and catches up by seq on what was written while it was away", async () => {
    const seed = await createTodo("Before");
    let blocked = false;
    // While blocked, connections go to a closed port: the client stays away as long as the test wants.
    const Gate = function (url: string) {
      return new WS(blocked ? "ws://127.0.0.1:9/api/realtime" : url);
    } as unknown as WebSocketConstructor;
    const statuses: string[] = [];
    const rt = client(alice, { WebSocket: Gate, backoff: { initial: 100, max: 400 }, onStatus: (s) => statuses.push(s) });
    const events: RealtimeEvent[] = [];
    const other: RealtimeNotice[] = [];
    rt.subscribe(collectionTopic("todos"), (n) => (n.type === "event" ? events.push(n) : n.type !== "ready" && other.push(n)));
    rt.subscribe(recordTopic("todos", seed.id), (n) => (n.type === "event" ? events.push(n) : n.type !== "ready" && other.push(n)));
    await until("the subscriptions", async () => (await srv.metric("abe_realtime_subscriptions")) === 2);
    const live = await createTodo("Live before the crash");
    await until("the live event", () => events.some((e) => e.id === live.id));

    blocked = true;
    await srv.kill();
    await until("the client to notice", () => rt.status === "reconnecting");
    await srv.restart();
    // Written while the client is disconnected.
    const missed = [await createTodo("Missed 1"), await createTodo("Missed 2")];
    const upd = await srv.api<RecordData>("PATCH", `/api/collections/todos/records/${seed.id}`, { done: true }, alice.accessToken);
    expect(upd.status).toBe(200);
    const before = events.length;
    blocked = false;
    await until("the caught-up events", () => events.length >= before + 4);
    const caught = events.slice(before);
    expect(caught.filter((e) => e.topic === "collection:todos").map((e) => e.id)).toEqual([...missed.map((m) => m.id), seed.id]);
    expect(caught.filter((e) => e.topic.startsWith("record:")).map((e) => [e.id, e.version])).toEqual([[seed.id, 2]]);
    // Nothing repeated, in order.
    const colSeqs = events.filter((e) => e.topic === "collection:todos").map((e) => e.seq);
    expect([...colSeqs].sort((a, b) => a - b)).toEqual(colSeqs);
    expect(new Set(colSeqs).size).toBe(colSeqs.length);
    expect(other).toEqual([]);
    expect(statuses).toContain("reconnecting");
    expect(rt.status).toBe("open");
    // And live events flow again.
    const after = await createTodo("After");
    await until("a live event after reconnecting", () => events.some((e) => e.id === after.id));
  });

  it("sends a refreshed token on the open socket and keeps its subscriptions", async () => {
    let user = alice;
    const listeners: (() => void)[] = [];
    const rt = client(alice, {
      getToken: () => user.accessToken,
      onTokenChange: (l) => {
        listeners.push(l);
        return () => {};
      },
    });
    const events: RealtimeEvent[] = [];
    rt.subscribe(collectionTopic("todos"), (n) => n.type === "event" && events.push(n));
    await until("open", () => rt.status === "open");
    const conns = await srv.metric("abe_realtime_connections");
    user = await loginUser(srv, alice);
    // The old session ends: its tokens are revoked.
    expect((await srv.api("POST", "/api/auth/logout", { refresh_token: alice.refreshToken }, alice.accessToken)).status).toBe(204);
    alice = user;
    listeners.forEach((l) => l());
    await new Promise((r) => setTimeout(r, 300));
    const t = await createTodo("With the new token");
    await until("an event under the new token", () => events.some((e) => e.id === t.id));
    expect(await srv.metric("abe_realtime_connections")).toBe(conns);
    expect(await srv.metric("abe_realtime_subscriptions")).toBe(1);
  });
});

// The SDK in a real browser (headless Chromium through playwright-core)
// against a real abe serve: login with a localStorage session, the write
// queue with its default LocalStorageQueueStorage, realtime over the
// browser's WebSocket, and a write queued while the API is down that
// survives a reload and lands exactly once.
// The page, abe and Chromium come from test/browser.ts.
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AbeClient } from "../src/client.js";
import type { RecordCache } from "../src/cache.js";
import type { WriteQueue } from "../src/queue.js";
import type { RealtimeClient, RealtimeEvent } from "../src/realtime.js";
import { startBrowserWorld, type BrowserWorld } from "./browser.js";
import { createProject, registerUser, type AbeServer, type TestUser } from "./harness.js";

/** What the page's boot script leaves on window. */
interface App {
  client: AbeClient;
  cache: RecordCache;
  queue: WriteQueue;
  rt: RealtimeClient;
  events: RealtimeEvent[];
}
declare global {
  interface Window {
    abe: typeof import("../src/index.js");
    app: App;
  }
}

/** The page's app, run in the browser after the bundle: every load (and reload) boots it afresh. */
function boot(): void {
  const { abe } = window;
  const url = new URLSearchParams(location.search).get("api") ?? "";
  const client = abe.createClient({ url, tokenStore: new abe.LocalStorageTokenStore() });
  const cache = new abe.RecordCache();
  const queue = new abe.WriteQueue({ transport: client.transport, cache, backoff: { initial: 100, max: 500 } });
  const rt = new abe.RealtimeClient({ url, getToken: () => client.getAccessToken() });
  window.app = { client, cache, queue, rt, events: [] };
}

let world: BrowserWorld;
let srv: AbeServer;
let alice: TestUser;
let project: { id: string };
let page: Page;
const errors: string[] = [];

beforeAll(async () => {
  world = await startBrowserWorld({ boot });
  srv = world.srv;
  alice = await registerUser(srv);
  project = await createProject(srv, alice);
  page = await world.browser.newPage();
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(world.pageURL());
});
afterAll(async () => {
  await world?.close();
});

/** The change log of one record, oldest first. */
const changesOf = async (id: string) => (await srv.sql<{ op: string }>("SELECT op FROM abe.changes WHERE record_id = $1 ORDER BY seq", [id])).map((c) => c.op);

describe("the SDK in headless Chromium", () => {
  it("logs in, writes through the queue, hears another client live, and lands an offline write once across a reload", async () => {
    // Login and two creates through the queue (kept in localStorage).
    const created = await page.evaluate(
      async ({ email, password, project }) => {
        const { client, queue } = window.app;
        await client.auth.login({ email, password });
        const ids = [queue.create("todos", { project, title: "Water" }), queue.create("todos", { project, title: "Weed" })];
        await queue.flush();
        return { ids, me: (await client.auth.me()).email };
      },
      { email: alice.email, password: alice.password, project: project.id },
    );
    expect(created.me).toBe(alice.email);
    for (const id of created.ids) expect(await changesOf(id)).toEqual(["create"]);

    // Realtime over the browser's WebSocket: a write made from Node arrives.
    await page.evaluate(() => {
      const { rt, events } = window.app;
      rt.subscribe(window.abe.collectionTopic("todos"), (n) => n.type === "event" && events.push(n));
    });
    await expect.poll(() => srv.metric("abe_realtime_subscriptions"), { timeout: 10_000 }).toBe(1);
    const other = await srv.api<{ id: string }>("POST", "/api/collections/todos/records", { project: project.id, title: "From Node" }, alice.accessToken);
    expect(other.status).toBe(201);
    await page.waitForFunction((id) => window.app.events.some((e) => e.id === id && e.op === "create"), other.body.id, { timeout: 10_000 });

    // The API goes away: queue a write, let it fail at least once, reload.
    await srv.kill();
    const offline = await page.evaluate(async (project) => {
      const { queue } = window.app;
      const id = queue.create("todos", { project, title: "Offline" });
      await new Promise((r) => setTimeout(r, 500));
      return { id, pending: queue.pending.length };
    }, project.id);
    expect(offline.pending).toBe(1);
    expect(await changesOf(offline.id)).toEqual([]);
    await page.reload();
    const resumed = await page.evaluate(async (id) => {
      const { queue, cache, client } = window.app;
      await queue.ready;
      return { pending: queue.pending.map((w) => w.recordId), title: cache.get("todos", id)?.title, user: (await client.getAccessToken()) !== null };
    }, offline.id);
    expect(resumed).toEqual({ pending: [offline.id], title: "Offline", user: true });

    // The API comes back: the queue's retry lands the write, once.
    await srv.restart();
    await page.evaluate(() => window.app.queue.flush());
    expect(await changesOf(offline.id)).toEqual(["create"]);
    expect(await srv.sql("SELECT id FROM todos WHERE title = 'Offline'")).toHaveLength(1);
    expect(errors).toEqual([]);
  });
});

// Two tabs of one browser profile against a real abe serve: one WebSocket
// between them, a write in one showing in the other before the server has
// it and landing once, and a takeover when the leading tab closes with a
// write whose answer it never got: the other tab opens the socket, sends
// what the leader held and what it writes meanwhile once, and hears what
// changed while no tab was connected.
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AbeClient } from "../src/client.js";
import { startBrowserWorld, type BrowserWorld } from "./browser.js";
import { createProject, registerUser, type AbeServer, type TestUser } from "./harness.js";

/** A live result as the page records it. */
interface Seen {
  titles: string[];
  source: string;
  pending: number;
}

declare global {
  interface Window {
    abe: typeof import("../src/index.js");
    tabs: { client: AbeClient; seen: Seen[] };
  }
}

/** The page's app: an offline client (tabs share by default) and a live query of todos by title. */
function boot(): void {
  const { abe } = window;
  const url = new URLSearchParams(location.search).get("api") ?? "";
  const client = abe.createClient({ url, tokenStore: new abe.LocalStorageTokenStore(), offline: { backoff: { initial: 100, max: 500 } } });
  const seen: Seen[] = [];
  window.tabs = { client, seen };
}

let world: BrowserWorld;
let srv: AbeServer;
const errors: string[] = [];

beforeAll(async () => {
  world = await startBrowserWorld({ boot });
  srv = world.srv;
});
afterAll(async () => {
  await world?.close();
});

/** Opens a tab that notes the realtime sockets it opens in `sockets`; `setup` runs before it loads. */
async function open(ctx: BrowserContext, sockets: string[], setup?: (page: Page) => Promise<void>): Promise<Page> {
  const page = await ctx.newPage();
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("websocket", (ws) => ws.url().includes("/api/realtime") && sockets.push(ws.url()));
  await setup?.(page);
  await page.goto(world.pageURL());
  return page;
}

const watch = (page: Page) =>
  page.evaluate(() => {
    const { client, seen } = window.tabs;
    client.live("todos", { sort: ["title"] }).subscribe((r) => seen.push({ titles: r.records.map((t) => String(t.title)), source: r.source, pending: r.pending }));
  });

/** Waits until the page's live query has told a result that passes check, and answers it. */
async function until(page: Page, check: string): Promise<Seen> {
  const h = await page.waitForFunction(`(() => { const s = window.tabs.seen.at(-1); return s && (${check}) ? s : undefined })()`, undefined, { timeout: 20_000 });
  return (await h.jsonValue()) as Seen;
}

const create = (page: Page, project: string, title: string) => page.evaluate(({ project, title }) => window.tabs.client.writes.create("todos", { project, title }), { project, title });
const flush = (page: Page) => page.evaluate(() => window.tabs.client.writes.flush());
const changesOf = async (id: string) => (await srv.sql<{ op: string }>("SELECT op FROM abe.changes WHERE record_id = $1 ORDER BY seq", [id])).map((c) => c.op);
const post = (user: TestUser, project: string, title: string) => srv.api("POST", "/api/collections/todos/records", { project, title }, user.accessToken);

describe("tabs sharing one connection in headless Chromium", () => {
  it("holds one WebSocket for two tabs, shows a write in the other tab before the server has it, and takes over when the leader closes", async () => {
    const alice = await registerUser(srv);
    const bob = await registerUser(srv);
    const project = (await createProject(srv, alice)).id;
    expect((await srv.api("PATCH", `/api/collections/projects/records/${project}`, { members: [bob.id] }, alice.accessToken)).status).toBe(200);

    const ctx = await world.browser.newContext();
    const socketsA: string[] = [];
    const socketsB: string[] = [];
    // The first tab's socket goes through a route that can stop passing
    // on what the server sends (as a leader that hangs before it closes).
    let deaf = false;
    const dropped: string[] = [];
    const a = await open(ctx, socketsA, (page) =>
      page.routeWebSocket("**/api/realtime", (ws) => {
        const server = ws.connectToServer();
        server.onMessage((m) => (deaf ? dropped.push(String(m)) : ws.send(m)));
      }),
    );
    await a.evaluate(({ email, password }) => window.tabs.client.auth.login({ email, password }).then(() => undefined), alice);
    await watch(a);
    await until(a, `s.source === "server"`);
    // The second tab finds the session in localStorage: the same user, the same election.
    const b = await open(ctx, socketsB);
    await watch(b);
    await until(b, `s.source === "server"`);

    // A change elsewhere reaches both tabs over the leader's one socket.
    expect((await post(bob, project, "Rake")).status).toBe(201);
    await until(a, `s.titles.includes("Rake")`);
    await until(b, `s.titles.includes("Rake")`);
    expect(socketsA).toHaveLength(1);
    expect(socketsB).toHaveLength(0);

    // The leader's batches wait: a write in either tab shows in the other at once.
    let release = (): void => {};
    const gate = new Promise<void>((r) => (release = r));
    await a.route("**/api/batch", async (route) => {
      await gate;
      await route.continue();
    });
    const water = await create(b, project, "Water");
    const sow = await create(a, project, "Sow");
    let s = await until(a, `s.titles.includes("Water") && s.titles.includes("Sow")`);
    expect(s.pending).toBeGreaterThan(0);
    s = await until(b, `s.titles.includes("Water") && s.titles.includes("Sow")`);
    expect(s.pending).toBeGreaterThan(0);
    expect(await changesOf(water)).toEqual([]);
    release();
    await flush(b);
    await until(b, `s.pending === 0`);
    expect(await changesOf(water)).toEqual(["create"]);
    expect(await changesOf(sow)).toEqual(["create"]);
    await a.unroute("**/api/batch");

    // The leader sends a write, the server commits it, the answer never
    // comes back, and the tab closes.
    let reached = (): void => {};
    const committed = new Promise<void>((r) => (reached = r));
    await a.route("**/api/batch", async (route) => {
      await route.fetch().catch(() => undefined);
      reached();
    });
    const weed = await create(b, project, "Weed");
    await committed;
    expect(await changesOf(weed)).toEqual(["create"]);
    // A change by another user that the leader hears of but never passes
    // on: the other tab has it only by subscribing again since the last
    // seq it saw.
    deaf = true;
    expect((await post(bob, project, "Dig")).status).toBe(201);
    await expect.poll(() => dropped.some((m) => m.includes('"Dig"')), { timeout: 10_000 }).toBe(true);
    await a.close();

    // Meanwhile, a write in the surviving tab.
    const hoe = await create(b, project, "Hoe");
    await until(b, `s.titles.includes("Dig") && s.titles.includes("Hoe")`);
    await flush(b);
    await until(b, `s.pending === 0 && s.source === "server"`);
    expect(socketsB).toHaveLength(1);
    expect(await changesOf(weed)).toEqual(["create"]);
    expect(await changesOf(hoe)).toEqual(["create"]);
    expect(await srv.sql("SELECT id FROM todos WHERE title = 'Weed'")).toHaveLength(1);

    // And after the takeover, over the new socket.
    expect((await post(bob, project, "Mow")).status).toBe(201);
    s = await until(b, `s.titles.includes("Mow")`);
    expect(s.titles).toEqual(["Dig", "Hoe", "Mow", "Rake", "Sow", "Water", "Weed"]);
    expect(socketsA).toHaveLength(1);
    expect(socketsB).toHaveLength(1);
    await ctx.close();
    expect(errors).toEqual([]);
  });

  it("lets go of the subscriptions of a tab that closed without a word, on the leader's socket", async () => {
    const alice = await registerUser(srv);
    const ctx = await world.browser.newContext();
    const sent: { type?: string; id?: string; filter?: string }[] = [];
    const a = await open(ctx, [], async (page) => {
      page.on("websocket", (ws) => ws.on("framesent", (f) => sent.push(JSON.parse(String(f.payload)))));
    });
    await a.evaluate(({ email, password }) => window.tabs.client.auth.login({ email, password }).then(() => undefined), alice);
    await watch(a);
    await until(a, `s.source === "server"`);
    const b = await open(ctx, []);
    await b.evaluate(() => void window.tabs.client.live("todos", { filter: 'title == "only in b"' }).subscribe(() => {}));
    // The leader holds b's query on its socket.
    await expect.poll(() => sent.find((m) => m.type === "subscribe" && m.filter === 'title == "only in b"')?.id, { timeout: 20_000 }).toBeTruthy();
    const held = sent.find((m) => m.filter === 'title == "only in b"')!.id;
    // A tab that goes sends nothing (no unload handler runs, as in a crash); the leader hears of it from its lock.
    await b.close({ runBeforeUnload: false });
    await expect.poll(() => sent.some((m) => m.type === "unsubscribe" && m.id === held), { timeout: 30_000, interval: 200 }).toBe(true);
    // Its own query stays.
    const own = sent.find((m) => m.type === "subscribe" && m.filter === undefined)!.id;
    expect(sent.some((m) => m.type === "unsubscribe" && m.id === own)).toBe(false);
    await ctx.close();
    expect(errors).toEqual([]);
  });
});

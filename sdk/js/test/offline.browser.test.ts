// The offline-first layer in headless Chromium against a real abe serve:
// live queries answered from IndexedDB after a reload with the API gone,
// writes made offline in a tab that then closes landing once from the
// next tab, undo over the same writes, logout deleting the user's store,
// and the localStorage queue of earlier versions moving over.
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AbeClient } from "../src/client.js";
import type { LiveResult } from "../src/offline.js";
import type { RecordData } from "../src/realtime.js";
import { startBrowserWorld, type BrowserWorld } from "./browser.js";
import { createProject, registerUser, type AbeServer, type TestUser } from "./harness.js";

/** A live result as the page records it: titles, not records. */
type Seen = Omit<LiveResult<RecordData>, "records" | "error"> & { titles: string[]; error: string | null };

interface App {
  client: AbeClient;
  seen: Seen[];
  conflicts: { base: unknown; local: unknown; remote: unknown; conflicts: string[] }[];
  watch(): void;
}
declare global {
  interface Window {
    abe: typeof import("../src/index.js");
    live: App;
  }
}

/** The page's app: an offline client and a live query of todos by title. */
function boot(): void {
  const { abe } = window;
  const url = new URLSearchParams(location.search).get("api") ?? "";
  const conflicts: App["conflicts"] = [];
  const client = abe.createClient({
    url,
    tokenStore: new abe.LocalStorageTokenStore(),
    offline: {
      backoff: { initial: 100, max: 500 },
      // Keep what only this tab changed, take the server's value where both did.
      onConflict: ({ base, local, remote }) => {
        const m = abe.mergeFields(base, local, remote);
        conflicts.push({ base, local, remote, conflicts: m.conflicts });
        return m.changes;
      },
    },
  });
  const seen: Seen[] = [];
  const watch = () => {
    client.live("todos", { sort: ["title"] }).subscribe((r) => {
      seen.push({ titles: r.records.map((t) => String(t.title)), source: r.source, pending: r.pending, error: r.error ? r.error.name : null });
    });
  };
  window.live = { client, seen, conflicts, watch };
}

let world: BrowserWorld;
let srv: AbeServer;
let alice: TestUser;
let project: { id: string };
let browser: Browser;
const errors: string[] = [];

beforeAll(async () => {
  world = await startBrowserWorld({ boot });
  ({ srv, browser } = world);
  alice = await registerUser(srv);
  project = await createProject(srv, alice);
});
afterAll(async () => {
  await world?.close();
});

async function open(ctx: BrowserContext): Promise<Page> {
  const page = await ctx.newPage();
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(world.pageURL());
  return page;
}

/** Waits until the page's live query has told a result that passes check, and answers it. */
async function until(page: Page, check: string): Promise<Seen> {
  const h = await page.waitForFunction(`(() => { const s = window.live.seen.at(-1); return s && (${check}) ? s : undefined })()`, undefined, { timeout: 15_000 });
  return (await h.jsonValue()) as Seen;
}

/**
 * Waits until the page's IndexedDB holds a query result of n records, or
 * (queue) n queued writes: the store is written after the cache, and the
 * queue after the write, asynchronously.
 */
async function stored(page: Page, n: number, what: "queries" | "queue" = "queries"): Promise<void> {
  await page.waitForFunction(
    async ({ n, what }) => {
      const name = (await indexedDB.databases()).find((d) => d.name?.startsWith("abe:") && !d.name.endsWith(":anonymous"))?.name;
      if (!name) return false;
      const db = await new Promise<IDBDatabase>((res, rej) => {
        const r = indexedDB.open(name);
        r.onsuccess = () => res(r.result);
        r.onerror = () => rej(r.error);
      });
      try {
        const all = await new Promise<{ ids?: string[]; writes?: unknown[] }[]>((res, rej) => {
          const r = db.transaction(what).objectStore(what).getAll();
          r.onsuccess = () => res(r.result as { ids?: string[]; writes?: unknown[] }[]);
          r.onerror = () => rej(r.error);
        });
        return what === "queries" ? all.some((q) => q.ids?.length === n) : all.reduce((k, slot) => k + (slot.writes?.length ?? 0), 0) === n;
      } finally {
        db.close();
      }
    },
    { n, what },
    { timeout: 15_000 },
  );
}

const changesOf = async (id: string) => (await srv.sql<{ op: string }>("SELECT op FROM abe.changes WHERE record_id = $1 ORDER BY seq", [id])).map((c) => c.op);

async function login(page: Page, user: TestUser): Promise<void> {
  await page.evaluate(({ email, password }) => window.live.client.auth.login({ email, password }).then(() => undefined), { email: user.email, password: user.password });
}

describe("offline-first in headless Chromium", () => {
  it("shows cached data with the API gone, and lands a closed tab's offline writes once from the next tab", async () => {
    const ctx = await browser.newContext();
    const page = await open(ctx);
    await login(page, alice);
    for (const title of ["Rake", "Sow"]) {
      expect((await srv.api("POST", "/api/collections/todos/records", { project: project.id, title }, alice.accessToken)).status).toBe(201);
    }
    await page.evaluate(() => window.live.watch());
    let s = await until(page, `s.source === "server" && s.titles.length === 2`);
    expect(s.titles).toEqual(["Rake", "Sow"]);

    // A local write shows in the live query before the server answers.
    const water = await page.evaluate((project) => window.live.client.writes.create("todos", { project, title: "Water" }), project.id);
    s = await until(page, `s.titles.includes("Water")`);
    expect(s.titles).toEqual(["Rake", "Sow", "Water"]);
    await page.evaluate(() => window.live.client.writes.flush());
    expect(await changesOf(water)).toEqual(["create"]);
    await until(page, `s.pending === 0 && s.titles.length === 3`);

    // A change made elsewhere arrives through realtime.
    await expect.poll(() => srv.metric("abe_realtime_subscriptions"), { timeout: 10_000 }).toBeGreaterThan(0);
    expect((await srv.api("POST", "/api/collections/todos/records", { project: project.id, title: "Dig" }, alice.accessToken)).status).toBe(201);
    s = await until(page, `s.titles.includes("Dig")`);
    expect(s.titles).toEqual(["Dig", "Rake", "Sow", "Water"]);

    // The API goes away; after a reload the data comes from IndexedDB.
    await stored(page, 4);
    await srv.kill();
    await page.reload();
    await page.evaluate(() => window.live.watch());
    s = await until(page, `s.titles.length === 4`);
    expect(s).toMatchObject({ titles: ["Dig", "Rake", "Sow", "Water"], source: "cache" });
    await until(page, `s.error === "NetworkError"`);

    // Offline writes show at once, and undo works on them.
    const ids = await page.evaluate(
      async ({ project, water }) => {
        const { writes, history } = window.live.client;
        const weed = writes.create("todos", { project, title: "Weed" });
        writes.update("todos", water, { title: "Water twice" });
        history.seal();
        writes.update("todos", water, { title: "Water thrice" });
        await history.undo(); // back to "Water twice"
        return { weed };
      },
      { project: project.id, water },
    );
    s = await until(page, `s.titles.includes("Weed") && s.titles.includes("Water twice")`);
    expect(s.titles).toEqual(["Dig", "Rake", "Sow", "Water twice", "Weed"]);
    expect(s.pending).toBeGreaterThanOrEqual(3);

    // The tab closes with its writes unsent (once IndexedDB holds them: see
    // the session note on writes made in a tab's last milliseconds); the API
    // comes back; the next tab sends them, once.
    await stored(page, s.pending, "queue");
    await page.close({ runBeforeUnload: true });
    await srv.restart();
    const next = await open(ctx);
    await next.evaluate(() => window.live.watch());
    await next.evaluate(() => window.live.client.writes.flush());
    s = await until(next, `s.source === "server" && s.pending === 0 && s.titles.includes("Weed")`);
    expect(s.titles).toEqual(["Dig", "Rake", "Sow", "Water twice", "Weed"]);
    expect(await changesOf(ids.weed)).toEqual(["create"]);
    const rows = await srv.sql<{ title: string }>("SELECT title FROM todos WHERE id = $1", [water]);
    expect(rows).toEqual([{ title: "Water twice" }]);
    expect(await srv.sql("SELECT id FROM todos WHERE title = 'Weed'")).toHaveLength(1);
    await ctx.close();
    expect(errors).toEqual([]);
  });

  it("deletes the user's store at logout, so the next user of the computer sees none of it", async () => {
    const bob = await registerUser(srv);
    const own = await createProject(srv, bob, "Bob's");
    expect((await srv.api("POST", "/api/collections/todos/records", { project: own.id, title: "Private" }, bob.accessToken)).status).toBe(201);
    const ctx = await browser.newContext();
    const page = await open(ctx);
    await login(page, bob);
    await page.evaluate(() => window.live.watch());
    await until(page, `s.source === "server" && s.titles.includes("Private")`);
    const name = `abe:${srv.url}:${bob.id}`;
    const dbs = () => page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name));
    await expect.poll(dbs, { timeout: 10_000 }).toContain(name);
    await page.evaluate(() => window.live.client.auth.logout());
    await expect.poll(dbs, { timeout: 10_000 }).not.toContain(name);
    // Signed out, the same live query shows nothing of Bob's.
    await until(page, `!s.titles.includes("Private")`);
    await ctx.close();
  });

  it("moves a queue kept in localStorage by an earlier version over to IndexedDB, losing no write", async () => {
    const ctx = await browser.newContext();
    const page = await open(ctx);
    await login(page, alice);
    const id = "01900000-0000-7000-8000-00000000abcd";
    // What LocalStorageQueueStorage of SDK 0.1 leaves: a tab's slot and the index of tabs.
    await page.evaluate(
      ({ id, project }) => {
        const write = { id: "01900000-0000-7000-8000-00000000ffff", collection: "todos", action: "create", recordId: id, data: { project, title: "Kept" }, base: null };
        localStorage.setItem("abe.queue:oldtab", JSON.stringify([write]));
        localStorage.setItem("abe.queue:tabs", JSON.stringify({ oldtab: Date.now() - 60_000 }));
      },
      { id, project: project.id },
    );
    await page.reload();
    await page.evaluate(() => window.live.client.writes.flush());
    expect(await changesOf(id)).toEqual(["create"]);
    const left = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("abe.queue")));
    expect(left).toEqual([]);
    await ctx.close();
  });

  it("opens a store written by the previous layout: its queued writes land once, its records come again from the server", async () => {
    const carol = await registerUser(srv);
    const own = await createProject(srv, carol, "Carol's");
    const kept = await srv.api<{ id: string }>("POST", "/api/collections/todos/records", { project: own.id, title: "On the server" }, carol.accessToken);
    const ctx = await browser.newContext();
    const page = await open(ctx);
    await login(page, carol);
    const id = "01900000-0000-7000-8000-00000000beef";
    // Layout 1 of the store (SDK 0.2 before buckets): a record per value,
    // a query, and a closed tab's slot holding a create.
    await page.evaluate(
      async ({ name, id, project, kept }) => {
        const db = await new Promise<IDBDatabase>((res, rej) => {
          const r = indexedDB.open(name, 1);
          r.onupgradeneeded = () => {
            for (const s of ["records", "queries", "queue"]) r.result.createObjectStore(s);
          };
          r.onsuccess = () => res(r.result);
          r.onerror = () => rej(r.error);
        });
        const t = db.transaction(["records", "queries", "queue"], "readwrite");
        t.objectStore("records").put({ collection: "todos", id: kept, version: 1, record: { id: kept, version: 1, project, title: "Stale copy" } }, "todos/" + kept);
        t.objectStore("queries").put({ key: "q\ntodos\n\ntitle\n", ids: [kept], at: Date.now() }, "q\ntodos\n\ntitle\n");
        const write = { id: "01900000-0000-7000-8000-00000000fffe", collection: "todos", action: "create", recordId: id, data: { project, title: "Queued by 0.2" }, base: null };
        t.objectStore("queue").put({ tab: "old", writes: [write], seen: Date.now() - 60_000 }, "old");
        await new Promise((res, rej) => {
          t.oncomplete = res;
          t.onerror = () => rej(t.error);
        });
        db.close();
      },
      { name: `abe:${srv.url}:${carol.id}`, id, project: own.id, kept: kept.body.id },
    );
    await page.reload();
    await page.evaluate(() => window.live.watch());
    await page.evaluate(() => window.live.client.writes.flush());
    const s = await until(page, `s.source === "server" && s.pending === 0 && s.titles.length === 2`);
    expect(s.titles).toEqual(["On the server", "Queued by 0.2"]);
    expect(await changesOf(id)).toEqual(["create"]);
    const version = await page.evaluate(async (name) => (await indexedDB.databases()).find((d) => d.name === name)?.version, `abe:${srv.url}:${carol.id}`);
    expect(version).toBe(2);
    // Written in the new layout, the records are there after a reload.
    await stored(page, 2);
    await page.reload();
    await page.evaluate(() => window.live.watch());
    expect((await until(page, `s.titles.length === 2`)).titles).toEqual(["On the server", "Queued by 0.2"]);
    await ctx.close();
  });

  it("meets a conflicting write from another user with onConflict, and shows the merged record", async () => {
    const ctx = await browser.newContext();
    const page = await open(ctx);
    await login(page, alice);
    const made = await srv.api<{ id: string; version: number }>("POST", "/api/collections/todos/records", { project: project.id, title: "Paint", tags: ["shed"] }, alice.accessToken);
    const id = made.body.id;
    await page.evaluate(() => window.live.watch());
    await until(page, `s.source === "server" && s.titles.includes("Paint")`);

    // Offline (the browser's network off, so the write cannot leave before
    // the other one lands), this tab renames the todo and marks it done,
    // conditional on the version it has.
    await ctx.setOffline(true);
    await page.evaluate((id) => {
      window.live.client.writes.update("todos", id, { title: "Paint the shed", done: true }, { ifMatch: true });
    }, id);
    await until(page, `s.titles.includes("Paint the shed")`);
    // Meanwhile another client renames it too, and tags it.
    const other = await srv.api("PATCH", `/api/collections/todos/records/${id}`, { title: "Paint the fence", tags: ["fence"] }, alice.accessToken);
    expect(other.status).toBe(200);

    // Back online: 409, onConflict merges, the merged write lands conditional on the server's version.
    await ctx.setOffline(false);
    await page.evaluate(() => window.live.client.writes.retryNow());
    await page.waitForFunction(() => window.live.conflicts.length === 1, undefined, { timeout: 15_000 });
    await page.evaluate(() => window.live.client.writes.flush());
    const c = await page.evaluate(() => window.live.conflicts[0]!);
    expect(c.conflicts).toEqual(["title"]);
    expect(c.remote).toMatchObject({ title: "Paint the fence", tags: ["fence"] });
    expect(c.local).toMatchObject({ title: "Paint the shed", done: true });
    const rows = await srv.sql<{ title: string; done: boolean; tags: unknown }>("SELECT title, done, tags FROM todos WHERE id = $1", [id]);
    expect(rows).toEqual([{ title: "Paint the fence", done: true, tags: ["fence"] }]);
    await until(page, `s.pending === 0 && s.titles.includes("Paint the fence")`);
    await ctx.close();
  });
});

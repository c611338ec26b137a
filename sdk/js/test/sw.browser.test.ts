// The service worker module (@abe-stack/sdk/sw) in headless Chromium
// against a real abe serve: the app shell precached and served with the
// network off, a closed tab's offline writes replayed by the worker when
// Background Sync fires (DevTools dispatches the event), once, with an
// expired access token refreshed under the page's refresh lock, and the
// update flow (a new version waits, the page applies it, reloads).
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AbeClient } from "../src/client.js";
import type { AbeServiceWorker } from "../src/sw.js";
import { startBrowserWorld, type BrowserWorld } from "./browser.js";
import { createProject, registerUser, type AbeServer, type TestUser } from "./harness.js";

interface App {
  client: AbeClient;
  sw: AbeServiceWorker;
  updates: number;
  /** The Background Sync tags the page registered. */
  armed: string[];
}
declare global {
  interface Window {
    abeSW: typeof import("../src/index.js") & typeof import("../src/sw.js");
    swApp: App;
  }
}

/** The page's app: an offline client whose session lives where the worker reads it, and its worker. */
function boot(): void {
  const abe = window.abeSW;
  const url = new URLSearchParams(location.search).get("api") ?? "";
  const client = abe.createClient({ url, tokenStore: new abe.IndexedDBTokenStore(url), offline: { backoff: { initial: 100, max: 500 } } });
  const app: App = { client, sw: undefined as unknown as AbeServiceWorker, updates: 0, armed: [] };
  const sync = (globalThis as unknown as { SyncManager: { prototype: { register(tag: string): Promise<void> } } }).SyncManager.prototype;
  const register = sync.register;
  sync.register = function (tag) {
    app.armed.push(tag);
    return register.call(this, tag);
  };
  const onRefused = (window as unknown as { onRefused?: (w: unknown[]) => void }).onRefused;
  app.sw = abe.registerAbeServiceWorker(client, "/sw.js", { onUpdate: () => app.updates++, onRefused });
  window.swApp = app;
}

let world: BrowserWorld;
let srv: AbeServer;
let alice: TestUser;
let project: { id: string };
const workers = new Map<string, string>();
let version = "v1";
const errors: string[] = [];

async function bundleWorker(v: string): Promise<string> {
  const out = await build({
    entryPoints: [fileURLToPath(new URL("./sw-worker.ts", import.meta.url))],
    bundle: true,
    format: "iife",
    platform: "browser",
    target: "es2022",
    write: false,
    define: { API: JSON.stringify(srv.url), VERSION: JSON.stringify(v), SCRIPTS: JSON.stringify(world.scripts) },
  });
  return out.outputFiles[0]!.text;
}

beforeAll(async () => {
  world = await startBrowserWorld({
    entry: fileURLToPath(new URL("./sw-page.ts", import.meta.url)),
    boot,
    files: (path) => {
      if (path === "/sw.js") return { type: "text/javascript", body: workers.get(version)! };
      if (path === "/app.css") return { type: "text/css", body: "body { margin: 0 }" };
      if (path === "/blank") return { type: "text/html", body: "<!doctype html><title>blank</title>" };
      return undefined;
    },
  });
  srv = world.srv;
  for (const v of ["v1", "v2"]) workers.set(v, await bundleWorker(v));
  alice = await registerUser(srv);
  project = await createProject(srv, alice);
});
afterAll(async () => {
  await world?.close();
});

async function open(ctx: BrowserContext, path = ""): Promise<Page> {
  const page = await ctx.newPage();
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(path ? world.origin + path : world.pageURL());
  return page;
}

/** Waits until the worker is active and controls the page. */
const controlled = (page: Page) => page.waitForFunction(() => !!navigator.serviceWorker.controller, undefined, { timeout: 15_000 });

/** What the worker precaches, sorted: the page, its scripts (the offline layer's chunk too) and its stylesheet. */
const shell = () => ["/", "/app.css", ...world.scripts].sort();
/** The cache names of the app shell, and the URLs each holds. */
const shellCaches = (page: Page) =>
  page.evaluate(async () => {
    const out: Record<string, string[]> = {};
    for (const k of await caches.keys()) out[k.slice(k.lastIndexOf(":") + 1)] = (await (await caches.open(k)).keys()).map((r) => new URL(r.url).pathname).sort();
    return out;
  });

const changesOf = async (id: string) => (await srv.sql<{ op: string }>("SELECT op FROM abe.changes WHERE record_id = $1 ORDER BY seq", [id])).map((c) => c.op);

/** The queued writes in the page's IndexedDB (every slot of the user's store). */
const queued = (page: Page, name: string) =>
  page.evaluate(async (name) => {
    if (!(await indexedDB.databases()).some((d) => d.name === name)) return 0;
    const db = await new Promise<IDBDatabase>((res, rej) => {
      const r = indexedDB.open(name);
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    try {
      const slots = await new Promise<{ writes: unknown[] }[]>((res, rej) => {
        const r = db.transaction("queue").objectStore("queue").getAll();
        r.onsuccess = () => res(r.result as { writes: unknown[] }[]);
        r.onerror = () => rej(r.error);
      });
      return slots.reduce((n, s) => n + s.writes.length, 0);
    } finally {
      db.close();
    }
  }, name);

/** Reads or changes the session the page and the worker share (the "abe-sw" database). */
function sharedSession(page: Page, change?: { accessToken: string }): Promise<{ accessToken: string; refreshToken: string } | undefined> {
  return page.evaluate(
    async ({ key, change }) => {
      const db = await new Promise<IDBDatabase>((res, rej) => {
        const r = indexedDB.open("abe-sw");
        r.onsuccess = () => res(r.result);
        r.onerror = () => rej(r.error);
      });
      try {
        const t = db.transaction("kv", "readwrite");
        const s = await new Promise<{ accessToken: string; refreshToken: string } | undefined>((res) => {
          const r = t.objectStore("kv").get(key);
          r.onsuccess = () => res(r.result as { accessToken: string; refreshToken: string } | undefined);
        });
        if (s && change) t.objectStore("kv").put({ ...s, ...change }, key);
        await new Promise((res) => (t.oncomplete = res));
        return s;
      } finally {
        db.close();
      }
    },
    { key: `session:${srv.url}`, change },
  );
}

/**
 * Closes the app's tab, takes the browser online, waits until the tab's
 * queue lock is free, and fires the worker's sync event through DevTools
 * (from blank, a page of the origin without the app).
 */
async function closeAndSync(ctx: BrowserContext, page: Page, blank: Page): Promise<void> {
  await page.close({ runBeforeUnload: true });
  // Playwright may still count the closing tab (or the worker it woke)
  // among the targets to take online: try again once it has gone.
  for (let i = 0; ; i++) {
    try {
      await ctx.setOffline(false);
      break;
    } catch (e) {
      if (i > 5 || !String(e).includes("has been closed")) throw e;
    }
  }
  await blank.waitForFunction(async () => !((await navigator.locks.query()).held ?? []).some((l) => l.name?.includes(":queue:")), undefined, { timeout: 15_000 });
  const cdp = await ctx.newCDPSession(blank);
  const registrationId = new Promise<string>((res) =>
    cdp.on("ServiceWorker.workerRegistrationUpdated", (e: { registrations: { registrationId: string; scopeURL: string; isDeleted: boolean }[] }) => {
      const r = e.registrations.find((r) => r.scopeURL === world.origin + "/" && !r.isDeleted);
      if (r) res(r.registrationId);
    }),
  );
  await cdp.send("ServiceWorker.enable");
  // (Chromium may have fired the sync by itself already, once the tab's lock was free: then this one finds nothing left.)
  await cdp.send("ServiceWorker.dispatchSyncEvent", { origin: world.origin, registrationId: await registrationId, tag: "abe-queue", lastChance: false });
  await cdp.detach();
}

async function login(page: Page, user: TestUser): Promise<void> {
  await page.evaluate(({ email, password }) => window.swApp.client.auth.login({ email, password }).then(() => undefined), { email: user.email, password: user.password });
}

describe("the service worker in headless Chromium", () => {
  it("precaches the app shell and serves it with the network off", async () => {
    const ctx = await world.browser.newContext();
    const page = await open(ctx);
    await controlled(page);
    await expect.poll(() => shellCaches(page), { timeout: 15_000 }).toEqual({ v1: shell() });

    await ctx.setOffline(true);
    const res = await page.reload();
    expect(res?.fromServiceWorker()).toBe(true);
    // The script ran from the cache: the app is there, and asks the (unreachable) API.
    expect(await page.evaluate(() => typeof window.swApp.client.writes.create)).toBe("function");
    const css = await page.evaluate(() => fetch("/app.css").then((r) => r.text()));
    expect(css).toContain("margin");
    // Nothing of the API was cached.
    expect(await shellCaches(page)).toEqual({ v1: shell() });
    await ctx.close();
    expect(errors).toEqual([]);
  });

  it("replays a closed tab's offline writes when Background Sync fires, once, refreshing the expired token", async () => {
    const ctx = await world.browser.newContext();
    const page = await open(ctx);
    await controlled(page);
    await login(page, alice);
    const made = await srv.api<{ id: string; version: number }>("POST", "/api/collections/todos/records", { project: project.id, title: "Mulch", tags: [] }, alice.accessToken);
    expect(made.status).toBe(201);
    const store = `abe:${srv.url}:${alice.id}`;
    // A page of the origin without the app: it takes no slot, and drives DevTools.
    const blank = await open(ctx, "/blank");

    // Offline, the tab queues a create, a conditional rename and a list
    // insert (one batch), and arms the sync tag.
    await ctx.setOffline(true);
    const created = await page.evaluate(
      ({ project, id, version }) => {
        const { writes } = window.swApp.client;
        const created = writes.create("todos", { project, title: "Compost" });
        writes.update("todos", id, { title: "Mulch the beds" }, { ifMatch: version });
        writes.applyOps("todos", id, [window.abeSW.listInsert(["tags"], "sw")]);
        return created;
      },
      { project: project.id, id: made.body.id, version: made.body.version },
    );
    await expect.poll(() => queued(page, store), { timeout: 15_000 }).toBe(3);
    await page.waitForFunction(() => window.swApp.armed.includes("abe-queue"), undefined, { timeout: 15_000 });
    const before = await sharedSession(page);
    expect(before?.refreshToken).toBeTruthy();
    // The access token expires (here: becomes garbage) before the worker
    // runs, however soon the browser fires the sync: it must refresh.
    await sharedSession(page, { accessToken: "expired" });

    await closeAndSync(ctx, page, blank);
    await expect.poll(() => queued(blank, store), { timeout: 15_000 }).toBe(0);
    expect(await changesOf(created)).toEqual(["create"]);
    expect(await changesOf(made.body.id)).toEqual(["create", "update", "update"]);
    const rows = await srv.sql<{ title: string; tags: unknown }>("SELECT title, tags FROM todos WHERE id = $1", [made.body.id]);
    expect(rows).toEqual([{ title: "Mulch the beds", tags: ["sw"] }]);

    // The worker rotated the refresh token where the page reads it: the
    // next tab goes on with it (no reuse, no logout), and sends nothing again.
    const after = await sharedSession(blank);
    expect(after?.refreshToken).not.toBe(before?.refreshToken);
    expect(after?.accessToken).not.toBe("expired");
    const next = await open(ctx);
    await next.evaluate(() => window.swApp.client.writes.flush());
    expect(await next.evaluate(() => window.swApp.client.auth.me().then((u) => u.id))).toBe(alice.id);
    expect(await next.evaluate(() => window.swApp.client.auth.refresh().then((s) => !!s))).toBe(true);
    expect(await changesOf(created)).toEqual(["create"]);
    expect(await srv.sql("SELECT id FROM abe.security_events WHERE type = 'token_reuse'")).toEqual([]);
    await ctx.close();
    expect(errors).toEqual([]);
  });

  it("drops a write the server refuses during the replay, sends the rest, and tells the next page", async () => {
    const ctx = await world.browser.newContext();
    const page = await open(ctx);
    await controlled(page);
    await login(page, alice);
    const blank = await open(ctx, "/blank");
    const store = `abe:${srv.url}:${alice.id}`;
    await ctx.setOffline(true);
    const ids = await page.evaluate((project) => {
      const { writes } = window.swApp.client;
      // An empty title breaks the todo's min length: 422.
      return { bad: writes.create("todos", { project, title: "" }), good: writes.create("todos", { project, title: "Prune" }) };
    }, project.id);
    await expect.poll(() => queued(page, store), { timeout: 15_000 }).toBe(2);
    await closeAndSync(ctx, page, blank);
    await expect.poll(() => queued(blank, store), { timeout: 15_000 }).toBe(0);
    expect(await changesOf(ids.good)).toEqual(["create"]);
    expect(await changesOf(ids.bad)).toEqual([]);

    // The next page is told.
    const next = await ctx.newPage();
    await next.addInitScript(() => {
      (window as unknown as { onRefused: (w: unknown[]) => void }).onRefused = (w) => ((window as unknown as { told: unknown[] }).told ??= []).push(...w);
    });
    await next.goto(world.pageURL());
    const told = await next.waitForFunction(() => (window as unknown as { told?: { write: { recordId: string }; status: number }[] }).told?.map((t) => [t.write.recordId, t.status]), undefined, { timeout: 15_000 });
    expect(await told.jsonValue()).toEqual([[ids.bad, 422]]);
    await ctx.close();
    expect(errors).toEqual([]);
  });

  it("lets a new version wait until the page applies it, then reloads under it", async () => {
    version = "v1";
    const ctx = await world.browser.newContext();
    const page = await open(ctx);
    await controlled(page);
    const running = () =>
      page.evaluate(
        () =>
          new Promise<string>((res) => {
            const ch = new MessageChannel();
            ch.port1.onmessage = (e) => res(e.data as string);
            navigator.serviceWorker.controller!.postMessage("version", [ch.port2]);
          }),
      );
    expect(await running()).toBe("v1");

    version = "v2";
    await page.evaluate(() => window.swApp.sw.update());
    await page.waitForFunction(() => window.swApp.updates === 1 && window.swApp.sw.updateWaiting, undefined, { timeout: 15_000 });
    // It waits: the old version still controls, its cache is still there.
    expect(await running()).toBe("v1");
    expect(Object.keys(await shellCaches(page)).sort()).toEqual(["v1", "v2"]);

    const reloaded = page.waitForEvent("load");
    await page.evaluate(() => window.swApp.sw.applyUpdate());
    await reloaded;
    await controlled(page);
    expect(await running()).toBe("v2");
    await expect.poll(() => shellCaches(page), { timeout: 15_000 }).toEqual({ v2: shell() });
    await ctx.close();
    version = "v1";
    expect(errors).toEqual([]);
  });
});

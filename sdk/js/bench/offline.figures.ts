// Figures of the offline layer in headless Chromium against a real abe
// serve (issue 15): a live query's cold start from IndexedDB, a local
// write reaching live queries, and a replay of queued writes. Run with
// `npm run figures`; figures go into bench/README.md by hand. Not
// part of `npm test`: figures are never asserted.
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, it } from "vitest";
import type { AbeClient } from "../src/client.js";
import { startBrowserWorld, type BrowserWorld } from "../test/browser.js";
import { createProject, registerUser, type AbeServer, type TestUser } from "../test/harness.js";
const RECORDS = 5000;
const ROUNDS = 5;

declare global {
  interface Window {
    abe: typeof import("../src/index.js");
    bench: { client: AbeClient; t0: number; cold?: { cache: number; server: number } };
  }
}

function boot(): void {
  const { abe } = window;
  const params = new URLSearchParams(location.search);
  const t0 = performance.now();
  const client = abe.createClient({ url: params.get("api") ?? "", tokenStore: new abe.LocalStorageTokenStore(), offline: true });
  window.bench = { client, t0 };
  // A cold start as an app makes it: the live query right after createClient.
  const n = Number(params.get("cold") ?? 0);
  if (!n) return;
  const cold = { cache: -1, server: -1 };
  client.live("todos", { sort: ["title"], limit: n }).subscribe((r) => {
    if (r.records.length !== n) return;
    if (r.source === "cache" && cold.cache < 0) cold.cache = performance.now() - t0;
    if (r.source === "server" && cold.server < 0) {
      cold.server = performance.now() - t0;
      window.bench.cold = cold;
    }
  });
}

let world: BrowserWorld;
let srv: AbeServer;
let alice: TestUser;
let project: { id: string };
let browser: Browser;

beforeAll(async () => {
  world = await startBrowserWorld({ boot, esbuild: { minify: true } });
  ({ srv, browser } = world);
  alice = await registerUser(srv);
  project = await createProject(srv, alice);
  await srv.sql(`INSERT INTO todos (project, title) SELECT $1, 'todo ' || lpad(g::text, 5, '0') FROM generate_series(1, ${RECORDS}) g`, [project.id]);
}, 300_000);
afterAll(async () => {
  await world?.close();
});

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return `median ${s[Math.floor(s.length / 2)]!.toFixed(1)} ms, min ${s[0]!.toFixed(1)}, max ${s.at(-1)!.toFixed(1)} (n=${s.length})`;
};

async function open(page: Page): Promise<void> {
  await page.goto(world.pageURL());
}

describe("offline layer figures", () => {
  it("measures", async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await open(page);
    await page.evaluate(({ email, password }) => window.bench.client.auth.login({ email, password }).then(() => undefined), { email: alice.email, password: alice.password });
    // Fill the store: the query from the server, written through to IndexedDB.
    await page.evaluate(
      (n) =>
        new Promise<void>((done) => {
          window.bench.client.live("todos", { sort: ["title"], limit: n }).subscribe((r) => r.source === "server" && r.records.length === n && done());
        }),
      RECORDS,
    );
    await page.evaluate(() => new Promise((r) => setTimeout(r, 1000))); // the write-through is async
    const cold: number[] = [];
    const server: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      await page.goto(world.pageURL({ cold: String(RECORDS) }));
      const t = (await (await page.waitForFunction(() => window.bench.cold, undefined, { timeout: 60_000 })).jsonValue()) as { cache: number; server: number };
      cold.push(t.cache);
      server.push(t.server);
    }
    console.log(`cold start, ${RECORDS} records from IndexedDB, from createClient (the store opened, the session read, the query read, the cache filled): ${stats(cold)}`);
    console.log(`the same query confirmed by the server: ${stats(server)}`);

    // A local write reaching a live query of 1,000 records (and the 5,000 one).
    const write = await page.evaluate(async () => {
      const { client } = window.bench;
      const small = client.live("todos", { sort: ["title"], limit: 1000 });
      await new Promise<void>((done) => small.subscribe((r) => r.source === "server" && r.records.length === 1000 && done()));
      const ids = small.current.records.map((r) => r.id);
      const out: number[] = [];
      for (let i = 0; i < 50; i++) {
        const id = ids[i]!;
        const t0 = performance.now();
        await new Promise<void>((done) => {
          const off = small.subscribe((r) => {
            if (r.records.some((x) => x.id === id && x.title === "edited " + i)) {
              out.push(performance.now() - t0);
              queueMicrotask(off);
              done();
            }
          });
          client.writes.update("todos", id, { title: "edited " + i });
        });
      }
      await client.writes.flush();
      return out;
    });
    console.log(`a local write reaching a live query of 1,000 records: ${stats(write)}`);

    // 1,000 writes queued with the API down, replayed when it comes back.
    await srv.kill();
    await page.evaluate((project) => {
      for (let i = 0; i < 1000; i++) window.bench.client.writes.create("todos", { project, title: "queued " + i });
    }, project.id);
    await srv.restart();
    const replay = await page.evaluate(async () => {
      const t0 = performance.now();
      window.bench.client.writes.retryNow();
      await window.bench.client.writes.flush();
      return performance.now() - t0;
    });
    const landed = await srv.sql<{ n: string }>("SELECT count(*) AS n FROM todos WHERE title LIKE 'queued %'");
    console.log(`1,000 queued creates replayed: ${replay.toFixed(0)} ms, ${landed[0]!.n} landed`);
    await ctx.close();
  }, 600_000);

  it("reads 5,000 records in each store layout, interleaved (a ratio that holds on a busy machine)", async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await open(page);
    const t = await page.evaluate(async (n) => {
      const { abe } = window;
      const records = Array.from({ length: n }, (_, i) => {
        const id = "01900000-0000-7000-8000-" + String(i).padStart(12, "0");
        const record = { id, version: 1, created_at: "2026-12-02T10:00:00.000000Z", updated_at: "2026-12-02T10:00:00.000000Z", project: "01900000-0000-7000-8000-00000000ffff", title: "todo " + String(i).padStart(5, "0"), done: false, tags: null, note: "" };
        return { collection: "todos", id, version: 1, record };
      });
      const ids = records.map((r) => r.id);
      // Layout 1 (one value per record), as the store kept them before buckets.
      const one = await new Promise<IDBDatabase>((res, rej) => {
        const r = indexedDB.open("layout-1", 1);
        r.onupgradeneeded = () => r.result.createObjectStore("records");
        r.onsuccess = () => res(r.result);
        r.onerror = () => rej(r.error);
      });
      await new Promise((res, rej) => {
        const tx = one.transaction("records", "readwrite");
        for (const r of records) tx.objectStore("records").put(r, "todos/" + r.id);
        tx.oncomplete = res;
        tx.onerror = () => rej(tx.error);
      });
      const readOne = () =>
        new Promise<number>((res, rej) => {
          const q = one.transaction("records").objectStore("records").getAll(IDBKeyRange.bound("todos/", "todos/\uffff"));
          q.onsuccess = () => {
            const by = new Map((q.result as { id: string }[]).map((r) => [r.id, r]));
            res(ids.filter((id) => by.has(id)).length);
          };
          q.onerror = () => rej(q.error);
        });
      // Layout 2: the store as it is.
      const two = await abe.IndexedDBStore.open("layout-2");
      await two.write(records, []);
      const a: number[] = [];
      const b: number[] = [];
      for (let i = 0; i < 9; i++) {
        let t0 = performance.now();
        if ((await readOne()) !== n) throw new Error("layout 1 lost records");
        a.push(performance.now() - t0);
        t0 = performance.now();
        if ((await two.readRecords("todos", ids)).length !== n) throw new Error("layout 2 lost records");
        b.push(performance.now() - t0);
      }
      return { a, b };
    }, RECORDS);
    const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
    console.log(`5,000 records read, layout 1 (a value per record): ${stats(t.a)}`);
    console.log(`5,000 records read, layout 2 (32 JSON buckets): ${stats(t.b)}`);
    console.log(`layout 2 / layout 1, medians: ${(med(t.b) / med(t.a)).toFixed(2)}`);
    await ctx.close();
  }, 600_000);
});

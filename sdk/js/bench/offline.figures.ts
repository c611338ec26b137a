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
    bench: { client: AbeClient; t0: number };
  }
}

function boot(): void {
  const { abe } = window;
  const url = new URLSearchParams(location.search).get("api") ?? "";
  window.bench = { client: abe.createClient({ url, tokenStore: new abe.LocalStorageTokenStore(), offline: true }), t0: performance.now() };
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
    const fromLive: number[] = [];
    const server: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      await open(page);
      const t = await page.evaluate(
        (n) =>
          new Promise<{ cache: number; live: number; server: number }>((done) => {
            const out = { cache: -1, live: -1, server: -1 };
            const t1 = performance.now();
            window.bench.client.live("todos", { sort: ["title"], limit: n }).subscribe((r) => {
              const now = performance.now();
              if (r.records.length !== n) return;
              if (r.source === "cache" && out.cache < 0) {
                out.cache = now - window.bench.t0;
                out.live = now - t1;
              }
              if (r.source === "server" && out.server < 0) {
                out.server = now - window.bench.t0;
                done(out);
              }
            });
          }),
        RECORDS,
      );
      cold.push(t.cache);
      fromLive.push(t.live);
      server.push(t.server);
    }
    console.log(`cold start, ${RECORDS} records from IndexedDB, from the script's start: ${stats(cold)}`);
    console.log(`the same, from the abe.live() call: ${stats(fromLive)}`);
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
});

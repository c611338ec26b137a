// Leader election in headless Chromium with real Web Locks and
// BroadcastChannel: three tabs of one profile, one leader; its tab closes,
// another leads, and a follower's request reaches the new leader.
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Leader, TabBus, TabRequest } from "../src/leader.js";

const CHROMIUM = "/usr/bin/chromium";

declare global {
  interface Window {
    leader: typeof import("../src/leader.js");
    tab: { el: Leader; bus: TabBus; took: string[]; ready: boolean };
  }
}

/** The page: joins the election "app", serves requests by noting the write ids it took. */
function boot(): void {
  const { electLeader, createTabBus } = window.leader;
  const el = electLeader("app");
  const bus = createTabBus("app", el);
  const tab = { el, bus, took: [] as string[], ready: false };
  bus.serve((req: TabRequest) => {
    if (req.type === "write") tab.took.push(req.write.id);
  });
  void el.ready.then(() => (tab.ready = true));
  window.tab = tab;
}

let browser: Browser;
let web: Server;
let origin = "";

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`the browser tests need Chromium at ${CHROMIUM}: apt-get install chromium`);
  const bundle = await build({
    entryPoints: [fileURLToPath(new URL("../src/leader.ts", import.meta.url))],
    bundle: true,
    format: "iife",
    globalName: "leader",
    platform: "browser",
    target: "es2022",
    write: false,
  });
  const js = bundle.outputFiles[0]!.text;
  const html = `<!doctype html><script src="/leader.js"></script><script>(${boot.toString()})()</script>`;
  web = createServer((req, res) => {
    const isJS = req.url === "/leader.js";
    res.writeHead(200, { "Content-Type": isJS ? "text/javascript" : "text/html" }).end(isJS ? js : html);
  });
  await new Promise<void>((res) => web.listen(0, "127.0.0.1", res));
  origin = `http://127.0.0.1:${(web.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
});
afterAll(async () => {
  await browser?.close();
  web?.close();
});

const isLeader = (p: Page) => p.evaluate(() => window.tab.el.isLeader);
const leaders = async (pages: Page[]) => (await Promise.all(pages.map(isLeader))).filter(Boolean).length;

describe("leader election in headless Chromium", () => {
  it("elects one of three tabs, hands over when its tab closes, and routes a follower's request to the new leader", async () => {
    const ctx = await browser.newContext();
    const errors: string[] = [];
    const pages: Page[] = [];
    for (let i = 0; i < 3; i++) {
      const p = await ctx.newPage();
      p.on("pageerror", (e) => errors.push(String(e)));
      await p.goto(origin);
      await p.waitForFunction(() => window.tab?.ready);
      pages.push(p);
    }
    expect(await pages[0]!.evaluate(() => typeof navigator.locks?.request)).toBe("function");
    // The first tab took the lock; the others know at once that they follow.
    expect(await Promise.all(pages.map(isLeader))).toEqual([true, false, false]);

    await pages[0]!.close();
    const rest = pages.slice(1);
    await expect.poll(() => leaders(rest), { timeout: 10_000 }).toBe(1);
    const [lead, follower] = (await isLeader(rest[0]!)) ? [rest[0]!, rest[1]!] : [rest[1]!, rest[0]!];

    await follower.evaluate(() =>
      window.tab.bus.request({ type: "write", write: { id: "w1", collection: "todos", action: "create", recordId: "r1", data: { title: "Rake" } } }),
    );
    expect(await lead.evaluate(() => window.tab.took)).toEqual(["w1"]);
    expect(await follower.evaluate(() => window.tab.took)).toEqual([]);
    expect(await leaders(rest)).toBe(1);
    await ctx.close();
    expect(errors).toEqual([]);
  });
});

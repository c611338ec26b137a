// The todo example as two people use it, in headless Chromium (Debian's,
// through playwright-core) against a real `abe serve` with the example's
// own abe.yaml, which hosts the built app (web/dist) at its origin.
// Run by the SDK's vitest (sdk/js/vitest.config.ts includes the examples'
// tests), after `npm ci && npm run build` here (scripts/test does both).
//
// Screenshots of the main screens, 1280 and 390 px wide, go to
// web/test-artifacts/ (gitignored).
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerUser, startServer, totp, type AbeServer } from "../../../../sdk/js/test/harness.js";

const CHROMIUM = "/usr/bin/chromium";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"];
const DIST = fileURLToPath(new URL("../dist", import.meta.url));
const SHOTS = fileURLToPath(new URL("../test-artifacts", import.meta.url));
const WAIT = { timeout: 20_000, interval: 100 };

let srv: AbeServer;
let browser: Browser;
let ctxA: BrowserContext;
let ctxB: BrowserContext;
let a: Page;
let b: Page;
const pw = `Tr0ub4dor-${Math.random().toString(36).slice(2)}-horse`;
const alice = { name: "Alice", email: `alice-${Date.now()}@example.com` };
const bob = { name: "Bob", email: `bob-${Date.now()}@example.com` };
let projectId = "";

async function shot(page: Page, name: string): Promise<void> {
  const size = page.viewportSize() ?? { width: 1280, height: 800 };
  await page.screenshot({ path: `${SHOTS}/${name}-1280.png`, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${SHOTS}/${name}-390.png`, fullPage: true });
  await page.setViewportSize(size);
}

async function signUp(page: Page, who: { name: string; email: string }): Promise<void> {
  await page.getByRole("tab", { name: "Sign up" }).click();
  await page.getByLabel("Name").fill(who.name);
  await page.getByLabel("Email").fill(who.email);
  await page.getByLabel("Password").fill(pw);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByRole("heading", { name: "Projects" }).waitFor();
}

const row = (page: Page, title: string) => page.locator("li.todo").filter({ has: page.locator(".title", { hasText: new RegExp(`^${title}$`) }) });
const titles = (page: Page) => page.locator("li.todo .title").allTextContents();
const status = (page: Page) => page.getByRole("status");

async function addTodo(page: Page, title: string): Promise<void> {
  await page.getByLabel("New todo").fill(title);
  await page.getByRole("button", { name: "Add", exact: true }).click();
  await row(page, title).waitFor();
}

async function editTitle(page: Page, from: string, to: string): Promise<void> {
  await row(page, from).locator(".title").click();
  const input = page.getByLabel("Title", { exact: true });
  await input.fill(to);
  await input.press("Enter");
  await row(page, to).waitFor();
}

async function saved(page: Page): Promise<void> {
  await expect.poll(() => status(page).textContent(), WAIT).toBe("All changes saved");
}

async function serverTodo(title: string): Promise<{ id: string; title: string; done: boolean } | undefined> {
  const rows = await srv.sql<{ id: string; title: string; done: boolean }>("SELECT id::text, title, done FROM todos WHERE project = $1 AND title = $2", [projectId, title]);
  return rows[0];
}

async function serverTitles(): Promise<string[]> {
  const [p] = await srv.sql<{ order: string[] }>(`SELECT "order" FROM projects WHERE id = $1`, [projectId]);
  const todos = await srv.sql<{ id: string; title: string }>("SELECT id::text, title FROM todos WHERE project = $1", [projectId]);
  const by = new Map(todos.map((t) => [t.id, t.title]));
  return (p?.order ?? []).filter((id) => by.has(id)).map((id) => by.get(id)!);
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`the browser tests need Chromium at ${CHROMIUM}: apt-get install chromium`);
  if (!existsSync(`${DIST}/index.html`)) throw new Error(`build the app first: cd examples/todo/web && npm ci && npm run build (no ${DIST}/index.html)`);
  await mkdir(SHOTS, { recursive: true });
  // abe.yaml hosts ${TODO_WEB_DIST}; the harness passes its environment on to abe serve.
  process.env.TODO_WEB_DIST = DIST;
  try {
    srv = await startServer();
  } finally {
    delete process.env.TODO_WEB_DIST;
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
  ctxA = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  ctxB = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  a = await ctxA.newPage();
  b = await ctxB.newPage();
  for (const p of [a, b]) watchBreakage(p);
  // Everything the API and realtime told Bob's pages, to look for what his rules hide.
  ctxB.on("response", (r) => {
    if (new URL(r.url()).pathname.startsWith("/api/")) bobSaw.push(r.text().catch(() => ""));
  });
  const frames = (p: Page) => p.on("websocket", (ws) => ws.on("framereceived", (f) => bobSaw.push(Promise.resolve(String(f.payload)))));
  frames(b);
  ctxB.on("page", frames);
}, 120_000);

/** The bodies of every API answer and realtime frame Bob's pages received. */
const bobSaw: Promise<string>[] = [];

/** Script errors and what the page's CSP refused, in every page: a page that breaks so fails the run. */
const broken: string[] = [];
function watchBreakage(page: Page): void {
  page.on("pageerror", (e) => broken.push(`page error: ${String(e)}`));
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Refused to/.test(m.text())) broken.push(`CSP: ${m.text()}`);
  });
}

afterAll(async () => {
  await browser?.close();
  await srv?.stop();
});

describe("the todo example", { timeout: 120_000 }, () => {
  it("serves the app at / and signs two people up", async () => {
    await a.goto(srv.url + "/");
    await a.getByRole("tab", { name: "Log in" }).waitFor();
    await shot(a, "sign-in");
    await signUp(a, alice);
    await b.goto(srv.url + "/");
    await signUp(b, bob);
    await saved(a);
  });

  it("makes a project with todos and invites Bob, who joins while Alice's app is closed", async () => {
    await a.getByLabel("New project name").fill("Garden");
    await a.getByRole("button", { name: "Create" }).click();
    await a.getByRole("link", { name: /Garden/ }).click();
    await a.getByRole("heading", { name: "Garden" }).waitFor();
    projectId = new URL(a.url()).pathname.split("/")[2]!;
    for (const t of ["Water the plants", "Weed the beds", "Buy seeds"]) await addTodo(a, t);
    await a.getByLabel("Invite by email").fill(bob.email);
    await a.getByRole("button", { name: "Invite" }).click();
    await a.getByRole("list", { name: "Invited" }).getByText(bob.email).waitFor();
    await saved(a);
    await shot(a, "invited");

    // Alice closes the app: Bob joins without her.
    await a.goto("about:blank");
    await b.getByText("You are invited to").waitFor();
    await shot(b, "invitation");
    await b.getByRole("button", { name: "Accept" }).click();
    await b.getByRole("link", { name: /Garden/ }).click();
    await b.getByRole("heading", { name: "Garden" }).waitFor();
    await expect.poll(() => titles(b), WAIT).toEqual(["Water the plants", "Weed the beds", "Buy seeds"]);
    const [joined] = await srv.sql<{ members: string[]; invited: unknown[] }>("SELECT members::text[], invited FROM projects WHERE id = $1", [projectId]);
    expect(joined?.members.length).toBe(1);
    expect(joined?.invited).toEqual([]);
    expect((await srv.sql("SELECT 1 FROM invites WHERE project = $1", [projectId])).length).toBe(0);
    // Alice comes back to Bob among the people and no invitation left.
    await a.goto(`${srv.url}/p/${projectId}`);
    await a.getByRole("heading", { name: "Garden" }).waitFor();
    await a.getByRole("button", { name: "Remove Bob" }).waitFor();
    await expect.poll(() => a.getByRole("list", { name: "Invited" }).count(), WAIT).toBe(0);
    // The owner's note is hidden from members: not in the page, not in the server's answers.
    await row(a, "Buy seeds").getByRole("button", { name: /Add a note/ }).click();
    await a.getByRole("textbox", { name: "Note" }).fill("the heirloom ones");
    await a.getByRole("textbox", { name: "Note" }).press("Enter");
    await row(a, "Buy seeds").getByText("the heirloom ones").waitFor();
    await saved(a);
    expect((await b.locator("body").textContent())?.includes("heirloom")).toBe(false);
    await shot(a, "project-owner");
    await b.goto(srv.url + "/");
    await b.getByRole("link", { name: /Garden/ }).waitFor();
    await shot(b, "projects");
    await b.getByRole("link", { name: /Garden/ }).click();
    await b.getByRole("heading", { name: "Garden" }).waitFor();
  });

  it("shows an edit of one window in the other at once", async () => {
    await row(a, "Buy seeds").getByRole("checkbox").check();
    await expect.poll(() => row(b, "Buy seeds").getByRole("checkbox").isChecked(), WAIT).toBe(true);
    await addTodo(b, "Rake the leaves");
    await expect.poll(() => titles(a), WAIT).toEqual(["Water the plants", "Weed the beds", "Buy seeds", "Rake the leaves"]);
    await saved(a);
    await saved(b);
  });

  it("merges offline edits that met another's: the merge view, theirs for one field and mine for another, then a conditional write", async () => {
    await ctxA.setOffline(true);
    await expect.poll(() => status(a).textContent(), WAIT).toMatch(/^Offline/);
    await editTitle(a, "Water the plants", "Water the roses");
    await row(a, "Water the roses").getByRole("checkbox").check();
    await row(a, "Rake the leaves").getByRole("button", { name: /Move up/ }).click(); // reorder offline
    await expect.poll(() => titles(a), WAIT).toEqual(["Water the roses", "Weed the beds", "Rake the leaves", "Buy seeds"]);
    await expect.poll(() => status(a).textContent(), WAIT).toBe("Offline · 3 changes not sent yet");
    await shot(a, "offline");

    await editTitle(b, "Water the plants", "Water the tomatoes");
    await expect.poll(async () => (await serverTodo("Water the tomatoes"))?.title, WAIT).toBe("Water the tomatoes");

    await ctxA.setOffline(false);
    const dialog = a.getByRole("dialog");
    await dialog.waitFor();
    const title = dialog.getByRole("group", { name: "Title" });
    await title.getByText("Water the plants").waitFor(); // base
    await title.getByText("Water the roses").waitFor(); // mine
    await title.getByText("Water the tomatoes").waitFor(); // theirs
    await dialog.getByText("Your other changes (Done) are kept either way.").waitFor();
    expect(await dialog.getByRole("group").count()).toBe(1); // done changed on one side only: no question
    await shot(a, "merge");
    await title.getByRole("radio", { name: /Theirs/ }).check();
    await dialog.getByRole("button", { name: "Save" }).click();
    await dialog.waitFor({ state: "detached" });

    const want = ["Water the tomatoes", "Weed the beds", "Rake the leaves", "Buy seeds"];
    await expect.poll(() => titles(a), WAIT).toEqual(want);
    await expect.poll(() => titles(b), WAIT).toEqual(want);
    await expect.poll(() => row(b, "Water the tomatoes").getByRole("checkbox").isChecked(), WAIT).toBe(true);
    expect(await row(a, "Water the tomatoes").getByRole("checkbox").isChecked()).toBe(true);
    await saved(a);
    await expect.poll(serverTitles, WAIT).toEqual(want);
    expect(await serverTodo("Water the tomatoes")).toMatchObject({ title: "Water the tomatoes", done: true });
    expect(await srv.sql("SELECT title FROM todos WHERE project = $1 AND title LIKE 'Water%'", [projectId])).toHaveLength(1);
  });

  it("undoes the last step with Ctrl+Z and redoes it with Ctrl+Shift+Z, in the page and on the server", async () => {
    // A step of its own: edits closer than the history's batch window (500 ms) undo together.
    await new Promise((r) => setTimeout(r, 600));
    await editTitle(a, "Weed the beds", "Weed the paths");
    await expect.poll(async () => (await serverTodo("Weed the paths"))?.title, WAIT).toBe("Weed the paths");
    await a.locator("body").click({ position: { x: 5, y: 300 } });
    await a.keyboard.press("Control+z");
    await row(a, "Weed the beds").waitFor();
    await expect.poll(async () => (await serverTodo("Weed the beds"))?.title, WAIT).toBe("Weed the beds");
    await expect.poll(() => titles(b), WAIT).toContain("Weed the beds");
    await a.keyboard.press("Control+Shift+z");
    await row(a, "Weed the paths").waitFor();
    await expect.poll(async () => (await serverTodo("Weed the paths"))?.title, WAIT).toBe("Weed the paths");
    await expect.poll(() => titles(b), WAIT).toContain("Weed the paths");
  });

  it("tells a member in plain words that only the owner deletes todos", async () => {
    await row(b, "Rake the leaves").getByRole("button", { name: /Delete/ }).click();
    await b.getByRole("alert").getByText("Only the project's owner can delete todos.").waitFor();
    await row(b, "Rake the leaves").waitFor(); // rolled back
    expect(await serverTodo("Rake the leaves")).toBeDefined();
    await shot(b, "refused");
  });

  it("shows the data after a reload offline", async () => {
    await saved(b);
    await b.evaluate(() => navigator.serviceWorker.ready.then(() => undefined));
    await ctxB.setOffline(true);
    await b.reload();
    await b.getByRole("heading", { name: "Garden" }).waitFor();
    await expect.poll(() => titles(b), WAIT).toEqual(["Water the tomatoes", "Weed the paths", "Rake the leaves", "Buy seeds"]);
    await expect.poll(() => status(b).textContent(), WAIT).toMatch(/^Offline/);
    await ctxB.setOffline(false);
  });

  it("asks for the authenticator's code when the account has MFA", async () => {
    const carol = await registerUser(srv);
    const setup = await srv.api<{ secret: string }>("POST", "/api/auth/mfa/totp/setup", {}, carol.accessToken);
    expect(setup.status).toBe(200);
    const step = Math.floor(Date.now() / 30_000);
    expect((await srv.api("POST", "/api/auth/mfa/totp/enable", { code: totp(setup.body.secret, step) }, carol.accessToken)).status).toBe(200);
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const c = await ctx.newPage();
      await c.goto(srv.url + "/");
      await c.getByLabel("Email").fill(carol.email);
      await c.getByLabel("Password").fill(carol.password);
      await c.getByRole("button", { name: "Log in" }).click();
      await c.getByRole("heading", { name: "Two-step verification" }).waitFor();
      await shot(c, "mfa");
      await c.getByLabel("Code").fill(totp(setup.body.secret, step + 1));
      await c.getByRole("button", { name: "Verify" }).click();
      await c.getByRole("heading", { name: "Projects" }).waitFor();
    } finally {
      await ctx.close();
    }
  });

  it("never sent Bob the owner's note, in any answer or realtime event", async () => {
    const bodies = await Promise.all(bobSaw);
    // He did receive the todo the note is on, live and listed: the check looks where the note would be.
    expect(bodies.filter((t) => t.includes("Buy seeds")).length).toBeGreaterThan(1);
    expect(bodies.filter((t) => t.includes('"event"') && t.includes("Buy seeds")).length, "realtime events of the todo").toBeGreaterThan(0);
    expect(bodies.filter((t) => t.includes("heirloom"))).toEqual([]);
  });

  it("broke no page: no script error, nothing the CSP refused", () => {
    expect(broken).toEqual([]);
  });
});

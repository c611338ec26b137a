// The admin console as an operator uses it, in headless Chromium (Debian's,
// through playwright-core) against a real `abe serve`, which serves the
// embedded build at /_/. Run by the SDK's vitest (sdk/js/vitest.config.ts
// includes admin-ui/test), on its harness and its one Chromium:
//   cd sdk/js && npx vitest run ../../admin-ui/test/
// Screenshots of every screen, 1280 and 390 px wide, go to
// admin-ui/test-artifacts/ (gitignored).
import { mkdir, readFile } from "node:fs/promises";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import { registerUser, startServer, totp, type AbeServer, type TestUser } from "../../sdk/js/test/harness.js";
import { sticksOut } from "./layout.js";

const CHROMIUM = "/usr/bin/chromium";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"];
const SHOTS = fileURLToPath(new URL("../test-artifacts", import.meta.url));
const WAIT = { timeout: 20_000, interval: 100 };

const stepNow = () => Math.floor(Date.now() / 30_000);

/** The todo example plus a collection only moderators may read, admins needing MFA, a quick lockout. */
async function config(): Promise<string> {
  const base = await readFile(`${inject("abeRepoRoot")}/examples/todo/abe.yaml`, "utf8");
  return base
    .replace(/^auth:\n/m, "auth:\n  require_mfa_for_roles: [admin]\n  lockout: { max_failures: 3, delay_base: 1ms, delay_max: 2ms }\n")
    .replace(
      /^collections:\n/m,
      `collections:\n  notices:\n    fields:\n      text: { type: text }\n    rules:\n      list: "has_role('moderator')"\n      read: "has_role('moderator')"\n      create: "has_role('moderator')"\n`,
    );
}

let srv: AbeServer;
let browser: Browser;
let ctx: BrowserContext;
let page: Page;
let adminUser: TestUser;
let secret = "";
let bob: TestUser;
let noticeId = "";

/** Script errors and what the CSP refused: a page that breaks so fails the run. */
const broken: string[] = [];
function watch(p: Page): void {
  p.on("pageerror", (e) => broken.push(`page error: ${String(e)}`));
  p.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Refused to/.test(m.text())) broken.push(`CSP: ${m.text()}`);
  });
  p.on("dialog", (d) => void d.accept());
}

async function shot(p: Page, name: string): Promise<void> {
  await p.setViewportSize({ width: 1280, height: 800 });
  await p.screenshot({ path: `${SHOTS}/${name}-1280.png`, fullPage: true });
  await p.setViewportSize({ width: 390, height: 844 });
  await p.screenshot({ path: `${SHOTS}/${name}-390.png`, fullPage: true });
  const out = await sticksOut(p);
  if (out.length) broken.push(`${name} at 390 px is wider than the window: ${out.join(", ")}`);
  await p.setViewportSize({ width: 1280, height: 800 });
}

async function signIn(p: Page, who: { email: string; password: string }, code?: string): Promise<void> {
  await p.goto(srv.url + "/_/");
  await p.getByLabel("Email").fill(who.email);
  await p.getByLabel("Password").fill(who.password);
  await p.getByRole("button", { name: "Sign in" }).click();
  if (code) {
    await p.getByLabel("Code").fill(code);
    await p.getByLabel("Code").press("Enter");
  }
}

beforeAll(async () => {
  await mkdir(SHOTS, { recursive: true });
  srv = await startServer({ baseConfig: await config() });
  adminUser = await registerUser(srv);
  await srv.sql(`INSERT INTO abe.user_roles (user_id, role, granted_at) VALUES ($1, 'admin', now())`, [adminUser.id]);
  // Enrol TOTP through the API, as the admin's phone would.
  const setup = await srv.api<{ secret: string }>("POST", "/api/auth/mfa/totp/setup", {}, adminUser.accessToken);
  expect(setup.status).toBe(200);
  secret = setup.body.secret;
  const enable = await srv.api("POST", "/api/auth/mfa/totp/enable", { code: totp(secret, stepNow() - 1) }, adminUser.accessToken);
  expect(enable.status, JSON.stringify(enable.body)).toBe(200);
  bob = await registerUser(srv);
  const mod = await registerUser(srv);
  await srv.sql(`INSERT INTO abe.user_roles (user_id, role, granted_at) VALUES ($1, 'moderator', now())`, [mod.id]);
  const n = await srv.api<{ id: string }>("POST", "/api/collections/notices/records", { text: "for moderators" }, mod.accessToken);
  expect(n.status, JSON.stringify(n.body)).toBe(201);
  noticeId = n.body.id;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
  ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await ctx.newPage();
  watch(page);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await srv?.stop();
});

describe("the admin console", { timeout: 120_000 }, () => {
  it("refuses an account without admin:console and signs it out", async () => {
    const p = await ctx.newPage();
    watch(p);
    await signIn(p, bob);
    await p.getByText("This account may not use the console").waitFor();
    await shot(p, "refused");
    await p.close();
  });

  it("signs an admin in with the second factor", async () => {
    await page.goto(srv.url + "/_/");
    await shot(page, "sign-in");
    await signIn(page, adminUser, totp(secret, stepNow()));
    await page.getByRole("navigation", { name: "Screens" }).getByRole("link", { name: "Users" }).waitFor();
    await shot(page, "overview");
  });

  it("finds a user and unlocks them after failed logins", async () => {
    for (let i = 0; i < 4; i++) await srv.api("POST", "/api/auth/login", { email: bob.email, password: "wrong-password-1" });
    await page.getByRole("navigation", { name: "Screens" }).getByRole("link", { name: "Users" }).click();
    await page.getByLabel("Email contains").fill(bob.email.slice(0, 8));
    await page.getByLabel("Email contains").press("Enter");
    await page.getByRole("link", { name: bob.email }).click();
    await page.getByText(/locked until/).waitFor();
    await page.getByText("Failed sign-ins that count toward the lock").waitFor();
    await shot(page, "user-locked");
    await page.getByRole("button", { name: "Unlock" }).click();
    await page.getByText("not locked").waitFor();
    const login = await srv.api("POST", "/api/auth/login", { email: bob.email, password: bob.password });
    expect(login.status).toBe(200);
  });

  it("assigns a role, and the user's next request succeeds", async () => {
    const before = await srv.api("GET", `/api/collections/notices/records/${noticeId}`, undefined, bob.accessToken);
    expect(before.status).toBe(404);
    await page.getByLabel("Role", { exact: true }).selectOption("moderator");
    await page.getByRole("button", { name: "Assign role" }).click();
    await page.getByRole("button", { name: "Remove role moderator" }).waitFor();
    await shot(page, "user");
    await expect
      .poll(async () => (await srv.api("GET", `/api/collections/notices/records/${noticeId}`, undefined, bob.accessToken)).status, WAIT)
      .toBe(200);
  });

  it("explains an allowed and a refused read in the playground", async () => {
    await page.getByRole("navigation", { name: "Screens" }).getByRole("link", { name: "Rules playground" }).click();
    await page.getByRole("option", { name: "notices" }).waitFor({ state: "attached" });
    await page.getByLabel("Collection").selectOption("notices");
    await page.getByLabel("Operation").selectOption("read");
    await page.getByLabel("User's email").fill(bob.email);
    await page.getByLabel("Record id").fill(noticeId);
    await page.getByRole("button", { name: "Explain" }).click();
    await page.locator(".verdict.ok", { hasText: "Allowed" }).first().waitFor();
    await page.locator(".nodes", { hasText: "has_role" }).waitFor();
    await page.getByText("The real API's answer").waitFor();
    await shot(page, "playground-allowed");
    await page.getByLabel("As").selectOption("anonymous");
    await page.getByRole("button", { name: "Explain" }).click();
    await page.locator(".verdict.bad", { hasText: "Refused" }).first().waitFor();
    await shot(page, "playground-refused");
  });

  it("shows the roles, the security events and the jobs", async () => {
    const nav = page.getByRole("navigation", { name: "Screens" });
    await nav.getByRole("link", { name: "Roles" }).click();
    await page.getByRole("cell", { name: "moderator" }).first().waitFor();
    await shot(page, "roles");
    await nav.getByRole("link", { name: "Security events" }).click();
    await page.getByRole("cell", { name: "login_failed" }).first().waitFor();
    await shot(page, "events");
    await nav.getByRole("link", { name: "Jobs" }).click();
    await page.getByRole("heading", { name: "Jobs" }).waitFor();
    await shot(page, "jobs");
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole("button", { name: "Menu" }).click();
    await shot(page, "menu-open");
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it("retries a failed job", async () => {
    // A job River gave up on, as after its last failed attempt.
    const [job] = await srv.sql<{ id: string }>(
      `INSERT INTO abe.river_job (kind, args, state, attempt, max_attempts, errors, attempted_at, finalized_at, queue, priority)
       VALUES ('console.test', '{}', 'discarded', 1, 1, ARRAY['{"at":"2026-01-01T00:00:00Z","attempt":1,"error":"smtp: connection refused"}'::jsonb], now(), now(), 'default', 1)
       RETURNING id`,
    );
    const nav = page.getByRole("navigation", { name: "Screens" });
    await nav.getByRole("link", { name: "Jobs" }).click();
    await page.getByLabel("State").selectOption("discarded");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.getByText("smtp: connection refused").waitFor();
    await shot(page, "jobs-failed");
    await page.getByRole("button", { name: "Retry" }).first().click();
    await page.getByText(`Job ${job!.id} queued again`).waitFor();
    await expect
      .poll(async () => (await srv.sql<{ state: string }>(`SELECT state FROM abe.river_job WHERE id = $1`, [job!.id]))[0]?.state, WAIT)
      .not.toBe("discarded");
  });

  it("first loads under 200 kB gzip", async () => {
    const dist = fileURLToPath(new URL("../dist/", import.meta.url));
    const index = await readFile(dist + "index.html", "utf8");
    const files = [...index.matchAll(/(?:src|href)="\/_\/([^"]+)"/g)].map((m) => m[1]!);
    let total = gzipSync(index).length;
    for (const f of files) total += gzipSync(await readFile(dist + f)).length;
    console.log(`admin console first load: ${total} bytes gzip (index.html and ${files.length} files)`);
    expect(total).toBeLessThan(200_000);
  });

  it("broke nothing: no page error, no CSP violation", () => {
    expect(broken).toEqual([]);
  });
});

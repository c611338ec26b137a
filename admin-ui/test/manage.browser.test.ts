// The console's management flows in headless Chromium against a real
// `abe serve`, each checked on the server too: MFA enrolment at sign-in
// when a role requires it; Users (create, verify, roles, unlock, MFA reset,
// sessions, log out everywhere); Roles (create, edit, delete, abe.yaml's
// read-only); the records browser (cursor pages both ways, a file uploaded
// and previewed, a 409 resolved with "Use theirs"); Security events by
// user, type and time; Jobs retry and cancel. Run from sdk/js:
//   npx vitest run ../../admin-ui/test/manage.browser.test.ts
// (the console is the embedded admin-ui/dist: build it first). Screenshots
// of every screen at 1280 and 390 px go to admin-ui/test-artifacts/.
import { existsSync, mkdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it, inject } from "vitest";
import { createProject, registerUser, startServer, totp, type AbeServer, type TestUser } from "../../sdk/js/test/harness.js";
import { sticksOut } from "./layout.js";

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = fileURLToPath(new URL("../test-artifacts/", import.meta.url));
const WAIT = { timeout: 15_000, interval: 100 };
const stepNow = () => Math.floor(Date.now() / 30_000);
// A 2×1 PNG: a red and a blue pixel.
const PNG = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAIAAAABCAIAAAB7QOjdAAAAEElEQVR4nGP4z8DAwMDAAAAHAAH/ADkrlwAAAABJRU5ErkJggg==", "base64");

/** The todo example, admins needing MFA, a quick lockout, and albums with a file field and eight columns. */
async function config(): Promise<string> {
  const base = await readFile(`${inject("abeRepoRoot")}/examples/todo/abe.yaml`, "utf8");
  return base
    .replace(/^auth:\n/m, "auth:\n  require_mfa_for_roles: [admin]\n  lockout: { max_failures: 3, delay_base: 1ms, delay_max: 2ms }\n")
    .replace(
      /^collections:\n/m,
      `collections:
  albums:
    fields:
      title: { type: text, required: true }
      cover: { type: file, mime_types: [image/png] }
      artist: { type: text }
      year: { type: number }
      rating: { type: number }
      notes: { type: text }
      published: { type: bool, default: false }
`,
    );
}

let srv: AbeServer;
let browser: Browser;
let page: Page;
let adminUser: TestUser;
let secret = "";
const problems: string[] = [];
const sideways: string[] = [];

function watch(p: Page): void {
  p.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  p.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Refused to/i.test(m.text())) problems.push(`csp: ${m.text()}`);
  });
  p.on("dialog", (d) => void d.accept());
}

/** Screenshots at 1280 and 390 px; a screen wider than 390 px is a failure. */
async function shot(p: Page, name: string): Promise<void> {
  const was = p.viewportSize();
  await p.setViewportSize({ width: 1280, height: 800 });
  await p.screenshot({ path: `${SHOTS}${name}-1280.png`, fullPage: true });
  await p.setViewportSize({ width: 390, height: 844 });
  // A dialog shows in the window; the page behind it may be long.
  await p.screenshot({ path: `${SHOTS}${name}-390.png`, fullPage: (await p.locator("dialog[open]").count()) === 0 });
  const out = await sticksOut(p);
  if (out.length) sideways.push(`${name}: ${out.join(", ")}`);
  if (was) await p.setViewportSize(was);
}

/** Clicks a nav entry (through the menu on a phone). */
async function go(p: Page, title: string): Promise<void> {
  const menu = p.getByRole("button", { name: "Menu" });
  if (await menu.isVisible()) await menu.click();
  await p.getByRole("navigation", { name: "Screens" }).getByRole("link", { name: title, exact: true }).click();
}

/** Logs in through the API with a user agent of our choosing, as a named device. */
async function loginAs(u: { email: string; password: string }, agent: string): Promise<{ refresh_token: string; access_token: string }> {
  const r = await fetch(srv.url + "/api/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json", "User-Agent": agent },
    body: JSON.stringify({ email: u.email, password: u.password }),
  });
  expect(r.status).toBe(200);
  return (await r.json()) as { refresh_token: string; access_token: string };
}

const refresh = async (token: string) => (await srv.api<{ refresh_token: string }>("POST", "/api/auth/refresh", { refresh_token: token })).status;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`the browser tests need Chromium at ${CHROMIUM}: apt-get install chromium`);
  mkdirSync(SHOTS, { recursive: true });
  srv = await startServer({ baseConfig: await config() });
  // An admin with no second factor yet: the console must enrol them.
  adminUser = await registerUser(srv);
  await srv.sql(`INSERT INTO abe.user_roles (user_id, role) VALUES ($1, 'admin')`, [adminUser.id]);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
  page = await browser.newPage({ viewport: { width: 390, height: 844 } });
  page.setDefaultTimeout(15_000);
  watch(page);
}, 120_000);

// A failed step may leave a dialog open over the next test's clicks.
afterEach(async () => {
  while (await page.locator("dialog[open]").count()) await page.keyboard.press("Escape");
});

afterAll(async () => {
  await browser?.close();
  await srv?.stop();
});

describe("the console's management screens", { timeout: 120_000 }, () => {
  it("enrols an admin in MFA at sign-in, by keyboard on a phone", async () => {
    await page.goto(srv.url + "/_/");
    // Email has the focus; Tab to the password, Enter signs in.
    await expect.poll(() => page.getByLabel("Email").evaluate((e) => e === document.activeElement), WAIT).toBe(true);
    await page.keyboard.type(adminUser.email);
    await page.keyboard.press("Tab");
    await page.keyboard.type(adminUser.password);
    await page.keyboard.press("Enter");
    await page.getByText("A role of this account requires two-factor authentication").waitFor();
    await expect.poll(() => page.locator("img.qr").evaluate((i: HTMLImageElement) => i.complete && i.naturalWidth > 0), WAIT).toBe(true);
    secret = (await page.locator("code.secret").textContent())!.trim();
    expect(secret).toMatch(/^[A-Z2-7]+=*$/);
    await shot(page, "mfa-enrol");
    // The code field has the focus.
    await page.keyboard.type(totp(secret, stepNow() - 1));
    await page.keyboard.press("Enter");
    await page
      .getByText("Keep these recovery codes somewhere safe")
      .waitFor()
      .catch(async (e: unknown) => {
        throw new Error(`${String(e)}\nthe page: ${await page.locator("body").innerText()}\nfocus: ${await page.evaluate(() => document.activeElement?.outerHTML)}`);
      });
    const codes = await page.locator(".codes code").allTextContents();
    expect(codes.length).toBeGreaterThan(4);
    await shot(page, "mfa-recovery-codes");
    await page.getByRole("button", { name: /I saved them/ }).focus();
    await page.keyboard.press("Enter");
    // A new sign-in, through the second factor now.
    await page.getByLabel("Code").waitFor();
    await page.keyboard.type(totp(secret, stepNow()));
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Overview" }).waitFor();
    // On the server: TOTP is on, and the console's session passed it.
    const [row] = await srv.sql<{ n: string }>(`SELECT count(*) AS n FROM abe.mfa_totp WHERE user_id = $1`, [adminUser.id]);
    expect(Number(row!.n)).toBe(1);
    const evs = await srv.sql<{ type: string }>(`SELECT type FROM abe.security_events WHERE user_id = $1 ORDER BY id`, [adminUser.id]);
    expect(evs.map((e) => e.type)).toEqual(expect.arrayContaining(["mfa_enabled"]));
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it("creates a user, verifies them, assigns and removes a role", async () => {
    await go(page, "Users");
    await page.getByRole("button", { name: "New user" }).click();
    const dialog = page.locator("dialog[open]");
    const email = `made${Date.now()}@example.com`;
    await dialog.getByLabel("Email", { exact: true }).fill(email);
    await dialog.getByLabel("Name").fill("Made In Console");
    await dialog.getByLabel("Password").fill("Console-made pass phrase 42");
    await shot(page, "user-create");
    await dialog.getByRole("button", { name: "Create" }).click();
    await page.getByRole("heading", { name: email }).waitFor();
    const [made] = await srv.sql<{ id: string; email_verified: boolean }>(`SELECT id, email_verified FROM abe.users WHERE email = $1`, [email]);
    expect(made?.email_verified).toBe(false);
    const evs = await srv.sql<{ details: { actor: string } }>(`SELECT details FROM abe.security_events WHERE type = 'user_created' AND user_id = $1`, [made!.id]);
    expect(evs[0]?.details.actor).toBe(adminUser.id);

    await page.getByRole("button", { name: "Verify email" }).click();
    await page.locator(".facts").getByText("verified", { exact: true }).waitFor();
    await expect.poll(async () => (await srv.sql<{ v: boolean }>(`SELECT email_verified AS v FROM abe.users WHERE id = $1`, [made!.id]))[0]?.v, WAIT).toBe(true);
    await expect(page.getByRole("button", { name: "Verify email" }).count()).resolves.toBe(0);

    const roles = async () => (await srv.sql<{ role: string }>(`SELECT role FROM abe.user_roles WHERE user_id = $1 ORDER BY role`, [made!.id])).map((r) => r.role);
    await page.getByLabel("Role", { exact: true }).selectOption("moderator");
    await page.getByRole("button", { name: "Assign role" }).click();
    await page.getByRole("button", { name: "Remove role moderator" }).waitFor();
    await expect.poll(roles, WAIT).toContain("moderator");
    await shot(page, "user-roles");
    await page.getByRole("button", { name: "Remove role moderator" }).click();
    await expect.poll(async () => page.getByRole("button", { name: "Remove role moderator" }).count(), WAIT).toBe(0);
    await expect.poll(roles, WAIT).not.toContain("moderator");
  });

  it("gives a member the moderator role, and the member's next request may do what it could not", async () => {
    const owner = await registerUser(srv);
    const member = await registerUser(srv);
    const p = await srv.api<{ id: string }>("POST", "/api/collections/projects/records", { name: "Shared", owner: owner.id, members: [member.id] }, owner.accessToken);
    expect(p.status).toBe(201);
    const todo = await srv.api<{ id: string }>("POST", "/api/collections/todos/records", { project: p.body.id, title: "Moderated" }, owner.accessToken);
    expect(todo.status).toBe(201);
    // Only the owner or a moderator deletes a todo (examples/todo/abe.yaml).
    const del = () => srv.api("DELETE", `/api/collections/todos/records/${todo.body.id}`, undefined, member.accessToken);
    expect((await del()).status).toBe(403);

    await go(page, "Users");
    await page.getByLabel("Email contains").fill(member.email);
    await page.getByLabel("Email contains").press("Enter");
    await page.getByRole("link", { name: member.email }).click();
    await page.getByLabel("Role", { exact: true }).selectOption("moderator");
    await page.getByRole("button", { name: "Assign role" }).click();
    await page.getByRole("button", { name: "Remove role moderator" }).waitFor();
    // The same access token: roles are read per request, not frozen in the token.
    expect((await del()).status).toBe(204);
    expect(await srv.sql(`SELECT id FROM todos WHERE id = $1`, [todo.body.id])).toEqual([]);
    // The records test below counts the projects.
    expect((await srv.api("DELETE", `/api/collections/projects/records/${p.body.id}`, undefined, owner.accessToken)).status).toBe(204);
  });

  it("unlocks a locked account, showing its failed attempts, and resets MFA", async () => {
    const carol = await registerUser(srv);
    // Carol has TOTP on.
    const setup = await srv.api<{ secret: string }>("POST", "/api/auth/mfa/totp/setup", {}, carol.accessToken);
    const carolSecret = setup.body.secret;
    expect((await srv.api("POST", "/api/auth/mfa/totp/enable", { code: totp(carolSecret, stepNow()) }, carol.accessToken)).status).toBe(200);
    for (let i = 0; i < 4; i++) await srv.api("POST", "/api/auth/login", { email: carol.email, password: "wrong-password-1" });
    expect((await srv.api("POST", "/api/auth/login", { email: carol.email, password: carol.password })).status).toBe(429);

    await go(page, "Users");
    await page.getByRole("region", { name: "Users" }).waitFor();
    await shot(page, "users-list");
    await page.getByLabel("Email contains").fill(carol.email);
    await page.getByLabel("Email contains").press("Enter");
    await page.getByRole("link", { name: carol.email }).click();
    await page.getByText(/locked until/).waitFor();
    await page.getByText(/\d+ failed attempts/).waitFor();
    const failures = page.getByRole("region", { name: "Failed sign-ins" }).locator("tbody tr");
    await expect.poll(() => failures.count(), WAIT).toBeGreaterThanOrEqual(3);
    await shot(page, "user-locked");
    await page.getByRole("button", { name: "Unlock" }).click();
    await page.getByText("not locked").waitFor();
    // Carol signs in again: MFA asks for her code, she is not locked.
    const login = await srv.api<{ mfa_token?: string }>("POST", "/api/auth/login", { email: carol.email, password: carol.password });
    expect(login.status).toBe(200);
    expect(login.body.mfa_token).toBeTruthy();

    await page.getByRole("button", { name: "Reset MFA" }).click();
    await page.locator(".facts").getByText("off", { exact: true }).waitFor();
    // Without TOTP, the password alone gives her tokens.
    const plain = await srv.api<{ access_token?: string; mfa_token?: string }>("POST", "/api/auth/login", { email: carol.email, password: carol.password });
    expect(plain.status).toBe(200);
    expect(plain.body.access_token).toBeTruthy();
    expect(plain.body.mfa_token).toBeUndefined();
  });

  it("revokes one session, then logs the user out everywhere", async () => {
    const dave = await registerUser(srv);
    const phone = await loginAs(dave, "phone-A/1.0");
    const laptop = await loginAs(dave, "laptop-B/2.0");
    await go(page, "Users");
    await page.getByLabel("Email contains").fill(dave.email);
    await page.getByLabel("Email contains").press("Enter");
    await page.getByRole("link", { name: dave.email }).click();
    const sessions = page.getByRole("region", { name: "Sessions" });
    await sessions.getByText("phone-A/1.0").waitFor();
    await sessions.getByText("laptop-B/2.0").waitFor();
    await shot(page, "user-sessions");
    await sessions.locator("tr", { hasText: "phone-A/1.0" }).getByRole("button", { name: "Revoke" }).click();
    await expect.poll(() => sessions.getByText("phone-A/1.0").count(), WAIT).toBe(0);
    // On the server: the phone's refresh token no longer refreshes, the laptop's does.
    expect(await refresh(phone.refresh_token)).toBe(401);
    const again = await srv.api<{ refresh_token: string }>("POST", "/api/auth/refresh", { refresh_token: laptop.refresh_token });
    expect(again.status).toBe(200);
    expect((await srv.api("GET", "/api/auth/me", undefined, phone.access_token)).status).toBe(401);

    await page.getByRole("button", { name: "Log out everywhere" }).click();
    await page.getByText("No live sessions.").waitFor();
    expect(await refresh(again.body.refresh_token)).toBe(401);
    expect((await srv.api("GET", "/api/auth/me", undefined, laptop.access_token)).status).toBe(401);
    // The events of each, with the admin as the actor.
    const evs = await srv.sql<{ type: string; details: { actor: string } }>(
      `SELECT type, details FROM abe.security_events WHERE user_id = $1 AND type IN ('session_revoked', 'admin_logout_all') ORDER BY id`,
      [dave.id],
    );
    expect(evs.map((e) => e.type)).toEqual(["session_revoked", "admin_logout_all"]);
    expect(evs.every((e) => e.details.actor === adminUser.id)).toBe(true);
  });

  it("links a user to their security events, filtered by user, type and time", async () => {
    await go(page, "Users");
    await page.getByLabel("Email contains").fill("made");
    await page.getByLabel("Email contains").press("Enter");
    await page.getByRole("link", { name: /^made/ }).first().click();
    const id = (await page.locator(".facts code").first().textContent())!.trim();
    await page.getByRole("link", { name: "Security events" }).last().click();
    await page.getByRole("heading", { name: "Security events" }).waitFor();
    expect(new URL(page.url()).searchParams.get("user_id")).toBe(id);
    await expect(page.getByLabel("User id").inputValue()).resolves.toBe(id);
    const rows = page.getByRole("region", { name: "Security events" }).locator("tbody tr");
    await expect.poll(() => rows.count(), WAIT).toBeGreaterThanOrEqual(4); // created, verified, assigned, removed
    const types = async () => (await rows.locator("td:nth-child(2)").allTextContents()).map((t) => t.trim());
    expect(await types()).toEqual(expect.arrayContaining(["user_created", "email_verified_by_admin", "role_assigned", "role_removed"]));
    // Every row is this user's.
    for (const cell of await rows.locator("td:nth-child(3)").allTextContents()) expect(cell.trim()).toBe("…" + id.slice(-12));
    await shot(page, "events-of-user");

    await page.getByLabel("Type").fill("role_*");
    await page.getByRole("button", { name: "Filter" }).click();
    await expect.poll(types, WAIT).toEqual(["role_removed", "role_assigned"]);

    // Since tomorrow: nothing; until tomorrow: the two again.
    const tomorrow = new Date(Date.now() + 86_400_000);
    const local = `${tomorrow.getFullYear()}-${String(tomorrow.getMonth() + 1).padStart(2, "0")}-${String(tomorrow.getDate()).padStart(2, "0")}T00:00`;
    await page.getByLabel("Since").fill(local);
    await page.getByRole("button", { name: "Filter" }).click();
    await page.getByText("No events match.").waitFor();
    await page.getByLabel("Since").fill("");
    await page.getByLabel("Until").fill(local);
    await page.getByRole("button", { name: "Filter" }).click();
    await expect.poll(types, WAIT).toEqual(["role_removed", "role_assigned"]);
    await shot(page, "events-filtered");
  });

  it("creates, edits and deletes an API role; abe.yaml's roles are read-only", async () => {
    await go(page, "Roles");
    const table = page.getByRole("region", { name: "Roles" });
    for (const name of ["admin", "moderator", "user"]) {
      const row = table.locator("tr", { has: page.getByText(name, { exact: true }) });
      await expect.poll(() => row.locator(".badge").first().textContent(), WAIT).toBe("abe.yaml");
      expect(await row.getByRole("button", { name: `Edit ${name}`, exact: true }).count()).toBe(0);
      await row.getByText("read-only").waitFor();
    }
    // Esc closes the dialog; the keyboard fills it.
    await page.getByRole("button", { name: "New role" }).click();
    await page.locator("dialog[open]").getByLabel("Name").waitFor();
    await page.keyboard.press("Escape");
    await expect.poll(() => page.locator("dialog[open]").count(), WAIT).toBe(0);
    await page.getByRole("button", { name: "New role" }).click();
    await expect.poll(() => page.locator("dialog[open]").getByLabel("Name").evaluate((e) => e === document.activeElement), WAIT).toBe(true);
    await page.keyboard.type("editor");
    await page.keyboard.press("Tab");
    await page.keyboard.type("Edits records");
    await page.keyboard.press("Tab");
    await page.keyboard.type("records:admin\nusers:manage");
    await shot(page, "role-create");
    await page.locator("dialog[open]").getByRole("button", { name: "Create" }).click();
    const editor = table.locator("tr", { has: page.getByText("editor", { exact: true }) });
    await editor.waitFor();
    const stored = async () => (await srv.sql<{ description: string; permissions: string[] }>(`SELECT description, permissions FROM abe.roles WHERE name = 'editor'`))[0];
    await expect.poll(stored, WAIT).toEqual({ description: "Edits records", permissions: ["records:admin", "users:manage"] });

    await editor.getByRole("button", { name: "Edit editor", exact: true }).click();
    const dialog = page.locator("dialog[open]");
    await dialog.getByLabel("Description").fill("Edits records and jobs");
    await dialog.getByLabel("Permissions").fill("records:admin\njobs:manage");
    await dialog.getByRole("button", { name: "Save" }).click();
    await editor.getByText("jobs:manage").waitFor();
    await expect.poll(stored, WAIT).toEqual({ description: "Edits records and jobs", permissions: ["records:admin", "jobs:manage"] });
    await shot(page, "roles-with-api-role");

    await editor.getByRole("button", { name: "Holders of editor" }).click();
    await dialog.getByText("Nobody holds this role.").waitFor();
    await shot(page, "role-holders");
    await page.keyboard.press("Escape");
    await expect.poll(() => page.locator("dialog[open]").count(), WAIT).toBe(0);
    await editor.getByRole("button", { name: "Edit editor", exact: true }).click();
    await dialog.getByRole("button", { name: "Delete" }).click();
    await expect.poll(() => editor.count(), WAIT).toBe(0);
    await expect.poll(stored, WAIT).toBeUndefined();
  });

  it("pages records both ways, uploads and previews a file, and resolves a 409 with their version", async () => {
    const owner = await registerUser(srv);
    for (let i = 0; i < 30; i++) await createProject(srv, owner, `P${String(i).padStart(2, "0")}`);
    await go(page, "Collections");
    await page.getByRole("link", { name: "projects" }).click();
    const rows = page.locator("table.rec-table tbody tr");
    await expect.poll(() => rows.count(), WAIT).toBe(25);
    const firstPage = await rows.locator("td:first-child").allTextContents();
    await page.getByRole("button", { name: "Next page" }).click();
    await expect.poll(() => rows.count(), WAIT).toBe(5);
    await page.getByText("Page 2", { exact: true }).waitFor();
    const secondPage = await rows.locator("td:first-child").allTextContents();
    expect(secondPage.some((id) => firstPage.includes(id))).toBe(false);
    await expect(page.getByRole("button", { name: "Next page" }).isDisabled()).resolves.toBe(true);
    await shot(page, "records-page-2");
    await page.getByRole("button", { name: "Previous page" }).click();
    await expect.poll(() => rows.locator("td:first-child").allTextContents(), WAIT).toEqual(firstPage);
    await expect(page.getByRole("button", { name: "Previous page" }).isDisabled()).resolves.toBe(true);

    // A 409, resolved by taking the server's version and editing it.
    const p = await createProject(srv, owner, "Conflicted");
    await page.getByRole("button", { name: "Apply" }).click();
    const row = rows.filter({ hasText: p.id });
    await row.getByRole("button", { name: "Edit" }).click();
    const dialog = page.locator("dialog[open]");
    const json = dialog.getByLabel("Record (JSON)");
    const theirs = await srv.api<{ version: number }>("PATCH", `/api/collections/projects/records/${p.id}`, { name: "Renamed by owner" }, owner.accessToken);
    expect(theirs.status).toBe(200);
    await json.fill((await json.inputValue()).replace('"Conflicted"', '"Mine"'));
    await dialog.getByRole("button", { name: "Save" }).click();
    await dialog.getByTestId("theirs").waitFor();
    await shot(page, "records-409");
    await dialog.getByRole("button", { name: "Use theirs" }).click();
    await expect.poll(() => json.inputValue(), WAIT).toContain("Renamed by owner");
    await json.fill((await json.inputValue()).replace('"Renamed by owner"', '"Renamed by owner, then admin"'));
    await dialog.getByRole("button", { name: "Save" }).click();
    await expect.poll(() => row.textContent(), WAIT).toContain("Renamed by owner, then admin");
    const final = await srv.api<{ name: string; version: number }>("GET", `/api/collections/projects/records/${p.id}`, undefined, owner.accessToken);
    expect(final.body).toMatchObject({ name: "Renamed by owner, then admin", version: theirs.body.version + 1 });

    // Albums: a file field, eight columns; a PNG uploaded and shown.
    await go(page, "Collections");
    await page.getByRole("link", { name: "albums" }).waitFor();
    await shot(page, "collections-list");
    await page.getByRole("link", { name: "albums" }).click();
    await page.getByRole("button", { name: "New record" }).click();
    const create = dialog.getByLabel("Record (JSON)");
    await create.fill(JSON.stringify({ title: "Blue", artist: "Joni Mitchell", year: 1971, rating: 5, notes: "A long note about the album that goes on", published: true }));
    await dialog.getByRole("button", { name: "Create" }).click();
    await expect.poll(() => rows.count(), WAIT).toBe(1);
    await rows.first().locator('input[type="file"]').setInputFiles({ name: "cover.png", mimeType: "image/png", buffer: PNG });
    const preview = rows.first().getByRole("button", { name: /^Preview / });
    await preview.waitFor();
    const [album] = await srv.sql<{ id: string; cover: string | null }>(`SELECT id, cover FROM albums`);
    // The server names the file; the cell shows that name.
    expect(album?.cover).toBeTruthy();
    await expect(preview.textContent()).resolves.toBe(album!.cover);
    await shot(page, "records-files");
    await preview.click();
    const img = dialog.getByTestId("file-preview");
    await expect.poll(() => img.evaluate((i: HTMLImageElement) => (i.complete ? i.naturalWidth : 0)), WAIT).toBe(2);
    await shot(page, "records-file-preview");
    // Removed from the preview (the confirm is accepted).
    await dialog.getByRole("button", { name: "Remove" }).click();
    await expect.poll(() => preview.count(), WAIT).toBe(0);
    await expect.poll(async () => (await srv.sql<{ cover: string | null }>(`SELECT cover FROM albums`))[0]?.cover, WAIT).toBeNull();
    // Both are admin writes in the trail, with the field.
    const events = await srv.sql<{ details: { field?: string; record_id: string } }>(
      `SELECT details FROM abe.security_events WHERE type = 'admin.record.update' AND details->>'field' = 'cover' ORDER BY id`,
    );
    expect(events.map((e) => e.details.record_id)).toEqual([album!.id, album!.id]);
  });

  it("retries a failed job and cancels a scheduled one", async () => {
    const [failed] = await srv.sql<{ id: string }>(
      `INSERT INTO abe.river_job (kind, args, state, attempt, max_attempts, errors, attempted_at, finalized_at, queue, priority)
       VALUES ('console.test', '{}', 'discarded', 1, 1, ARRAY['{"at":"2026-01-01T00:00:00Z","attempt":1,"error":"smtp: connection refused"}'::jsonb], now(), now(), 'default', 1)
       RETURNING id`,
    );
    const [later] = await srv.sql<{ id: string }>(
      `INSERT INTO abe.river_job (kind, args, state, max_attempts, queue, priority, scheduled_at)
       VALUES ('console.later', '{}', 'scheduled', 3, 'default', 1, now() + interval '1 day') RETURNING id`,
    );
    const state = async (id: string) => (await srv.sql<{ state: string }>(`SELECT state FROM abe.river_job WHERE id = $1`, [id]))[0]?.state;
    await go(page, "Jobs");
    const table = page.getByRole("region", { name: "Jobs" });
    await page.getByLabel("Kind").fill("console.later");
    await page.getByRole("button", { name: "Filter" }).click();
    await table.getByText("console.later").waitFor();
    await table.locator("tr", { hasText: "console.later" }).getByRole("button", { name: "Cancel" }).click();
    await page.getByText(`Job ${later!.id} cancelled`).waitFor();
    await expect.poll(() => state(later!.id), WAIT).toBe("cancelled");

    await page.getByLabel("Kind").fill("");
    await page.getByLabel("State").selectOption("discarded");
    await page.getByRole("button", { name: "Filter" }).click();
    await table.getByText("smtp: connection refused").waitFor();
    await shot(page, "jobs-discarded");
    await table.locator("tr", { hasText: "console.test" }).getByRole("button", { name: "Retry" }).click();
    await page.getByText(`Job ${failed!.id} queued again`).waitFor();
    await expect.poll(() => state(failed!.id), WAIT).not.toBe("discarded");
  });

  it("keeps at most three toasts, the newest last", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const [j] = await srv.sql<{ id: string }>(
        `INSERT INTO abe.river_job (kind, args, state, max_attempts, queue, priority, scheduled_at)
         VALUES ('console.burst', '{}', 'scheduled', 3, 'default', 1, now() + interval '1 day') RETURNING id`,
      );
      ids.push(String(j!.id));
    }
    await go(page, "Jobs");
    await page.getByLabel("State").selectOption("scheduled");
    await page.getByLabel("Kind").fill("console.burst");
    await page.getByRole("button", { name: "Filter" }).click();
    const rows = page.getByRole("region", { name: "Jobs" }).locator("tbody tr");
    await expect.poll(() => rows.count(), WAIT).toBe(5);
    const toasts = page.locator(".toast");
    for (let left = 5; left > 0; left--) {
      await rows.first().getByRole("button", { name: "Cancel" }).click();
      if (left > 1) await expect.poll(() => rows.count(), WAIT).toBe(left - 1);
      else await page.getByText("No jobs match.").waitFor();
      expect(await toasts.count()).toBeLessThanOrEqual(3);
    }
    await expect.poll(() => toasts.last().textContent(), WAIT).toMatch(/^Job \d+ cancelled$/);
    await shot(page, "toasts");
    // A click dismisses one.
    const last = (await toasts.last().textContent())!;
    await toasts.last().click();
    await expect.poll(() => page.locator(".toast", { hasText: last }).count(), WAIT).toBe(0);
  });

  it("broke nothing: no page error, no CSP violation, no screen wider than a phone", () => {
    expect(problems).toEqual([]);
    expect(sideways, "screens wider than the window").toEqual([]);
  });
});

// The console's overview, collections/records and realtime inspector
// screens in headless Chromium against a real abe serve (the console is
// the embedded admin-ui/dist: build it first with `npx vite build` in
// admin-ui). Run from sdk/js:
//   npx vitest run ../../admin-ui/test/records.browser.test.ts
// Screenshots at 1280 and 390 px go to admin-ui/test-artifacts/.
import { existsSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createProject, registerUser, startServer, type AbeServer, type TestUser } from "../../sdk/js/test/harness.js";
import { sticksOut } from "./layout.js";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = fileURLToPath(new URL("../test-artifacts/", import.meta.url));

let srv: AbeServer;
let browser: Browser;
let adminUser: TestUser;
let owner: TestUser;
const problems: string[] = [];
const WAIT = { timeout: 15_000 };

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`the browser tests need Chromium at ${CHROMIUM}: apt-get install chromium`);
  mkdirSync(ARTIFACTS, { recursive: true });
  srv = await startServer();
  adminUser = await registerUser(srv);
  await srv.sql("INSERT INTO abe.user_roles (user_id, role) VALUES ($1, 'admin')", [adminUser.id]);
  owner = await registerUser(srv);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
});

afterAll(async () => {
  await browser?.close();
  await srv?.stop();
});

/** A page of the console whose errors and CSP violations land in `problems`. */
async function consolePage(width: number): Promise<Page> {
  const page = await browser.newPage({ viewport: { width, height: 900 } });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Refused to/i.test(m.text())) problems.push(`csp: ${m.text()}`);
  });
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => console.error(`Refused to: CSP ${e.violatedDirective} ${e.blockedURI}`));
  });
  await page.goto(srv.url + "/_/");
  await page.getByLabel("Email").fill(adminUser.email);
  await page.getByLabel("Password").fill(adminUser.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Overview" }).waitFor();
  return page;
}

async function shot(page: Page, name: string) {
  await page.screenshot({ path: `${ARTIFACTS}${name}.png`, fullPage: true });
  const out = await sticksOut(page);
  if (out.length) sideways.push(`${name}: ${out.join(", ")}`);
}
const sideways: string[] = [];

/** Clicks a nav entry (through the menu on a phone). */
async function go(page: Page, title: string) {
  const menu = page.getByRole("button", { name: "Menu" });
  if (await menu.isVisible()) await menu.click();
  await page.getByRole("navigation", { name: "Screens" }).getByRole("link", { name: title }).click();
}

it("overview, records (filter, edit, 409, delete) and the inspector", async () => {
  const alpha = await createProject(srv, owner, "Alpha");
  await createProject(srv, owner, "Beta");
  const gamma = await createProject(srv, owner, "Gamma");

  const page = await consolePage(1280);
  page.setDefaultTimeout(15_000);
  await page.getByRole("heading", { name: /Readiness/ }).waitFor().catch(async (e: unknown) => {
    throw new Error(`${String(e)}\npage: ${await page.locator("main").innerText()}\n${problems.join("\n")}`);
  });
  // Overview: readiness, the chart, realtime and jobs.
  await page.getByRole("heading", { name: /Readiness/ }).waitFor();
  await expect.poll(async () => page.locator(".checks li").first().textContent(), WAIT).toMatch(/up|down/);
  expect(await page.locator("svg.chart rect.bar").count()).toBeGreaterThan(0);
  await page.getByRole("heading", { name: "Realtime", exact: true }).waitFor();
  await shot(page, "overview-1280");

  // Collections: the list, then projects with its schema and records.
  await go(page, "Collections");
  await page.getByRole("link", { name: "projects" }).click();
  await page.getByRole("heading", { name: "Schema" }).waitFor();
  const rows = page.locator("table.rec-table tbody tr");
  await expect.poll(async () => rows.count(), WAIT).toBe(3);
  await page.getByLabel("Filter").fill('name == "Alpha"');
  await page.getByRole("button", { name: "Apply" }).click();
  await expect.poll(async () => rows.count(), WAIT).toBe(1);
  await expect.poll(async () => rows.first().textContent(), WAIT).toMatch("Alpha");

  // Sort by name, ascending then descending.
  await page.getByLabel("Filter").fill("");
  await page.getByRole("button", { name: "Apply" }).click();
  await expect.poll(async () => rows.count(), WAIT).toBe(3);
  await page.getByRole("button", { name: /^name/ }).click();
  await expect.poll(async () => rows.first().textContent(), WAIT).toContain("Alpha");
  await page.getByRole("button", { name: /^name/ }).click();
  await expect.poll(async () => rows.first().textContent(), WAIT).toContain("Gamma");
  await shot(page, "collections-1280");

  // Edit Alpha.
  const alphaRow = rows.filter({ hasText: alpha.id });
  await alphaRow.getByRole("button", { name: "Edit" }).click();
  const dialog = page.locator("dialog[open]");
  const json = dialog.getByLabel("Record (JSON)");
  await json.fill((await json.inputValue()).replace('"Alpha"', '"Alpha 2"'));
  await dialog.getByRole("button", { name: "Save" }).click();
  await expect.poll(async () => alphaRow.textContent(), WAIT).toContain("Alpha 2");
  const after = await srv.api<{ name: string; version: number }>("GET", `/api/collections/projects/records/${alpha.id}`, undefined, owner.accessToken);
  expect(after.body.name).toBe("Alpha 2");

  // Someone else changes it; the console's copy is stale.
  const theirs = await srv.api<{ version: number }>("PATCH", `/api/collections/projects/records/${alpha.id}`, { name: "Alpha by owner" }, owner.accessToken);
  expect(theirs.status).toBe(200);
  await alphaRow.getByRole("button", { name: "Edit" }).click();
  await json.fill((await json.inputValue()).replace('"Alpha 2"', '"Alpha mine"'));
  await dialog.getByRole("button", { name: "Save" }).click();
  await dialog.getByTestId("theirs").waitFor();
  await expect.poll(async () => dialog.getByTestId("theirs").textContent(), WAIT).toMatch("Alpha by owner");
  await expect.poll(async () => dialog.getByTestId("yours").textContent(), WAIT).toMatch("Alpha mine");
  await shot(page, "records-409-1280");
  await dialog.getByRole("button", { name: "Overwrite with mine" }).click();
  await expect.poll(async () => alphaRow.textContent(), WAIT).toContain("Alpha mine");
  const final = await srv.api<{ name: string; version: number }>("GET", `/api/collections/projects/records/${alpha.id}`, undefined, owner.accessToken);
  expect(final.body.name).toBe("Alpha mine");
  expect(final.body.version).toBe(theirs.body.version + 1);

  // Delete Gamma, through the confirm dialog.
  await rows.filter({ hasText: gamma.id }).getByRole("button", { name: "Delete" }).click();
  await page.locator("dialog[open]").getByRole("button", { name: "Delete" }).click();
  await expect.poll(async () => rows.count(), WAIT).toBe(2);
  expect((await srv.api("GET", `/api/collections/projects/records/${gamma.id}`, undefined, owner.accessToken)).status).toBe(404);

  // The inspector, as the owner: a project they create arrives.
  await go(page, "Realtime inspector");
  await page.getByLabel("As").selectOption("user");
  await page.getByLabel("User id").fill(owner.id);
  await page.getByRole("button", { name: "Start" }).click();
  await expect.poll(async () => page.getByTestId("inspect-state").textContent(), WAIT).toBe("live");
  const delta = await createProject(srv, owner, "Delta");
  const ev = page.locator("li.ev-event").filter({ hasText: delta.id });
  await ev.waitFor();
  await expect.poll(async () => ev.textContent(), WAIT).toMatch("create");
  await expect.poll(async () => ev.textContent(), WAIT).toMatch("Delta");
  await shot(page, "inspector-1280");
  await page.getByRole("button", { name: "Stop" }).click();
  await expect.poll(async () => page.getByTestId("inspect-state").textContent(), WAIT).toBe("stopped");
  await page.close();

  // The same screens at phone width.
  const phone = await consolePage(390);
  await phone.getByRole("heading", { name: /Readiness/ }).waitFor();
  await shot(phone, "overview-390");
  await go(phone, "Collections");
  await phone.getByRole("link", { name: "projects" }).click();
  await expect.poll(async () => phone.locator("table.rec-table tbody tr").count(), WAIT).toBe(3);
  await shot(phone, "collections-390");
  await phone.locator("table.rec-table tbody tr").first().getByRole("button", { name: "Edit" }).click();
  await shot(phone, "records-edit-390");
  await phone.locator("dialog[open]").getByRole("button", { name: "Cancel" }).click();
  await go(phone, "Realtime inspector");
  await phone.getByLabel("As").selectOption("user");
  await phone.getByLabel("User id").fill(owner.id);
  await phone.getByRole("button", { name: "Start" }).click();
  await expect.poll(async () => phone.getByTestId("inspect-state").textContent(), WAIT).toBe("live");
  await phone.getByRole("button", { name: "Stop" }).click();
  await expect.poll(async () => phone.getByTestId("inspect-state").textContent(), WAIT).toBe("stopped");
  await phone.getByLabel("Filter (optional)").fill('name == "Epsilon"');
  await phone.getByRole("button", { name: "Start" }).click();
  await expect.poll(async () => phone.getByTestId("inspect-state").textContent(), WAIT).toBe("live");
  const eps = await createProject(srv, owner, "Epsilon");
  await phone.locator("li.ev-event").filter({ hasText: eps.id }).waitFor();
  // A rename takes it out of the filter: an unmatch, without the record.
  expect((await srv.api("PATCH", `/api/collections/projects/records/${eps.id}`, { name: "Zeta" }, owner.accessToken)).status).toBe(200);
  const gone = phone.locator("li.ev-unmatch").filter({ hasText: eps.id });
  await gone.waitFor();
  await expect.poll(async () => gone.textContent(), WAIT).toMatch("match: false");
  await shot(phone, "inspector-390");
  await phone.close();

  expect(problems).toEqual([]);
  expect(sideways, "screens wider than the window").toEqual([]);
});

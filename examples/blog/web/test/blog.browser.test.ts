// The blog example as its three roles use it, in headless Chromium
// (Debian's, through playwright-core) against a real `abe serve` with the
// example's own abe.yaml, which hosts the built app (web/dist) at its
// origin. The accounts come from the example's seed.mjs. Run by the SDK's
// vitest (sdk/js/vitest.config.ts includes the examples' tests), after
// `npm ci && npm run build` here.
//
// Screenshots of the main screens, 1280 and 390 px wide, go to
// web/test-artifacts/ (gitignored).
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { registerUser, startServer, totp, type AbeServer, type TestUser } from "../../../../sdk/js/test/harness.js";

const CHROMIUM = "/usr/bin/chromium";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"];
const EXAMPLE = fileURLToPath(new URL("../../", import.meta.url));
const DIST = fileURLToPath(new URL("../dist", import.meta.url));
const SHOTS = fileURLToPath(new URL("../test-artifacts", import.meta.url));
const WAIT = { timeout: 20_000, interval: 100 };

interface Seeded {
  accounts: { role: string; email: string; password: string; secret: string; lastStep: number }[];
  posts: { draft: string; hello: string; rules: string };
}

let srv: AbeServer;
let browser: Browser;
let seeded: Seeded;
let bob: TestUser;
let bobDraft = "";
const mod = { email: `mod-${Date.now()}@example.com`, password: `Tr0ub4dor-${Math.random().toString(36).slice(2)}-horse` };
/** What the user's page received from the API: every /api/ answer's body and every realtime frame. */
const userSaw: Promise<string>[] = [];
const modSaw: Promise<string>[] = [];
let user: Page;
let moderator: Page;

const nowStep = () => Math.floor(Date.now() / 30_000);

function account(role: string) {
  const a = seeded.accounts.find((x) => x.role === role);
  if (!a) throw new Error(`the seed made no ${role}`);
  return a;
}

async function shot(page: Page, name: string): Promise<void> {
  const size = page.viewportSize() ?? { width: 1280, height: 800 };
  await page.screenshot({ path: `${SHOTS}/${name}-1280.png`, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `${SHOTS}/${name}-390.png`, fullPage: true });
  await page.setViewportSize(size);
}

/** A page that keeps what the API sent it. */
async function open(saw: Promise<string>[]): Promise<Page> {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  watchBreakage(page);
  page.on("response", (r) => {
    if (new URL(r.url()).pathname.startsWith("/api/")) saw.push(r.text().catch(() => ""));
  });
  page.on("websocket", (ws) => ws.on("framereceived", (f) => saw.push(Promise.resolve(String(f.payload)))));
  await page.goto(srv.url + "/");
  return page;
}

async function logIn(page: Page, email: string, password: string, code?: () => string): Promise<void> {
  await page.getByRole("tab", { name: "Log in" }).click();
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  if (code) {
    await page.getByLabel(/Code from your authenticator app/).fill(code());
    await page.getByRole("button", { name: "Verify" }).click();
  }
  await page.getByRole("heading", { name: /You are signed in as/ }).waitFor();
}

const card = (page: Page, title: string) => page.locator("li.post").filter({ has: page.getByRole("link", { name: title, exact: true }) });
const section = (page: Page, name: string) => page.getByRole("region", { name });

async function status(id: string): Promise<string | undefined> {
  return (await srv.sql<{ status: string }>("SELECT status FROM posts WHERE id = $1", [id]))[0]?.status;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`the browser tests need Chromium at ${CHROMIUM}: apt-get install chromium`);
  if (!existsSync(`${DIST}/index.html`)) throw new Error(`build the app first: cd examples/blog/web && npm ci && npm run build (no ${DIST}/index.html)`);
  await mkdir(SHOTS, { recursive: true });
  // The example's own abe.yaml; the harness writes it to a directory of
  // its own, so the hosted directory is named by its full path.
  const yaml = await readFile(`${EXAMPLE}abe.yaml`, "utf8");
  const baseConfig = yaml.replace(/^(\s+dir:) web\/dist$/m, `$1 ${DIST}`);
  if (baseConfig === yaml) throw new Error("examples/blog/abe.yaml hosts no web/dist");
  srv = await startServer({ baseConfig });
  const run = promisify(execFile);
  const { stdout } = await run(process.execPath, [`${EXAMPLE}seed.mjs`, "--url", srv.url, "--abe", inject("abeBinary"), "--config", srv.configPath, "--json"], {
    env: { ...process.env, DATABASE_URL: srv.databaseUrl, ABE_DATABASE_URL: srv.databaseUrl },
  });
  seeded = JSON.parse(stdout) as Seeded;
  bob = await registerUser(srv);
  const d = await srv.api<{ id: string }>("POST", "/api/collections/posts/records", { title: "Bob's secret draft", body: "not yet", author: bob.id, author_email: bob.email }, bob.accessToken);
  bobDraft = d.body.id;
  const c = await srv.api("POST", "/api/collections/comments/records", { post: seeded.posts.rules, author: bob.id, body: "Buy my course, link in bio" }, bob.accessToken);
  if (d.status !== 201 || c.status !== 201) throw new Error(`bob's post and comment: ${d.status} ${c.status}`);
  await srv.cli(["users", "create", "--email", mod.email, "--password", mod.password, "--name", "Mona", "--role", "moderator"]);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
}, 180_000);

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

describe("the blog example", { timeout: 120_000 }, () => {
  it("shows a user the published posts and their own drafts, never another's draft", async () => {
    user = await open(userSaw);
    await user.getByRole("tab", { name: "Log in" }).waitFor();
    await shot(user, "sign-in");
    const u = account("user");
    await logIn(user, u.email, u.password);
    await card(user, "Hello from Uma").waitFor();
    await card(user, "House rules").waitFor();
    await section(user, "Your drafts").getByRole("link", { name: "Notes for a second post" }).waitFor();
    await expect.poll(() => user.locator("main").textContent(), WAIT).not.toContain("Bob's secret draft");
    expect(await section(user, "Drafts waiting for a moderator").count()).toBe(0);
    await shot(user, "user-posts");

    await user.goto(`${srv.url}/posts/${bobDraft}`);
    await user.getByText("This post does not exist, or it is a draft you may not see.").waitFor();
    await user.goto(srv.url + "/");
    await card(user, "Notes for a second post").waitFor();
  });

  it("refuses a user's publish in plain words, on a draft and on a new post", async () => {
    await card(user, "Notes for a second post").getByRole("button", { name: "Publish (moderators)" }).click();
    await expect.poll(() => card(user, "Notes for a second post").getByRole("alert").textContent(), WAIT).toContain("Only moderators can publish posts");
    expect(await status(seeded.posts.draft)).toBe("draft");

    await user.getByRole("link", { name: "Write a post" }).click();
    await user.getByLabel("Title").fill("Straight to the front page");
    await user.getByLabel("Text").fill("Users cannot publish, not even when they create.");
    await user.getByLabel(/Publish now/).check();
    await user.getByRole("button", { name: "Publish", exact: true }).click();
    await expect.poll(() => user.getByRole("alert").textContent(), WAIT).toContain("Only moderators can publish, so nothing was saved");
    expect(await srv.sql("SELECT id FROM posts WHERE title = 'Straight to the front page'")).toEqual([]);
    await shot(user, "editor-refused");
    await user.getByLabel(/Publish now/).uncheck();
    await user.getByRole("button", { name: "Save draft" }).click();
    await user.getByRole("heading", { name: "Straight to the front page" }).waitFor();
    await user.getByText("A draft: only you and moderators can see it.").waitFor();

    // Hiding another's comment is for moderators too.
    await user.goto(`${srv.url}/posts/${seeded.posts.hello}`);
    const welcome = user.locator("li.comment").filter({ hasText: "Welcome, Uma!" });
    await welcome.getByRole("button", { name: "Hide (moderators)" }).click();
    await expect.poll(() => welcome.getByRole("alert").textContent(), WAIT).toContain("Only moderators can hide or show comments");
    // Her own comment, which a moderator hid, she still reads, marked hidden.
    await user.locator("li.comment.hidden").filter({ hasText: "Cheap watches" }).waitFor();
    await shot(user, "user-post");
  });

  it("enrols a moderator in two-factor authentication with a code computed here, then shows every draft and publishes", async () => {
    await user.goto(srv.url + "/");
    await card(user, "Hello from Uma").waitFor();
    moderator = await open(modSaw);
    await logIn(moderator, mod.email, mod.password);
    // With a password alone the moderator role does not count.
    await moderator.getByRole("heading", { name: "You are signed in as a user" }).waitFor();
    await moderator.getByRole("note").getByText("Your moderator role counts only after a two-factor sign-in").waitFor();
    await card(moderator, "House rules").waitFor();
    expect(await moderator.locator("main").textContent()).not.toContain("Bob's secret draft");
    await moderator.getByRole("link", { name: "Set up two-factor authentication" }).click();
    await moderator.getByRole("button", { name: "Set up two-factor authentication" }).click();
    const secret = (await moderator.getByLabel("Secret key").textContent())?.trim() ?? "";
    expect(secret).toMatch(/^[A-Z2-7]{16,}$/);
    await moderator.getByRole("img", { name: "QR code for your authenticator app" }).waitFor();
    await shot(moderator, "mfa-setup");
    const step = nowStep();
    await moderator.getByLabel("Code from the app").fill(totp(secret, step));
    await moderator.getByRole("button", { name: "Turn on" }).click();
    await expect.poll(() => moderator.getByRole("list", { name: "Recovery codes" }).locator("li").count(), WAIT).toBe(10);
    await shot(moderator, "mfa-recovery-codes");
    await moderator.getByRole("button", { name: "Sign out, then sign in with a code" }).click();
    // A code is taken once: the next step (the server allows one step of drift).
    await logIn(moderator, mod.email, mod.password, () => totp(secret, step + 1));
    await moderator.getByRole("heading", { name: "You are signed in as a moderator" }).waitFor();

    const waiting = section(moderator, "Drafts waiting for a moderator");
    await waiting.getByRole("link", { name: "Bob's secret draft" }).waitFor();
    await waiting.getByRole("link", { name: "Notes for a second post" }).waitFor();
    await shot(moderator, "moderator-posts");
    await card(moderator, "Bob's secret draft").getByRole("button", { name: "Publish", exact: true }).click();
    await section(moderator, "Published").getByRole("link", { name: "Bob's secret draft" }).waitFor();
    expect(await status(bobDraft)).toBe("published");
    // The user's open page hears of it at once.
    await section(user, "Published").getByRole("link", { name: "Bob's secret draft" }).waitFor();
  });

  it("lets a moderator hide a comment, which the user's open page shows hidden at once", async () => {
    await user.goto(`${srv.url}/posts/${seeded.posts.rules}`);
    const spam = (p: Page) => p.locator("li.comment").filter({ hasText: /Buy my course|Hidden by a moderator/ });
    await spam(user).getByText("Buy my course, link in bio").waitFor();
    await moderator.goto(`${srv.url}/posts/${seeded.posts.rules}`);
    await spam(moderator).getByRole("button", { name: "Hide", exact: true }).click();
    await spam(moderator).locator(".status", { hasText: "hidden" }).waitFor();
    await spam(user).getByText("Hidden by a moderator.").waitFor();
    expect(await user.locator("main").textContent()).not.toContain("Buy my course");
    await shot(moderator, "moderator-post");
    await shot(user, "user-post-hidden");
  });

  it("shows an admin, after a two-factor sign-in, who wrote what", async () => {
    const a = account("admin");
    const admin = await open([]);
    await logIn(admin, a.email, a.password, () => totp(a.secret, Math.max(nowStep(), a.lastStep + 1)));
    await admin.getByRole("heading", { name: "You are signed in as an admin" }).waitFor();
    await card(admin, "Hello from Uma").getByText(account("user").email).waitFor();
    await shot(admin, "admin-posts");
  });

  it("never sent the user's page an email it may not read, in any answer or realtime event", async () => {
    const bodies = await Promise.all(userSaw);
    expect(bodies.join("\n")).toContain("House rules"); // the answers were seen
    for (const email of [account("moderator").email, account("admin").email, bob.email, mod.email]) {
      const leaks = bodies.filter((b) => b.includes(email));
      expect(leaks, `${email} in the user's answers`).toEqual([]);
    }
    // Nor the moderator's (moderators are not admins).
    const modBodies = await Promise.all(modSaw);
    expect(modBodies.join("\n")).toContain("Bob's secret draft");
    for (const email of [account("user").email, account("admin").email, bob.email]) expect(modBodies.filter((b) => b.includes(email))).toEqual([]);
  });

  it("broke no page: no script error, nothing the CSP refused", () => {
    expect(broken).toEqual([]);
  });
});

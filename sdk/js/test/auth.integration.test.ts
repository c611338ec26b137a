// Auth against a real `abe serve` (part B's harness): refresh under 20
// concurrent requests without a reuse event, across two "tabs" too, the
// 401 path with really expired tokens, and login with MFA.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { MemoryTokenStore, isMfaChallenge, type Session } from "../src/auth.js";
import { createClient, type AbeClient, type ClientOptions } from "../src/client.js";
import { UnauthorizedError } from "../src/errors.js";
import { registerUser, startServer, totp, type AbeServer } from "./harness.js";

let srv: AbeServer;
const clients: AbeClient[] = [];

beforeAll(async () => {
  const base = await readFile(join(inject("abeRepoRoot"), "examples/todo/abe.yaml"), "utf8");
  // Access tokens of 2 s, so that the 401 path meets really expired tokens.
  srv = await startServer({ baseConfig: base.replace(/^auth:\n/m, "auth:\n  access_token_ttl: 2s\n") });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await srv?.stop();
});

function client(opts: Partial<ClientOptions> = {}): AbeClient {
  const c = createClient({ url: srv.url, autoRefresh: false, coordination: "none", ...opts });
  clients.push(c);
  return c;
}

async function reuseEvents(): Promise<number> {
  const rows = await srv.sql<{ n: string }>("SELECT count(*) AS n FROM abe.security_events WHERE type = 'token_reuse'");
  return Number(rows[0]?.n);
}

/** The refresh tokens of the user's sessions: how many were ever issued. */
async function refreshTokens(userId: string): Promise<number> {
  const rows = await srv.sql<{ n: string }>("SELECT count(*) AS n FROM abe.refresh_tokens WHERE user_id = $1", [userId]);
  return Number(rows[0]?.n);
}

async function loggedIn(c: AbeClient): Promise<{ id: string; session: Session }> {
  const u = await registerUser(srv);
  const s = await c.auth.login({ email: u.email, password: u.password });
  if (isMfaChallenge(s)) throw new Error("unexpected MFA");
  return { id: u.id, session: s };
}

describe("refresh against a real server", () => {
  it("refreshes once for 20 concurrent requests near expiry, with no reuse event", async () => {
    let skew = 0;
    const c = client({ now: () => Date.now() + skew });
    const { id, session } = await loggedIn(c);
    const before = await refreshTokens(id);
    skew = session.expiresAt - Date.now(); // the client believes the token expires now
    const pages = await Promise.all(Array.from({ length: 20 }, () => c.records("todos").list()));
    expect(pages).toHaveLength(20);
    const after = (await c.auth.getSession())!;
    expect(after.refreshToken).not.toBe(session.refreshToken);
    expect(await refreshTokens(id)).toBe(before + 1); // one rotation, not twenty
    expect(await reuseEvents()).toBe(0);
  });

  it("refreshes once after 401s from really expired tokens and retries all 20 requests", async () => {
    const c = client({ refreshMargin: 0, now: () => 0 }); // never refreshes by the clock
    const { id } = await loggedIn(c);
    const before = await refreshTokens(id);
    await new Promise((r) => setTimeout(r, 3200));
    const pages = await Promise.all(Array.from({ length: 20 }, () => c.records("todos").list()));
    expect(pages).toHaveLength(20);
    expect(await refreshTokens(id)).toBe(before + 1);
    expect(await reuseEvents()).toBe(0);
    expect((await c.auth.me()).id).toBe(id);
  });

  it("two tabs sharing a session and a BroadcastChannel refresh it once", async () => {
    const name = `abe-int-${Date.now()}`;
    const a = client({ refreshMargin: 0, now: () => 0, coordination: "broadcast", channelName: name, tokenStore: new MemoryTokenStore() });
    const { id, session } = await loggedIn(a);
    const b = client({ refreshMargin: 0, now: () => 0, coordination: "broadcast", channelName: name, tokenStore: new MemoryTokenStore() });
    await b.auth.setSession(session);
    const before = await refreshTokens(id);
    await new Promise((r) => setTimeout(r, 3200));
    await Promise.all([...Array.from({ length: 10 }, () => a.records("todos").list()), ...Array.from({ length: 10 }, () => b.records("todos").list())]);
    expect(await refreshTokens(id)).toBe(before + 1);
    expect((await a.auth.getSession())?.refreshToken).toBe((await b.auth.getSession())?.refreshToken);
    expect(await reuseEvents()).toBe(0);
  });

  it("a presented-again refresh token after logout is refused and clears the session", async () => {
    const c = client({ refreshMargin: 0, now: () => 0 });
    const { session } = await loggedIn(c);
    await c.auth.logout();
    const c2 = client({ refreshMargin: 0, now: () => 0 });
    await c2.auth.setSession(session);
    await new Promise((r) => setTimeout(r, 3200));
    await expect(c2.records("todos").list()).rejects.toBeInstanceOf(UnauthorizedError);
    expect(await c2.auth.getSession()).toBeNull();
  });
});

describe("MFA against a real server", () => {
  it("login answers a challenge; verifyMfa with a code, then with a recovery code, completes it", async () => {
    const c = client();
    const u = await registerUser(srv);
    await c.auth.login({ email: u.email, password: u.password });
    const setup = await c.request<{ secret: string }>("POST", "/api/auth/mfa/totp/setup", {});
    const step = Math.floor(Date.now() / 30_000);
    const enabled = await c.request<{ recovery_codes: string[] }>("POST", "/api/auth/mfa/totp/enable", { code: totp(setup.data.secret, step) });
    expect(enabled.data.recovery_codes).toHaveLength(10);
    await c.auth.logout();

    const r = await c.auth.login({ email: u.email, password: u.password });
    if (!isMfaChallenge(r)) throw new Error("want an MFA challenge");
    expect(r.mfaToken).toBeTruthy();
    expect(await c.getAccessToken()).toBeNull();
    // A code is accepted once: the next step (one step of drift is allowed).
    const s = await c.auth.verifyMfa(r.mfaToken, { code: totp(setup.data.secret, step + 1) });
    expect(s.user.id).toBe(u.id);
    expect((await c.auth.me()).mfa_enabled).toBe(true);
    await c.auth.logout();

    const r2 = await c.auth.login({ email: u.email, password: u.password });
    if (!isMfaChallenge(r2)) throw new Error("want an MFA challenge");
    const s2 = await c.auth.verifyMfa(r2.mfaToken, { recoveryCode: enabled.data.recovery_codes[0]! });
    expect(s2.user.id).toBe(u.id);
  });
});

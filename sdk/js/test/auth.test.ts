import { afterEach, describe, expect, it, vi } from "vitest";
import { createClient, type AbeClient, type ClientOptions } from "../src/client.js";
import { LocalStorageTokenStore, MemoryTokenStore, isMfaChallenge, type AuthChangeEvent, type Session, type StorageLike } from "../src/auth.js";
import { UnauthorizedError } from "../src/errors.js";
import { FakeAuthServer as FakeServer } from "./auth-fake-server.js";

const clients: AbeClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  vi.useRealTimers();
});

let channel = 0;
function make(srv: FakeServer, opts: Record<string, unknown> = {}): AbeClient {
  const c = createClient({ url: "http://abe.test/", fetch: srv.fetch, autoRefresh: false, coordination: "none", ...opts } as ClientOptions);
  clients.push(c);
  return c;
}

const session = (a: ReturnType<FakeServer["issue"]>, expiresAt: number): Session => ({
  user: a.user,
  accessToken: a.access_token,
  refreshToken: a.refresh_token,
  expiresAt,
});

function refreshBodies(srv: FakeServer): unknown[] {
  return srv.requests.filter((r) => r.url.endsWith("/api/auth/refresh")).map((r) => (r.body as { refresh_token: string }).refresh_token);
}

describe("login, MFA, logout", () => {
  it("logs in, stores the session, sends the token, and logs out", async () => {
    const srv = new FakeServer();
    const c = make(srv);
    const events: AuthChangeEvent[] = [];
    c.onAuthChange((_s, e) => events.push(e));
    const s = await c.auth.login({ email: "a@example.com", password: "right" });
    expect(isMfaChallenge(s)).toBe(false);
    expect(await c.getAccessToken()).toBe("at1");
    expect((await c.auth.me()).email).toBe("a@example.com");
    expect(srv.requests.at(-1)?.headers.Authorization).toBe("Bearer at1");
    await c.auth.logout();
    expect(srv.requests.at(-1)?.body).toEqual({ refresh_token: "rt1" });
    expect(await c.getAccessToken()).toBeNull();
    expect(events).toEqual(["login", "logout"]);
  });

  it("turns bad credentials into UnauthorizedError without a refresh", async () => {
    const srv = new FakeServer();
    const c = make(srv);
    await expect(c.auth.login({ email: "a@example.com", password: "wrong" })).rejects.toBeInstanceOf(UnauthorizedError);
    expect(srv.refreshCalls).toBe(0);
  });

  it("answers an MFA challenge, completed by a code or a recovery code", async () => {
    const srv = new FakeServer();
    srv.mfa = true;
    const c = make(srv);
    const r = await c.auth.login({ email: "a@example.com", password: "right" });
    expect(r).toEqual({ mfaRequired: true, mfaToken: "mfa1", methods: ["totp", "recovery_code"], expiresIn: 300 });
    expect(await c.getAccessToken()).toBeNull();
    if (!isMfaChallenge(r)) throw new Error("want a challenge");
    await expect(c.auth.verifyMfa(r.mfaToken, { code: "000000" })).rejects.toBeInstanceOf(UnauthorizedError);
    const s = await c.auth.verifyMfa(r.mfaToken, { code: "123456" });
    expect(await c.getAccessToken()).toBe(s.accessToken);
    await c.auth.verifyMfa(r.mfaToken, { recoveryCode: "abcde-fghij" });
    expect(srv.requests.at(-1)?.body).toEqual({ mfa_token: "mfa1", recovery_code: "abcde-fghij" });
  });

  it("logoutAll ends every session and forgets this one", async () => {
    const srv = new FakeServer();
    const c = make(srv);
    await c.auth.login({ email: "a@example.com", password: "right" });
    await c.auth.logoutAll();
    expect(srv.requests.at(-1)?.url).toBe("http://abe.test/api/auth/logout-all");
    expect(await c.auth.getSession()).toBeNull();
  });
});

describe("refresh", () => {
  it("refreshes once before expiry for 20 concurrent requests", async () => {
    const srv = new FakeServer();
    let now = 1_000_000;
    const c = make(srv, { now: () => now });
    await c.auth.setSession(session(srv.issue(), now + 900_000));
    now += 850_000; // within the 60 s margin
    const pages = await Promise.all(Array.from({ length: 20 }, () => c.records("todos").list()));
    expect(srv.refreshCalls).toBe(1);
    expect(srv.reuseEvents).toBe(0);
    expect(new Set(pages.map((p) => p.items[0]?.token))).toEqual(new Set(["at2"]));
  });

  it("after a 401 for an expired token, refreshes once and retries each of 20 concurrent requests", async () => {
    const srv = new FakeServer();
    const c = make(srv);
    await c.auth.login({ email: "a@example.com", password: "right" });
    srv.expireAccessTokens();
    const tokens: Array<string | null> = [];
    c.auth.onTokenChange((t) => tokens.push(t));
    const pages = await Promise.all(Array.from({ length: 20 }, () => c.records("todos").list()));
    expect(pages).toHaveLength(20);
    expect(srv.refreshCalls).toBe(1);
    expect(srv.reuseEvents).toBe(0);
    expect(refreshBodies(srv)).toEqual(["rt1"]);
    expect(tokens).toEqual(["at2"]);
  });

  it("retries a request only once", async () => {
    const srv = new FakeServer();
    const c = make(srv);
    await c.auth.login({ email: "a@example.com", password: "right" });
    // Every token is refused, fresh ones too.
    const real = srv.fetch;
    srv.fetch = async (u, i) => {
      const r = await real(u, i);
      if (u.endsWith("/api/auth/refresh")) srv.expireAccessTokens();
      return r;
    };
    const c2 = make(srv);
    await c2.auth.setSession((await c.auth.getSession())!);
    srv.expireAccessTokens();
    await expect(c2.records("todos").list()).rejects.toBeInstanceOf(UnauthorizedError);
    expect(srv.refreshCalls).toBe(1);
  });

  it("clears the session when the server refuses the refresh token", async () => {
    const srv = new FakeServer();
    const c = make(srv);
    await c.auth.setSession({ ...session(srv.issue(), Date.now() + 900_000), refreshToken: "stolen" });
    srv.expireAccessTokens();
    const events: AuthChangeEvent[] = [];
    c.onAuthChange((_s, e) => events.push(e));
    await expect(c.records("todos").list()).rejects.toBeInstanceOf(UnauthorizedError);
    expect(await c.auth.getSession()).toBeNull();
    expect(events).toEqual(["logout"]);
  });

  it("keeps the session when the refresh cannot reach the server", async () => {
    const srv = new FakeServer();
    let now = 0;
    const c = make(srv, {
      now: () => now,
      fetch: async (u: string, i: RequestInit) => {
        if (u.endsWith("/refresh")) throw new TypeError("fetch failed");
        return srv.fetch(u, i);
      },
    });
    const s = session(srv.issue(), 900_000);
    await c.auth.setSession(s);
    now = 899_000;
    expect(await c.getAccessToken()).toBe(s.accessToken); // offline: the token it has
    expect(await c.auth.getSession()).toEqual(s);
  });

  it("refreshes on a timer shortly before expiry", async () => {
    vi.useFakeTimers();
    const srv = new FakeServer();
    srv.refreshDelay = 0;
    const c = make(srv, { autoRefresh: true, now: () => Date.now() });
    const tokens: Array<string | null> = [];
    c.auth.onTokenChange((t) => tokens.push(t));
    await c.auth.login({ email: "a@example.com", password: "right" });
    await vi.advanceTimersByTimeAsync(839_000);
    expect(srv.refreshCalls).toBe(0);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(srv.refreshCalls).toBe(1);
    expect(tokens).toEqual(["at1", "at2"]);
  });
});

describe("single-flight across clients", () => {
  async function twoClients(coordination: string, stores: [MemoryTokenStore | LocalStorageTokenStore, MemoryTokenStore | LocalStorageTokenStore], mustSucceed = true) {
    const srv = new FakeServer();
    const name = `abe-test-${++channel}-${coordination}`;
    const a = make(srv, { coordination, channelName: name, tokenStore: stores[0] });
    const b = make(srv, { coordination, channelName: name, tokenStore: stores[1] });
    const s = session(srv.issue(), Date.now() + 900_000);
    await stores[0].set(s);
    await stores[1].set(s);
    srv.expireAccessTokens();
    const settled = await Promise.allSettled([
      ...Array.from({ length: 10 }, () => a.records("todos").list()),
      ...Array.from({ length: 10 }, () => b.records("todos").list()),
    ]);
    if (mustSucceed) for (const r of settled) if (r.status === "rejected") throw r.reason;
    return { srv, a, b, all: settled, settled };
  }

  it("two tabs sharing a BroadcastChannel name refresh once (separate memory stores)", async () => {
    const { srv, a, b, all } = await twoClients("broadcast", [new MemoryTokenStore(), new MemoryTokenStore()]);
    expect(all).toHaveLength(20);
    expect(srv.refreshCalls).toBe(1);
    expect(srv.reuseEvents).toBe(0);
    expect(refreshBodies(srv)).toEqual(["rt1"]);
    expect((await a.auth.getSession())?.refreshToken).toBe("rt2");
    expect((await b.auth.getSession())?.refreshToken).toBe("rt2");
  });

  it("two tabs sharing a BroadcastChannel name and localStorage refresh once", async () => {
    const m = new Map<string, string>();
    const storage: StorageLike = { getItem: (k) => m.get(k) ?? null, setItem: (k, v) => void m.set(k, v), removeItem: (k) => void m.delete(k) };
    const { srv } = await twoClients("broadcast", [new LocalStorageTokenStore("s", storage), new LocalStorageTokenStore("s", storage)]);
    expect(srv.refreshCalls).toBe(1);
    expect(srv.reuseEvents).toBe(0);
    expect(JSON.parse(m.get("s")!).refreshToken).toBe("rt2");
  });

  it("two clients of one process refresh once with the memory fallback", async () => {
    const { srv } = await twoClients("memory", [new MemoryTokenStore(), new MemoryTokenStore()]);
    expect(srv.refreshCalls).toBe(1);
    expect(srv.reuseEvents).toBe(0);
  });

  it("without coordination two clients present the same token twice (what the others prevent)", async () => {
    const { srv, settled } = await twoClients("none", [new MemoryTokenStore(), new MemoryTokenStore()], false);
    expect(srv.refreshCalls).toBe(2);
    expect(srv.reuseEvents).toBe(1);
    expect(settled.some((r) => r.status === "rejected")).toBe(true);
  });

  it("a login in one tab reaches the other", async () => {
    const srv = new FakeServer();
    const name = `abe-test-${++channel}-login`;
    const a = make(srv, { coordination: "broadcast", channelName: name });
    const b = make(srv, { coordination: "broadcast", channelName: name });
    const seen = new Promise<Session | null>((r) => b.onAuthChange((s, e) => e === "external" && r(s)));
    await a.auth.login({ email: "a@example.com", password: "right" });
    expect((await seen)?.accessToken).toBe("at1");
    expect(await b.getAccessToken()).toBe("at1");
  });
});

describe("token stores", () => {
  it("LocalStorageTokenStore round-trips a session and forgets it", () => {
    const m = new Map<string, string>();
    const st = new LocalStorageTokenStore("k", { getItem: (k) => m.get(k) ?? null, setItem: (k, v) => void m.set(k, v), removeItem: (k) => void m.delete(k) });
    const s: Session = { user: { id: "u", email: "e", name: "", email_verified: false, mfa_enabled: false, roles: [] }, accessToken: "a", refreshToken: "r", expiresAt: 1 };
    st.set(s);
    expect(st.get()).toEqual(s);
    m.set("k", "{broken");
    expect(st.get()).toBeNull();
    st.set(null);
    expect(m.has("k")).toBe(false);
  });

  it("onAuthChange returns an unsubscribe function", async () => {
    const srv = new FakeServer();
    const c = make(srv);
    const l = vi.fn();
    const off = c.onAuthChange(l);
    await c.auth.login({ email: "a@example.com", password: "right" });
    off();
    await c.auth.logout();
    expect(l).toHaveBeenCalledTimes(1);
  });
});

// A fake abe for the auth unit tests (part A): auth endpoints with
// refresh rotation and reuse detection (no grace window, so any second
// use counts), and one protected records endpoint. Its fetch plugs into
// createClient.
import type { FetchLike } from "../src/http.js";

interface Family {
  current: string;
  used: Set<string>;
}

export const user = { id: "u1", email: "a@example.com", name: "A", email_verified: true, mfa_enabled: false, roles: ["user"] };

export class FakeAuthServer {
  refreshCalls = 0;
  reuseEvents = 0;
  requests: Array<{ method: string; url: string; headers: Record<string, string>; body: unknown }> = [];
  /** Delay of a refresh answer, ms. */
  refreshDelay = 20;
  mfa = false;
  private n = 0;
  private families = new Map<string, Family>();
  private access = new Set<string>();

  /** Issues a token answer (a new family). */
  issue(): { user: typeof user; access_token: string; refresh_token: string; token_type: string; expires_in: number } {
    const rt = `rt${++this.n}`;
    const at = `at${this.n}`;
    this.families.set(rt, { current: rt, used: new Set() });
    this.access.add(at);
    return { user, access_token: at, refresh_token: rt, token_type: "Bearer", expires_in: 900 };
  }

  /** Every access token issued so far stops working (they expired). */
  expireAccessTokens(): void {
    this.access.clear();
  }

  private json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
    if (status === 204) return new Response(null, { status, headers });
    return new Response(JSON.stringify(body), {
      status,
      headers: { "Content-Type": status >= 400 ? "application/problem+json" : "application/json", ...headers },
    });
  }

  fetch: FetchLike = async (input, init) => {
    const url = new URL(input);
    const headers = { ...((init.headers ?? {}) as Record<string, string>) };
    const body = typeof init.body === "string" ? (JSON.parse(init.body) as Record<string, unknown>) : undefined;
    const method = init.method ?? "GET";
    this.requests.push({ method, url: input, headers, body });
    const bearer = headers.Authorization?.replace(/^Bearer /, "");
    const authed = bearer !== undefined && this.access.has(bearer);
    const unauthorized = () =>
      this.json(401, { title: "Unauthorized", status: 401, detail: "the token expired" }, { "WWW-Authenticate": 'Bearer error="invalid_token"' });
    switch (`${method} ${url.pathname}`) {
      case "POST /api/auth/login":
        if (body?.password !== "right") return this.json(401, { status: 401, detail: "wrong email or password" });
        if (this.mfa) return this.json(200, { mfa_required: true, mfa_token: "mfa1", methods: ["totp", "recovery_code"], expires_in: 300 });
        return this.json(200, this.issue());
      case "POST /api/auth/register":
        return this.json(201, this.issue());
      case "POST /api/auth/mfa/verify":
        if (body?.mfa_token !== "mfa1" || !(body.code === "123456" || body.recovery_code === "abcde-fghij"))
          return this.json(401, { status: 401, detail: "wrong code" });
        return this.json(200, this.issue());
      case "POST /api/auth/refresh": {
        this.refreshCalls++;
        await new Promise((r) => setTimeout(r, this.refreshDelay));
        const rt = String(body?.refresh_token);
        const fam = this.families.get(rt);
        if (!fam) return unauthorized();
        if (fam.used.has(rt) || fam.current !== rt) {
          this.reuseEvents++;
          for (const [k, f] of this.families) if (f === fam) this.families.delete(k);
          return unauthorized();
        }
        const next = this.issue();
        fam.used.add(rt);
        fam.current = next.refresh_token;
        this.families.set(next.refresh_token, fam);
        return this.json(200, next);
      }
      case "POST /api/auth/logout":
        return this.json(204, null);
      case "POST /api/auth/logout-all":
        return authed ? this.json(204, null) : unauthorized();
      case "GET /api/auth/me":
        return authed ? this.json(200, user) : unauthorized();
      case "GET /api/collections/todos/records":
        return authed ? this.json(200, { items: [{ id: "t1", version: 1, token: bearer }], next_cursor: null }) : unauthorized();
    }
    return this.json(404, { status: 404, detail: "no such route" });
  };
}

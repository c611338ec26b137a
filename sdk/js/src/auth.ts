// Accounts: register, login (with the MFA challenge), logout; the token
// store; refresh before expiry, single-flight in a client and across tabs.

import { createCoordinator, type CoordinationMode, type RefreshCoordinator } from "./coordinator.js";
import { AbeError } from "./errors.js";
import type { CallOptions, HttpTransport, RequestOptions, TokenProvider } from "./http.js";
import { unref } from "./locks.js";

/** An account, as the server shows it. */
export interface AuthUser {
  id: string;
  email: string;
  name: string;
  email_verified: boolean;
  mfa_enabled: boolean;
  roles: string[];
  version?: number;
  created_at?: string;
  updated_at?: string;
}

/** A logged-in session: what a token store keeps. */
export interface Session {
  user: AuthUser;
  accessToken: string;
  refreshToken: string;
  /** When the access token expires, in ms since the epoch (client clock). */
  expiresAt: number;
}

/** A login that needs a second factor: complete it with {@link AuthClient.verifyMfa}. */
export interface MfaChallenge {
  mfaRequired: true;
  mfaToken: string;
  /** The factors the account has, like ["totp", "recovery_code"]. */
  methods: string[];
  /** Seconds the challenge lasts. */
  expiresIn: number;
}

/** Whether a login answer is an MFA challenge rather than a session. */
export function isMfaChallenge(r: Session | MfaChallenge): r is MfaChallenge {
  return (r as MfaChallenge).mfaRequired === true;
}

/** A register answer when the server requires email verification first. */
export interface VerificationSent {
  status: "verification_sent";
}

/**
 * Where the session lives. `get` and `set` may be sync or async; an
 * optional `subscribe` reports changes made elsewhere (another tab).
 */
export interface TokenStore {
  get(): Session | null | Promise<Session | null>;
  set(session: Session | null): void | Promise<void>;
  subscribe?(listener: (session: Session | null) => void): () => void;
}

/** Keeps the session in memory (the default): gone on reload. */
export class MemoryTokenStore implements TokenStore {
  private session: Session | null = null;
  get(): Session | null {
    return this.session;
  }
  set(session: Session | null): void {
    this.session = session;
  }
}

/** The part of the Web Storage API the localStorage store needs. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * Keeps the session in localStorage (or another Storage) under `key`, so
 * it survives reloads and is shared by the tabs of the origin; changes
 * from other tabs arrive through the `storage` event.
 */
export class LocalStorageTokenStore implements TokenStore {
  private readonly storage: StorageLike;
  constructor(
    private readonly key = "abe.session",
    storage?: StorageLike,
  ) {
    const s = storage ?? (globalThis as { localStorage?: StorageLike }).localStorage;
    if (!s) throw new Error("abe: localStorage is not available here");
    this.storage = s;
  }
  get(): Session | null {
    const raw = this.storage.getItem(this.key);
    if (!raw) return null;
    try {
      return JSON.parse(raw) as Session;
    } catch {
      return null;
    }
  }
  set(session: Session | null): void {
    if (session) this.storage.setItem(this.key, JSON.stringify(session));
    else this.storage.removeItem(this.key);
  }
  subscribe(listener: (session: Session | null) => void): () => void {
    const w = globalThis as { addEventListener?: typeof addEventListener; removeEventListener?: typeof removeEventListener };
    if (typeof w.addEventListener !== "function") return () => {};
    const onStorage = (e: Event) => {
      if ((e as StorageEvent).key === this.key || (e as StorageEvent).key === null) listener(this.get());
    };
    w.addEventListener("storage", onStorage);
    return () => w.removeEventListener?.("storage", onStorage);
  }
}

/** What changed: a login, a refresh, a logout (or a refused refresh), or a change from another tab. */
export type AuthChangeEvent = "login" | "refresh" | "logout" | "external";

/** Listens to session changes; `session` is null after a logout. */
export type AuthChangeListener = (session: Session | null, event: AuthChangeEvent) => void;

/** Options of the auth part of {@link createClient}. */
export interface AuthOptions {
  /** Where the session lives; memory by default. */
  tokenStore?: TokenStore;
  /** Refresh this many seconds before the access token expires (default 60). */
  refreshMargin?: number;
  /** Refresh on a timer before expiry, not only when a request needs a token (default true). */
  autoRefresh?: boolean;
  /** How refreshes are coordinated between clients and tabs (default "auto"), or your own coordinator. */
  coordination?: CoordinationMode | RefreshCoordinator;
  /** The channel and lock name (default `abe-auth:<url>`). */
  channelName?: string;
  /** The clock, in ms (for tests). */
  now?: () => number;
}

interface TokenAnswer {
  user: AuthUser;
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
}

interface MfaAnswer {
  mfa_required: true;
  mfa_token: string;
  methods?: string[];
  expires_in?: number;
}


/**
 * The auth part of a client (`client.auth`). It is the transport's token
 * provider: every request gets a fresh access token, refreshed once
 * (single-flight) shortly before it expires or after a 401.
 */
export class AuthClient implements TokenProvider {
  private readonly store: TokenStore;
  private readonly margin: number;
  private readonly autoRefresh: boolean;
  private readonly now: () => number;
  private readonly coordinator: RefreshCoordinator;
  private readonly listeners = new Set<AuthChangeListener>();
  private readonly unsubs: Array<() => void> = [];
  private session: Session | null | undefined; // undefined: not loaded yet
  private inflight: Promise<Session | null> | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(
    private readonly http: HttpTransport,
    opts: AuthOptions = {},
  ) {
    this.store = opts.tokenStore ?? new MemoryTokenStore();
    this.margin = (opts.refreshMargin ?? 60) * 1000;
    this.autoRefresh = opts.autoRefresh ?? true;
    this.now = opts.now ?? Date.now;
    const name = opts.channelName ?? `abe-auth:${http.url}`;
    const c = opts.coordination ?? "auto";
    this.coordinator = typeof c === "string" ? createCoordinator(c, name) : c;
    this.unsubs.push(this.coordinator.subscribe((s) => void this.external(s, true)));
    if (this.store.subscribe) this.unsubs.push(this.store.subscribe((s) => void this.external(s, false)));
  }

  private async external(s: Session | null, save: boolean): Promise<void> {
    const cur = await this.load();
    if (cur?.accessToken === s?.accessToken) return;
    if (save) await this.store.set(s);
    this.session = s;
    this.schedule();
    this.emit("external");
  }

  private emit(event: AuthChangeEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(this.session ?? null, event);
      } catch {
        // a listener's failure is its own
      }
    }
  }

  private async load(): Promise<Session | null> {
    if (this.session === undefined) {
      this.session = (await this.store.get()) ?? null;
      this.schedule();
    }
    return this.session;
  }

  private async save(s: Session | null, event: AuthChangeEvent, publish = true): Promise<void> {
    this.session = s;
    await this.store.set(s);
    this.schedule();
    if (publish) this.coordinator.publish(s);
    this.emit(event);
  }

  private schedule(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const s = this.session;
    if (!this.autoRefresh || !s || this.closed) return;
    const delay = Math.max(1000, s.expiresAt - this.margin - this.now());
    if (delay > 2 ** 31 - 1) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.refresh().catch(() => this.schedule());
    }, delay);
    unref(this.timer);
  }

  private toSession(a: TokenAnswer): Session {
    return { user: a.user, accessToken: a.access_token, refreshToken: a.refresh_token, expiresAt: this.now() + a.expires_in * 1000 };
  }

  private post<T>(path: string, body: unknown, opts: CallOptions & { auth?: boolean } = {}): Promise<T> {
    const ro: RequestOptions = { auth: opts.auth ?? false, signal: opts.signal };
    return this.http.request<T>("POST", `/api/auth/${path}`, body, ro).then((r) => r.data);
  }

  /** The current session (loaded from the store), or null. */
  getSession(): Promise<Session | null> {
    return this.load();
  }

  /** Registers an account and logs it in (or, with email verification on, answers `{status: "verification_sent"}`). */
  async register(input: { email: string; password: string; name?: string }, opts: CallOptions = {}): Promise<Session | VerificationSent> {
    const a = await this.post<TokenAnswer | VerificationSent>("register", input, opts);
    if ("status" in a) return a;
    const s = this.toSession(a);
    await this.save(s, "login");
    return s;
  }

  /** Logs in: a session, or an {@link MfaChallenge} for an account with two-factor authentication. */
  async login(input: { email: string; password: string }, opts: CallOptions = {}): Promise<Session | MfaChallenge> {
    const a = await this.post<TokenAnswer | MfaAnswer>("login", input, opts);
    if ("mfa_required" in a && a.mfa_required)
      return { mfaRequired: true, mfaToken: a.mfa_token, methods: a.methods ?? [], expiresIn: a.expires_in ?? 0 };
    const s = this.toSession(a as TokenAnswer);
    await this.save(s, "login");
    return s;
  }

  /** Completes an MFA login with a TOTP code or a recovery code. */
  async verifyMfa(mfaToken: string, factor: { code: string } | { recoveryCode: string }, opts: CallOptions = {}): Promise<Session> {
    const body = "code" in factor ? { mfa_token: mfaToken, code: factor.code } : { mfa_token: mfaToken, recovery_code: factor.recoveryCode };
    const s = this.toSession(await this.post<TokenAnswer>("mfa/verify", body, opts));
    await this.save(s, "login");
    return s;
  }

  /** Ends this session on the server (best effort) and forgets it here. */
  async logout(opts: CallOptions = {}): Promise<void> {
    const s = await this.load();
    try {
      if (s) await this.post("logout", { refresh_token: s.refreshToken }, { ...opts, auth: true });
    } catch (e) {
      if (!(e instanceof AbeError)) throw e; // aborted
    } finally {
      if (!opts.signal?.aborted) await this.save(null, "logout");
    }
  }

  /** Ends every session of the account and forgets this one. */
  async logoutAll(opts: CallOptions = {}): Promise<void> {
    await this.post("logout-all", undefined, { ...opts, auth: true });
    await this.save(null, "logout");
  }

  /** The logged-in account, as the server has it now. */
  async me(opts: CallOptions = {}): Promise<AuthUser> {
    return (await this.http.request<AuthUser>("GET", "/api/auth/me", undefined, { signal: opts.signal })).data;
  }

  /** Uses a session obtained elsewhere (a server-side login, tests). */
  async setSession(s: Session | null): Promise<void> {
    await this.save(s, s ? "login" : "logout");
  }

  /**
   * Refreshes the session now (single-flight: concurrent calls, and the
   * other tabs, share one refresh). Resolves with the new session, or
   * null when there is none or the server refused the refresh token (the
   * session is then cleared). Network errors reject and keep the session.
   */
  refresh(): Promise<Session | null> {
    if (!this.inflight) {
      this.inflight = this.doRefresh().finally(() => {
        this.inflight = null;
      });
    }
    return this.inflight;
  }

  private async doRefresh(): Promise<Session | null> {
    const s = await this.load();
    if (!s) return null;
    const rt = s.refreshToken;
    const next = await this.coordinator.run(rt, async () => {
      // Under the lock: another tab with a shared store may have rotated it.
      const stored = (await this.store.get()) ?? null;
      if (stored && stored.refreshToken !== rt) return stored;
      try {
        return this.toSession(await this.post<TokenAnswer>("refresh", { refresh_token: rt }));
      } catch (e) {
        if (e instanceof AbeError && e.status === 401) return null;
        throw e;
      }
    });
    const cur = this.session;
    if (cur && cur.refreshToken !== rt) return cur; // changed meanwhile (a login)
    if (next === null) await this.save(null, "logout", false);
    else if (next.accessToken !== cur?.accessToken) await this.save(next, "refresh", false);
    return next;
  }

  /**
   * A valid access token, refreshed first when it expires within the
   * margin; null when logged out. The realtime client uses it, with
   * {@link onAuthChange}, to re-authenticate its socket.
   */
  async getAccessToken(_signal?: AbortSignal): Promise<string | null> {
    let s = await this.load();
    if (s && this.now() >= s.expiresAt - this.margin) {
      try {
        s = await this.refresh();
      } catch {
        // Offline: send the token we have; the server decides.
      }
    }
    return s?.accessToken ?? null;
  }

  /** @internal The transport calls this after a 401 for `token`. */
  async onUnauthorized(token: string): Promise<boolean> {
    const s = await this.load();
    if (!s) return false;
    if (s.accessToken !== token) return true; // already refreshed
    try {
      return (await this.refresh()) !== null;
    } catch {
      return false;
    }
  }

  /** Calls `listener` on every login, refresh and logout; returns an unsubscribe function. */
  onAuthChange(listener: AuthChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Calls `listener` with the new access token (null after a logout) whenever it changes. */
  onTokenChange(listener: (token: string | null) => void): () => void {
    let last: string | null | undefined = this.session === undefined ? undefined : (this.session?.accessToken ?? null);
    return this.onAuthChange((s) => {
      const t = s?.accessToken ?? null;
      if (t !== last) listener((last = t));
    });
  }

  /** Stops the refresh timer and releases the cross-tab channel. */
  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    for (const u of this.unsubs) u();
    this.coordinator.close();
    this.listeners.clear();
  }
}

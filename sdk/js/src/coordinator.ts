// Single-flight refresh across clients: in one process (memory), across
// browser tabs (Web Locks, or a claim protocol over BroadcastChannel), so
// that a rotated refresh token is never presented twice.

import type { Session } from "./auth.js";
import { openPort, unref, webLocks, type Port } from "./locks.js";

/**
 * Runs a token refresh once among every client sharing a name (the tabs
 * of one origin, or the clients of one process): the others get the
 * same result instead of presenting the same refresh token again.
 */
export interface RefreshCoordinator {
  /**
   * Runs `refresh` for the refresh token `rt` unless another participant
   * is doing it or has done it; resolves with the new session (null when
   * the server refused the token). `refresh` runs while holding the
   * cross-tab lock, so it should re-read a shared store first.
   */
  run(rt: string, refresh: () => Promise<Session | null>): Promise<Session | null>;
  /** Tells the other participants of a login, logout or refresh. */
  publish(session: Session | null): void;
  /** Listens to what other participants publish; returns an unsubscribe function. */
  subscribe(listener: (session: Session | null) => void): () => void;
  /** Releases the channel. */
  close(): void;
}

/** Which coordination to use; "auto" picks Web Locks, else BroadcastChannel in a browser, else memory. */
export type CoordinationMode = "auto" | "web-locks" | "broadcast" | "memory" | "none";

type Listener = (session: Session | null) => void;

/** Remembers the last few results by refresh token. */
class Results {
  private readonly m = new Map<string, Session | null>();
  get(rt: string): Session | null | undefined {
    return this.m.get(rt);
  }
  has(rt: string): boolean {
    return this.m.has(rt);
  }
  put(rt: string, s: Session | null): void {
    this.m.set(rt, s);
    if (this.m.size > 16) this.m.delete(this.m.keys().next().value as string);
  }
}

interface Shared {
  inflight: Map<string, Promise<Session | null>>;
  results: Results;
  listeners: Set<Listener>;
}
const registry = new Map<string, Shared>();

/** Coordinates the clients of one JavaScript realm that share `name`. */
export class MemoryCoordinator implements RefreshCoordinator {
  private readonly shared: Shared;
  private readonly own = new Set<Listener>();
  constructor(name: string) {
    let s = registry.get(name);
    if (!s) registry.set(name, (s = { inflight: new Map(), results: new Results(), listeners: new Set() }));
    this.shared = s;
  }
  run(rt: string, refresh: () => Promise<Session | null>): Promise<Session | null> {
    const { inflight, results } = this.shared;
    if (results.has(rt)) return Promise.resolve(results.get(rt) ?? null);
    let p = inflight.get(rt);
    if (!p) {
      p = refresh().then(
        (s) => {
          results.put(rt, s);
          inflight.delete(rt);
          return s;
        },
        (e: unknown) => {
          inflight.delete(rt);
          throw e;
        },
      );
      inflight.set(rt, p);
    }
    return p;
  }
  publish(session: Session | null): void {
    for (const l of this.shared.listeners) if (!this.own.has(l)) l(session);
  }
  subscribe(listener: Listener): () => void {
    this.shared.listeners.add(listener);
    this.own.add(listener);
    return () => {
      this.shared.listeners.delete(listener);
      this.own.delete(listener);
    };
  }
  close(): void {
    for (const l of this.own) this.shared.listeners.delete(l);
    this.own.clear();
  }
}

type Msg =
  | { t: "claim"; id: string; rt: string }
  | { t: "busy"; id: string; rt: string }
  | { t: "done"; id: string; rt: string; session: Session | null }
  | { t: "failed"; id: string; rt: string }
  | { t: "session"; id: string; session: Session | null };

/** Options of {@link BroadcastCoordinator}. */
export interface BroadcastCoordinatorOptions {
  /** How long a claim waits for competing claims, in ms (default 50). */
  claimWindow?: number;
  /** How long to wait for another tab's refresh before doing it here, in ms (default 15 000). */
  waitTimeout?: number;
  /** Use Web Locks for the refresh when present (default true). */
  webLocks?: boolean;
}

/**
 * Coordinates the tabs of one origin. With Web Locks the refresh runs
 * under a named lock (and the result is shared on the channel); without,
 * a tab claims the refresh token on the BroadcastChannel, waits a short
 * window for competing claims (the lowest id wins; a tab already
 * refreshing answers "busy"), and the others wait for its result.
 */
export class BroadcastCoordinator implements RefreshCoordinator {
  private readonly port: Port;
  private readonly id = Math.random().toString(36).slice(2) + Date.now().toString(36);
  private readonly results = new Results();
  private readonly mine = new Map<string, Promise<Session | null>>();
  /** The refresh tokens this tab is refreshing now (it answers claims with "busy"). */
  private readonly executing = new Set<string>();
  private readonly waiters = new Map<string, Set<(m: Msg) => void>>();
  private readonly listeners = new Set<Listener>();
  private readonly locks: LockManager | undefined;
  private readonly claimWindow: number;
  private readonly waitTimeout: number;

  constructor(
    private readonly name: string,
    opts: BroadcastCoordinatorOptions = {},
  ) {
    this.claimWindow = opts.claimWindow ?? 50;
    this.waitTimeout = opts.waitTimeout ?? 15_000;
    this.locks = opts.webLocks === false ? undefined : webLocks();
    this.port = openPort(name, false, (m) => this.onMessage(m as Msg));
  }

  private post(m: Msg): void {
    this.port.post(m);
  }

  private onMessage(m: Msg): void {
    if (!m || typeof m !== "object" || m.id === this.id) return;
    if (m.t === "session") {
      for (const l of this.listeners) l(m.session);
      return;
    }
    if (m.t === "claim" && this.executing.has(m.rt)) this.post({ t: "busy", id: this.id, rt: m.rt });
    if (m.t === "done") this.results.put(m.rt, m.session);
    for (const w of this.waiters.get(m.rt) ?? []) w(m);
  }

  private watch(rt: string, fn: (m: Msg) => void): () => void {
    let s = this.waiters.get(rt);
    if (!s) this.waiters.set(rt, (s = new Set()));
    s.add(fn);
    return () => {
      s.delete(fn);
      if (s.size === 0) this.waiters.delete(rt);
    };
  }

  run(rt: string, refresh: () => Promise<Session | null>): Promise<Session | null> {
    if (this.results.has(rt)) return Promise.resolve(this.results.get(rt) ?? null);
    let p = this.mine.get(rt);
    if (!p) {
      p = (this.locks ? this.runLocked(rt, refresh) : this.runClaimed(rt, refresh)).finally(() => this.mine.delete(rt));
      this.mine.set(rt, p);
    }
    return p;
  }

  private async execute(rt: string, refresh: () => Promise<Session | null>): Promise<Session | null> {
    this.executing.add(rt);
    try {
      const s = await refresh();
      this.results.put(rt, s);
      this.post({ t: "done", id: this.id, rt, session: s });
      return s;
    } catch (e) {
      this.post({ t: "failed", id: this.id, rt });
      throw e;
    } finally {
      this.executing.delete(rt);
    }
  }

  private async runLocked(rt: string, refresh: () => Promise<Session | null>): Promise<Session | null> {
    return await this.locks!.request(`${this.name}:refresh`, async () => {
      if (this.results.has(rt)) return this.results.get(rt) ?? null;
      return this.execute(rt, refresh);
    });
  }

  private async runClaimed(rt: string, refresh: () => Promise<Session | null>): Promise<Session | null> {
    // Claim, and listen for competing claims, "busy" answers and results.
    const st: { lose: boolean; failed: boolean; result?: { s: Session | null }; wake?: () => void } = { lose: false, failed: false };
    const stop = this.watch(rt, (m) => {
      if (m.t === "busy" || (m.t === "claim" && m.id < this.id)) st.lose = true;
      else if (m.t === "done") st.result = { s: m.session };
      else if (m.t === "failed") st.failed = true;
      else return;
      st.wake?.();
    });
    try {
      this.post({ t: "claim", id: this.id, rt });
      await new Promise<void>((r) => setTimeout(r, this.claimWindow));
      if (st.result) return st.result.s;
      if (!st.lose) return await this.execute(rt, refresh);
      // Another tab refreshes: wait for its answer.
      const deadline = Date.now() + this.waitTimeout;
      while (!st.result && !st.failed && Date.now() < deadline) {
        await new Promise<void>((r) => {
          const t = setTimeout(r, Math.max(0, deadline - Date.now()));
          unref(t);
          st.wake = () => {
            clearTimeout(t);
            r();
          };
        });
      }
      const res = st.result as { s: Session | null } | undefined;
      if (res) return res.s;
      // It failed or went away: do it here (the server's grace window
      // covers a refresh the other tab sent but never reported).
      return await this.execute(rt, refresh);
    } finally {
      stop();
    }
  }

  publish(session: Session | null): void {
    this.post({ t: "session", id: this.id, session });
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.listeners.clear();
    this.port.close();
  }
}

/** No coordination beyond the client itself. */
class NoCoordinator implements RefreshCoordinator {
  run(_rt: string, refresh: () => Promise<Session | null>): Promise<Session | null> {
    return refresh();
  }
  publish(): void {}
  subscribe(): () => void {
    return () => {};
  }
  close(): void {}
}

/** Makes the coordinator a mode asks for, on the channel `name`. */
export function createCoordinator(mode: CoordinationMode, name: string): RefreshCoordinator {
  const hasBC = typeof BroadcastChannel === "function";
  const inBrowser = typeof (globalThis as { document?: unknown }).document !== "undefined";
  if (mode === "auto") mode = hasBC && (webLocks() !== undefined || inBrowser) ? "broadcast" : "memory";
  if (mode === "web-locks" || mode === "broadcast") {
    if (!hasBC) return new MemoryCoordinator(name);
    return new BroadcastCoordinator(name, { webLocks: mode === "web-locks" || webLocks() !== undefined });
  }
  if (mode === "memory") return new MemoryCoordinator(name);
  return new NoCoordinator();
}

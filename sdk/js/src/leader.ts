// One connection per browser: the tabs of an origin elect a leader, which
// holds the WebSocket and runs the write queue; the other tabs reach it
// over a TabBus. Web Locks where present (the browser releases a closed or
// crashed tab's lock), else heartbeats over BroadcastChannel, else (Node,
// tests) the handles of one realm.

import type { QueuedWrite, WriteOutcome } from "./queue.js";
import { openPort, unref, webLocks } from "./locks.js";
import type { RealtimeNotice, RecordData } from "./realtime.js";

/** How tabs elect: "auto" picks Web Locks, else BroadcastChannel, else memory (one realm). */
export type LeaderMode = "auto" | "web-locks" | "broadcast" | "memory";

/** Options of {@link electLeader}. */
export interface LeaderOptions {
  mode?: LeaderMode;
  /** Broadcast mode: how often a tab says it is alive, in ms (default 1000). */
  heartbeat?: number;
  /** Broadcast mode: a tab silent this long is taken for gone, in ms (default 3000). */
  timeout?: number;
}

/** This tab's part in an election. */
export interface Leader {
  /** Whether this tab leads now. */
  readonly isLeader: boolean;
  /** Resolves once this tab knows whether it leads. */
  readonly ready: Promise<void>;
  /** Calls `fn` whenever this tab starts or stops leading; returns its removal. */
  onChange(fn: (isLeader: boolean) => void): () => void;
  /** Leaves the election: a leader hands over to the next tab. */
  close(): void;
}

const noop = (): void => {};

/** Ids sort by start time, so the oldest tab wins a broadcast election. */
const newId = (): string => Date.now().toString(36) + Math.random().toString(36).slice(2, 8);

/** Memory elections: the waiting handles of each name, the leader first. */
const queues = new Map<string, Array<(lead: boolean) => void>>();

/**
 * Joins the election `name` among the tabs of this origin (or, in memory
 * mode, the callers in this realm).
 *
 * With Web Locks the leader holds the lock `${name}:leader` for its life
 * and the others queue on it, so exactly one tab leads and, when it closes
 * or crashes, the next in line takes over at once.
 *
 * Without Web Locks (Safari before 15.4, or mode "broadcast"), tabs send
 * heartbeats over the BroadcastChannel `${name}:leader` (a protocol that
 * must never change: tabs of every SDK version take part), and the live tab with the lowest id
 * leads (ids sort by start time: the oldest tab). The guarantee is weaker:
 * a crashed leader is replaced only after `timeout` (a closed one at once);
 * a tab whose timers stall for longer (a throttled background tab, a
 * debugger) is taken for gone, and takes the lead back when it wakes, so
 * two tabs may both lead for a moment. What the leader does must tolerate
 * that (the queue's writes are idempotent by id).
 */
export function electLeader(name: string, opts: LeaderOptions = {}): Leader {
  const locks = webLocks();
  let mode = opts.mode ?? "auto";
  if (mode === "auto") mode = locks ? "web-locks" : typeof BroadcastChannel === "function" ? "broadcast" : "memory";
  const fns = new Set<(lead: boolean) => void>();
  let lead = false;
  let closed = false;
  let isReady = noop;
  const ready = new Promise<void>((r) => (isReady = r));
  const set = (l: boolean): void => {
    if (l === lead || (l && closed)) return;
    lead = l;
    for (const f of [...fns]) f(l);
  };
  let leave = noop;

  if (mode === "memory") {
    let q = queues.get(name);
    if (!q) queues.set(name, (q = []));
    const queue = q;
    queue.push(set);
    // Later, as a lock is granted: listeners added right after this call hear of it.
    queueMicrotask(() => {
      if (queue[0] === set) set(true);
      isReady();
    });
    leave = () => {
      const first = queue[0] === set;
      queue.splice(queue.indexOf(set), 1);
      if (first) queue[0]?.(true);
    };
  } else if (mode === "web-locks" && locks) {
    const lockName = name + ":leader";
    const abort = new AbortController();
    let release = noop;
    // Held until close or the tab's end: the browser then grants the next request.
    const hold = (): Promise<void> =>
      new Promise<void>((r) => {
        release = r;
        if (closed) r();
        else set(true);
      });
    // Try first without queueing, so a follower knows at once that it follows.
    void locks
      .request(lockName, { ifAvailable: true }, (lock) => {
        isReady();
        if (lock) return hold();
        if (!closed) locks.request(lockName, { signal: abort.signal }, hold).catch(noop);
      })
      // Refused (an opaque origin: a sandboxed frame): no other tab can share with it.
      .catch(() => (isReady(), set(true)));
    leave = () => {
      abort.abort();
      release();
    };
  } else {
    // The broadcast fallback: the last time each other tab was heard of.
    let id = newId();
    const every = opts.heartbeat ?? 1000;
    const timeout = opts.timeout ?? 3000;
    const peers = new Map<string, number>();
    let started = false;
    const beat = (): void => port.post({ v: 1, t: "hb", id });
    const decide = (): void => {
      if (!started) return;
      const now = Date.now();
      let low = id;
      for (const [p, at] of peers) {
        if (now - at > timeout) peers.delete(p);
        else if (p < low) low = p;
      }
      set(low === id);
      isReady();
    };
    const port = openPort(name + ":leader", false, (d) => {
      const m = d as { v?: number; t?: string; id: string };
      if (m?.v !== 1 || m.id === id) return;
      if (m.t === "bye") peers.delete(m.id);
      else {
        // A newcomer hears of this tab at once, not at the next beat.
        if (!peers.has(m.id)) beat();
        peers.set(m.id, Date.now());
      }
      decide();
    });
    // The first decision waits a moment to hear of the tabs already there.
    const timers = [setTimeout(() => ((started = true), decide()), Math.min(every, 100)), setInterval(() => (beat(), decide()), every)];
    timers.forEach(unref);
    beat();
    // A tab leaving hands over at once; should it come back from the
    // back-forward cache, it comes back as a newcomer.
    const hide = (): void => {
      port.post({ v: 1, t: "bye", id });
      set(false);
      id = newId();
    };
    const g = globalThis as { addEventListener?: (t: string, f: () => void) => void; removeEventListener?: (t: string, f: () => void) => void };
    g.addEventListener?.("pagehide", hide);
    leave = () => {
      timers.forEach(clearTimeout);
      g.removeEventListener?.("pagehide", hide);
      hide();
      port.close();
    };
  }

  return {
    ready,
    get isLeader() {
      return lead;
    },
    onChange(fn) {
      fns.add(fn);
      return () => fns.delete(fn);
    },
    close() {
      if (closed) return;
      closed = true;
      // Stop leading before the next tab may start.
      set(false);
      leave();
      isReady();
      fns.clear();
    },
  };
}

/** The version of the TabBus payloads; tabs ignore or refuse payloads of another version. */
export const TAB_PROTOCOL = 1;

/** What a follower asks of the leader. */
export type TabRequest =
  /** Queue a write (the leader dedupes by `write.id`: a request may arrive twice across a takeover). */
  | { type: "write"; write: QueuedWrite }
  /** Hold a realtime subscription for the follower, told by `key`; `since` is the last seq it saw. */
  | { type: "subscribe"; key: string; topic: string; filter?: string; since?: number }
  | { type: "unsubscribe"; key: string }
  /** Try the queue again now (the follower's browser came online or its tab became visible). */
  | { type: "retry" };

/** What the leader tells every tab. */
export type TabBroadcast =
  /** A realtime notice for the subscription `key`. */
  | { type: "notice"; key: string; notice: RealtimeNotice }
  /** The pending writes, in order, and what became of those that left since the last one. */
  | { type: "queue"; writes: QueuedWrite[]; done?: [string, WriteOutcome][] }
  /** A record changed in the cache (record null: deleted). */
  | { type: "cache"; collection: string; id: string; record: RecordData | null; version: number };

/**
 * What a TabBus listener hears: the broadcasts of other tabs, and
 * "leader" when this tab starts following another leader (the old one's
 * subscriptions are gone: subscribe again).
 */
export type TabEvent = TabBroadcast | { type: "leader" };

/**
 * A message on the bus. The envelope (`k`, `from`, `to`, `rid`, `fresh`,
 * `error`, `code`) never changes; `v` versions the bodies and goes up
 * whenever a request or broadcast is added or changed, so that a tab of
 * another SDK version ignores broadcasts it may not understand and answers
 * such requests with the code "unsupported" instead of leaving them
 * unanswered or misreading them.
 */
export type TabMessage =
  /** A request to the tab `to`, which the sender follows. */
  | { v: number; k: "req"; from: string; to: string; rid: number; body: TabRequest }
  | { v: number; k: "res"; from: string; to: string; rid: number; error?: string; code?: TabBusErrorCode }
  | { v: number; k: "cast"; from: string; body: TabBroadcast }
  /** The sender leads (`fresh`: it has just started to). */
  | { v: number; k: "lead"; from: string; fresh?: boolean }
  /** Who leads? */
  | { v: number; k: "who"; from: string };

/** Why a request failed: no leader answered in time, the bus closed, the leader refused it or does not understand it. */
export type TabBusErrorCode = "no_leader" | "closed" | "failed" | "unsupported";

/** A request over the bus failed. */
export class TabBusError extends Error {
  constructor(
    readonly code: TabBusErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "TabBusError";
  }
}

/** Options of {@link createTabBus}. */
export interface TabBusOptions {
  /** The memory channel of this realm instead of BroadcastChannel (tests, Node). */
  memory?: boolean;
  /** How long a request waits for a leader's answer, in ms (default 10 000). */
  timeout?: number;
}

/** The leader's handler of requests; what it throws is the requester's TabBusError("failed"). */
export type TabHandler = (req: TabRequest, from: string) => void | Promise<void>;

/**
 * Messages between the tabs of an election: requests to whichever tab
 * leads, and broadcasts to the others, in order per sender.
 */
export interface TabBus {
  /** This bus's id: the `from` of what it sends. */
  readonly id: string;
  /**
   * Sends `req` to the leader (to this tab's own handler when it leads)
   * and resolves once the leader has taken it. Rejects with a TabBusError:
   * "no_leader" when no leader answered within the timeout, "failed" when
   * the handler threw, "unsupported" when the leader runs another protocol,
   * "closed" when the bus closed first.
   */
  request(req: TabRequest, timeout?: number): Promise<void>;
  /** Sets the handler of requests, which runs while this tab leads; returns its removal. */
  serve(handler: TabHandler): () => void;
  /** Sends `msg` to every other tab. */
  broadcast(msg: TabBroadcast): void;
  /** Listens to the other tabs' broadcasts and to leader changes; returns the removal. */
  on(fn: (msg: TabEvent, from: string) => void): () => void;
  /**
   * Calls `gone` once the tab whose bus is `from` has closed or crashed
   * (the Web Lock it holds for its life is free); returns the removal.
   * Without Web Locks it never calls.
   */
  onGone(from: string, gone: () => void): () => void;
  /** Closes the bus (not the election): waiting requests fail with "closed". */
  close(): void;
}

type Res = Extract<TabMessage, { k: "res" }>;
// What a tab sends, before `v` and `from` are added.
type Out = TabMessage extends infer M ? (M extends TabMessage ? Omit<M, "v" | "from"> : never) : never;

/**
 * Opens the bus of the election `leader` over the BroadcastChannel
 * `${name}:bus`. Open one in every tab and call `serve` in every tab: the
 * handler runs while the tab leads.
 *
 * A follower sends its requests to the leader it knows of and keeps them
 * until answered: with no leader they wait (up to `timeout`), and when
 * another tab starts leading it announces itself and every follower sends
 * it the unanswered ones again, in order, so none is lost in a takeover.
 * A request may thus reach two leaders (the old one took it and crashed
 * before answering), so the handler should be idempotent by what it
 * receives (write ids, subscription keys); one leader runs it only once. The leader runs requests one at a time, in the order
 * they arrive: its handler should resolve once it has taken a request (the
 * write queued), not when the server answers.
 */
export function createTabBus(name: string, leader: Leader, opts: TabBusOptions = {}): TabBus {
  const id = newId();
  const pending = new Map<number, { body: TabRequest; done: (err?: TabBusError) => void }>();
  // The requests this tab has taken as leader, by sender and id. A repeat
  // is dropped: it came from the same tab, which hears the first answer.
  const seen = new Set<string>();
  const fns = new Set<(msg: TabEvent, from: string) => void>();
  let handler: TabHandler | undefined;
  // The bus of the leading tab, as far as this tab knows.
  let to: string | undefined;
  let chain = Promise.resolve();
  let rids = 0;

  const post = (m: Out): void => port.post({ v: TAB_PROTOCOL, from: id, ...m });
  // A lock held for the bus's life tells the leader when this tab is gone
  // (a crashed tab sends no unsubscribe). Nothing goes to a leader before
  // it is held, so the leader's wait for it always queues behind it.
  const locks = opts.memory ? undefined : webLocks();
  const aliveLock = (bus: string): string => `${name}:tab:${bus}`;
  let alive = !locks;
  let release = (): void => {};
  const serving = (): boolean => leader.isLeader && !!handler;
  const emit = (e: TabEvent, from: string): void => {
    for (const f of [...fns]) f(e, from);
  };
  const settle = (r: Res): void => pending.get(r.rid)?.done(r.code && new TabBusError(r.code, r.error ?? r.code));

  /** Runs a request as the leader, once per sender and id, and answers it. */
  const run = (from: string, rid: number, body: TabRequest, v = TAB_PROTOCOL): void => {
    const key = from + " " + rid;
    if (seen.has(key)) return;
    seen.add(key);
    if (seen.size > 256) seen.delete(seen.values().next().value as string);
    const res = (error?: string, code?: TabBusErrorCode): void => {
      const r: Res = { v: TAB_PROTOCOL, k: "res", from: id, to: from, rid, error, code };
      if (from === id) settle(r);
      else port.post(r);
    };
    if (v !== TAB_PROTOCOL) return res(`abe: the leading tab speaks protocol ${TAB_PROTOCOL}, not ${v}`, "unsupported");
    const h = handler!;
    chain = chain.then(() => h(body, from)).then(
      () => res(),
      (e: unknown) => res(e instanceof Error ? e.message : String(e), "failed"),
    );
  };

  // Sends a request to the leader: to this tab's handler when it leads.
  const send = (rid: number, body: TabRequest): void => {
    if (to === id) run(id, rid, body);
    else if (to && alive) post({ k: "req", to, rid, body });
  };

  /** Starts serving if this tab leads: runs the requests waiting here, and tells the followers. */
  const lead = (): void => {
    if (!serving()) return;
    to = id;
    for (const [rid, p] of pending) send(rid, p.body);
    post({ k: "lead", fresh: true });
  };

  const port = openPort(name + ":bus", !!opts.memory, (d) => {
    const m = d as TabMessage;
    if (!m || typeof m !== "object" || m.from === id) return;
    if (m.k === "res") {
      if (m.to === id) settle(m);
    } else if (m.k === "req") {
      if (m.to === id && serving()) run(m.from, m.rid, m.body, m.v);
    } else if (m.k === "who") {
      if (serving()) post({ k: "lead" });
    } else if (m.k === "lead") {
      if (serving() || (m.from === to && !m.fresh)) return;
      to = m.from;
      for (const [rid, p] of pending) send(rid, p.body);
      emit({ type: "leader" }, m.from);
    } else if (m.k === "cast" && m.v === TAB_PROTOCOL) emit(m.body, m.from);
  });

  // This tab stopped serving (it stepped down, or its handler went): ask who leads now.
  const resign = (): void => {
    if (to !== id) return;
    to = undefined;
    post({ k: "who" });
  };
  const off = leader.onChange((l) => (l ? lead() : resign()));
  post({ k: "who" });
  locks
    ?.request(aliveLock(id), () => {
      alive = true;
      if (to && to !== id) for (const [rid, p] of pending) send(rid, p.body);
      return new Promise<void>((r) => (release = r));
    })
    .catch(() => {
      // Refused (an opaque origin): send without it; a crash then leaves its subscriptions.
      alive = true;
      if (to && to !== id) for (const [rid, p] of pending) send(rid, p.body);
    });

  return {
    id,
    request(req, timeout = opts.timeout ?? 10_000) {
      const rid = ++rids;
      return new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => done(new TabBusError("no_leader", `abe: no leading tab answered within ${timeout} ms`)), timeout);
        const done = (err?: TabBusError): void => {
          clearTimeout(t);
          pending.delete(rid);
          if (err) reject(err);
          else resolve();
        };
        pending.set(rid, { body: req, done });
        send(rid, req);
      });
    },
    serve(h) {
      handler = h;
      lead();
      return () => {
        if (handler !== h) return;
        handler = undefined;
        resign();
      };
    },
    broadcast: (body) => post({ k: "cast", body }),
    onGone(from, gone) {
      if (!locks) return noop;
      const abort = new AbortController();
      locks.request(aliveLock(from), { signal: abort.signal }, () => abort.signal.aborted || gone()).catch(noop);
      return () => abort.abort();
    },
    on(fn) {
      fns.add(fn);
      return () => fns.delete(fn);
    },
    close() {
      off();
      release();
      handler = undefined;
      for (const p of [...pending.values()]) p.done(new TabBusError("closed", "abe: the tab bus is closed"));
      port.close();
    },
  };
}

// One connection per browser: the tabs of a user elect a leader
// (leader.ts), which holds the WebSocket and sends the write queue. The
// others keep a new write in their own queue slot until the leader has
// taken (and saved) it, and hold their subscriptions through the leader;
// it tells them its realtime notices, its pending writes (layered into
// their caches, so a write shows in every tab at once) and the records
// its writes landed. A tab that takes the lead adopts the slot of the one
// that went and subscribes again from the last seq each subscription saw.

import type { RecordCache } from "./cache.js";
import { createTabBus, electLeader, type Leader, type TabBus, type TabEvent, type TabRequest } from "./leader.js";
import { applyWrite, type QueuedWrite, type WriteOutcome, type WriteQueue } from "./queue.js";
import type { RealtimeHandler, RealtimeNotice, SubscribeOptions } from "./realtime.js";

/** What subscriptions go through: the RealtimeClient, or {@link Tabs}. */
export interface Subscriber {
  subscribe(topic: string, handler: RealtimeHandler, opts?: SubscribeOptions): () => void;
}

/** What {@link Tabs} works with: a session's queue and cache, and the tab's realtime client. */
export interface TabParts {
  queue: WriteQueue;
  cache: RecordCache;
  rt: Subscriber;
  /** Takes over the writes of slots no live tab holds (StoreQueueStorage.adopt). */
  adopt(): Promise<QueuedWrite[]>;
  /** Elect and talk within this realm (tests in Node). */
  memory?: boolean;
}

interface Sub {
  key: string;
  topic: string;
  filter?: string;
  /** The last seq it saw: the `since` of its next subscribe. */
  seq?: number;
  h: RealtimeHandler;
  /** Held by this tab's realtime client (leading): its removal. */
  off?: () => void;
  /** Asked of a leader (following): 1 asked, 2 held by it. */
  asked?: number;
}

/** A session's part in the election of its tabs. */
export interface Tabs extends Subscriber {
  /** The writes waiting to land in every tab: the leader's, and this tab's not yet taken. */
  readonly pending: readonly QueuedWrite[];
  onChange(fn: (writes: readonly QueuedWrite[]) => void): () => void;
  /** Resolves when no write is pending in any tab (as this one knows). */
  flush(): Promise<void>;
  /** What became of a write, whichever tab sent it. */
  wait(writeId: string): Promise<WriteOutcome>;
  /**
   * Tries the queue again now, in the tab that sends it: a follower's
   * "online" or visibility must wake a leader whose own tab is hidden.
   */
  retryNow(): void;
  /** Leaves the election (a leader hands over) and lets go of everything. */
  close(): void;
}

// A request waits for a leader as long as it takes (the longest timer there is).
const LONG = 2 ** 31 - 1;
const noop = (): void => {};
const has = (ws: readonly QueuedWrite[], id: string): boolean => ws.some((w) => w.id === id);

/**
 * Joins the election `name` (the user's store name) with a session's
 * queue and cache: leading, this tab sends the queue and serves the
 * others; following, it goes through the leader.
 */
export function shareTabs(name: Promise<string>, p: TabParts): Tabs {
  const { queue, cache, rt } = p;
  const id = Math.random().toString(36).slice(2, 10);
  let el: Leader | undefined;
  let bus: TabBus | undefined;
  let leading = false;
  let known = false;
  let closed = false;
  let n = 0;
  const subs = new Map<string, Sub>();
  // Leading: the other tabs' subscriptions by key, the writes last told them, whether a telling is due.
  const served = new Map<string, () => void>();
  // Leading: the tabs whose subscriptions it holds, by bus id, each with its keys and the end of the wait for its end.
  const watched = new Map<string, { keys: Set<string>; off: () => void }>();
  const unwatch = (): void => {
    for (const w of watched.values()) w.off();
    watched.clear();
  };
  let told: QueuedWrite[] = [];
  let due = false;
  // Leading: the adoption of the last leader's slot, which requests wait for.
  let taking: Promise<void> = Promise.resolve();
  // Following: the leader's pending writes as last told, those layered into the cache, those sent to it.
  let mirror: QueuedWrite[] = [];
  const layered = new Map<string, QueuedWrite>();
  const forwarded = new Set<string>();
  const outcomes = new Map<string, WriteOutcome>();
  const fns = new Set<(writes: readonly QueuedWrite[]) => void>();
  const offs: (() => void)[] = [];

  const pending = (): readonly QueuedWrite[] => {
    const own = queue.pending;
    return leading ? own : [...mirror.filter((w) => !has(own, w.id)), ...own];
  };
  const emit = (): void => {
    const w = pending();
    for (const f of [...fns]) f(w);
  };
  const onChange = (fn: (writes: readonly QueuedWrite[]) => void): (() => void) => {
    fns.add(fn);
    return () => fns.delete(fn);
  };
  const until = async (ok: () => boolean): Promise<void> => {
    await queue.ready;
    return new Promise((res) => {
      const check = (): void => {
        if (!ok()) return;
        off();
        res();
      };
      const off = onChange(check);
      check();
    });
  };

  /** Following: layers the leader's pending writes (but this tab's own) into the cache. */
  const sync = (): void => {
    const own = queue.pending;
    const want = new Map(leading ? [] : mirror.filter((w) => !has(own, w.id)).map((w) => [w.id, w]));
    cache.batch(() => {
      for (const [k, w] of layered)
        if (!want.has(k)) {
          layered.delete(k);
          cache.removeLayer(w.collection, w.recordId, "tab:" + k);
        }
      for (const [k, w] of want)
        if (!layered.has(k)) {
          layered.set(k, w);
          cache.addLayer(w.collection, w.recordId, "tab:" + k, (r) => applyWrite(w, r));
        }
    });
  };

  /** Leading: tells the others the pending writes, once per tick, with the records of those that left. */
  const tell = (): void => {
    if (due) return;
    due = true;
    queueMicrotask(() => {
      due = false;
      if (!leading || !bus) return;
      const now = [...queue.pending];
      const ids = new Set(now.map((w) => w.id));
      const done: [string, WriteOutcome][] = [];
      for (const w of told) {
        if (ids.has(w.id)) continue;
        done.push([w.id, queue.outcome(w.id) ?? "applied"]);
        const { collection, recordId } = w;
        const record = cache.getServer(collection, recordId) ?? null;
        if (record || cache.isDeleted(collection, recordId)) bus.broadcast({ type: "cache", collection, id: recordId, record, version: cache.getVersion(collection, recordId) });
      }
      told = now;
      bus.broadcast({ type: "queue", writes: now, done });
    });
  };

  /** The session's queue changed: leading, tell the others; following, send the leader what it lacks. */
  const changed = (): void => {
    if (leading) tell();
    else if (known && bus) {
      for (const w of queue.pending) {
        if (forwarded.has(w.id)) continue;
        forwarded.add(w.id);
        // Let go of once the leader has it saved; asked again should this fail.
        bus.request({ type: "write", write: w }).then(
          () => !leading && cache.batch(() => queue.forget(w.id)),
          () => forwarded.delete(w.id),
        );
      }
    }
    sync();
    emit();
  };

  /** Keeps a subscription's position, drops what it saw already, and tells it. */
  const notice = (s: Sub, m: RealtimeNotice): void => {
    if (!subs.has(s.key)) return;
    if (m.type === "event") {
      if (s.seq !== undefined && m.seq <= s.seq) return;
      s.seq = m.seq;
    } else if (m.type === "resync" || (m.type === "ready" && s.seq === undefined)) s.seq = m.seq;
    s.h(m);
  };
  const ask = (s: Sub): void => {
    s.asked = 1;
    bus?.request({ type: "subscribe", key: s.key, topic: s.topic, filter: s.filter, since: s.seq }).then(() => (s.asked = 2), noop);
  };
  const route = (s: Sub): void => {
    if (leading) s.off ??= rt.subscribe(s.topic, (m) => notice(s, m), { filter: s.filter, since: s.seq });
    else {
      s.off?.();
      s.off = undefined;
      ask(s);
    }
  };

  /**
   * The tab that went may let go of its slot's lock a moment after the
   * lead: what it had and no tab has now is adopted again, a few times.
   */
  const again = async (had: QueuedWrite[]): Promise<void> => {
    for (let i = 0; i < 5 && leading && had.some((w) => !queue.outcome(w.id) && !has(queue.pending, w.id)); i++) {
      await new Promise((r) => setTimeout(r, 100 << i));
      await queue.add(await p.adopt().catch(() => []));
    }
  };

  /** Takes the lead: adopts the slot of the leader that went, then sends. */
  const lead = async (): Promise<void> => {
    const had = mirror;
    try {
      await queue.ready;
      const taken = await p.adopt();
      cache.batch(() => {
        void queue.add(taken, true);
        mirror = [];
        sync();
      });
    } catch {
      // the store is gone: what this tab holds is sent still
    }
    queue.hold(false);
    told = [];
    changed();
    void again(had);
  };

  const role = (l: boolean): void => {
    if (closed || (known && l === leading)) return;
    known = true;
    leading = l;
    if (l) taking = lead();
    else {
      for (const off of served.values()) off();
      served.clear();
      unwatch();
      queue.hold(true);
      // What this tab holds goes to the leader.
      forwarded.clear();
      void queue.ready.then(changed);
    }
    for (const s of subs.values()) route(s);
  };

  /** Leading: a request of a tab (this one's own come again at a takeover). */
  const serve = async (req: TabRequest, from: string): Promise<void> => {
    await taking;
    if (req.type === "write") return queue.add([req.write]);
    if (req.type === "retry") return queue.retryNow();
    // This tab's own subscriptions go to its realtime client directly.
    if (from === bus?.id) return;
    served.get(req.key)?.();
    served.delete(req.key);
    watched.get(from)?.keys.delete(req.key);
    if (req.type === "subscribe") {
      const key = req.key;
      served.set(key, rt.subscribe(req.topic, (notice) => bus?.broadcast({ type: "notice", key, notice }), { filter: req.filter, since: req.since }));
      let w = watched.get(from);
      if (!w && bus) {
        const keys = new Set<string>();
        // A tab that crashed sends no unsubscribe: its end lets go of what it asked for.
        const off = bus.onGone(from, () => {
          watched.delete(from);
          for (const k of keys) {
            served.get(k)?.();
            served.delete(k);
          }
        });
        watched.set(from, (w = { keys, off }));
      }
      w?.keys.add(key);
      // A tab that starts following learns what is pending.
      tell();
    }
  };

  /** What another tab told (this tab following). */
  const hear = (m: TabEvent): void => {
    if (leading || closed) return;
    if (m.type === "notice") {
      const s = subs.get(m.key);
      if (s?.asked) notice(s, m.notice);
    } else if (m.type === "queue") {
      mirror = m.writes;
      for (const [k, o] of m.done ?? []) outcomes.set(k, o);
      while (outcomes.size > 1000) outcomes.delete(outcomes.keys().next().value as string);
      sync();
      emit();
    } else if (m.type === "cache") {
      if (m.record) cache.put(m.collection, m.record);
      else cache.remove(m.collection, m.id, m.version);
    } else {
      // A new leader holds none of this tab's subscriptions (those it has
      // not answered yet, the bus sends it again itself).
      for (const s of subs.values()) if (s.asked === 2) ask(s);
    }
  };

  // Nothing is sent before this tab knows it leads.
  queue.hold(true);
  offs.push(queue.onChange(changed));
  void name.then((nm) => {
    if (closed) return;
    const e = (el = electLeader(nm, p.memory ? { mode: "memory" } : {}));
    bus = createTabBus(nm, e, { memory: p.memory, timeout: LONG });
    bus.serve(serve);
    offs.push(bus.on(hear), e.onChange(role));
    void e.ready.then(() => known || role(e.isLeader));
  });

  return {
    get pending() {
      return pending();
    },
    onChange,
    flush: () => until(() => pending().length === 0),
    retryNow: () => {
      if (leading || !known) queue.retryNow();
      else bus?.request({ type: "retry" }).catch(noop);
    },
    wait: async (w) => {
      await until(() => !has(pending(), w));
      return outcomes.get(w) ?? queue.outcome(w) ?? "applied";
    },
    subscribe(topic, h, o = {}) {
      const s: Sub = { key: id + ":" + ++n, topic, filter: o.filter, seq: o.since, h };
      subs.set(s.key, s);
      if (known) route(s);
      return () => {
        if (!subs.delete(s.key)) return;
        s.off?.();
        if (s.asked) bus?.request({ type: "unsubscribe", key: s.key }).catch(noop);
      };
    },
    close() {
      closed = true;
      for (const f of offs.splice(0)) f();
      for (const off of served.values()) off();
      unwatch();
      for (const s of subs.values()) s.off?.();
      bus?.close();
      el?.close();
    },
  };
}

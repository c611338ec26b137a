// Leader election and the tab bus in Node: the memory mode, a fake of
// navigator.locks with tabs that can crash, and the BroadcastChannel
// fallback (Node's own channel, and a fake one whose tabs can go silent).
import { afterEach, describe, expect, it, vi } from "vitest";
import { createTabBus, electLeader, TabBusError, type Leader, type LeaderOptions, type TabBus, type TabEvent, type TabRequest } from "../src/leader.js";
import type { QueuedWrite } from "../src/queue.js";

let n = 0;
/** A fresh election name per test: the memory registries are per realm. */
const fresh = () => `t${++n}-${Date.now()}`;
const write = (id: string): TabRequest => ({ type: "write", write: { id, collection: "todos", action: "create", recordId: id, data: { title: id } } satisfies QueuedWrite });
const ids = (reqs: TabRequest[]) => reqs.map((r) => (r.type === "write" ? r.write.id : r.type === "retry" ? r.type : `${r.type}:${r.key}`));

const opened: Array<{ close(): void }> = [];
afterEach(() => {
  for (const o of opened.splice(0).reverse()) o.close();
  vi.unstubAllGlobals();
});

/** A tab: an election handle, its bus, the requests its handler took and the events it heard. */
interface Tab {
  el: Leader;
  bus: TabBus;
  took: TabRequest[];
  heard: TabEvent[];
  /** How often the bus told it of a leader it did not follow before. */
  leaders: number;
  changes: boolean[];
  /** Set to hold a request in the handler (a leader that takes it and never answers). */
  hang?: (req: TabRequest) => boolean;
}

function tab(name: string, opts: LeaderOptions, memoryBus = true): Tab {
  const el = electLeader(name, opts);
  const bus = createTabBus(name, el, { memory: memoryBus, timeout: 2000 });
  const t: Tab = { el, bus, took: [], heard: [], changes: [], leaders: 0 };
  el.onChange((l) => t.changes.push(l));
  bus.on((e) => (e.type === "leader" ? t.leaders++ : t.heard.push(e)));
  bus.serve((req) => {
    t.took.push(req);
    if (t.hang?.(req)) return new Promise<void>(() => {});
  });
  opened.push(bus, el);
  return t;
}

const leaders = (tabs: Tab[]) => tabs.filter((t) => t.el.isLeader);

/** Fails the test should two live handles ever lead at once, checked at every change. */
function watchOne(tabs: Tab[], live: () => Tab[] = () => tabs): string[] {
  const problems: string[] = [];
  for (const t of tabs) t.el.onChange(() => (leaders(live()).length > 1 ? problems.push(`${leaders(live()).length} leaders`) : 0));
  return problems;
}

/**
 * A fake of navigator.locks after the Web Locks spec, as far as leader.ts
 * uses it: exclusive locks granted in request order, ifAvailable, abort
 * signals, and tabs whose crash releases what they hold and drops what
 * they wait for, as a browser does.
 */
function fakeLocks() {
  interface Req {
    cb: (lock: unknown) => unknown;
    resolve: (v: unknown) => void;
    reject: (e: unknown) => void;
    granted: boolean;
  }
  const queues = new Map<string, Req[]>();
  const queue = (name: string) => queues.get(name) ?? (queues.set(name, []), queues.get(name)!);
  const release = (name: string, r: Req) => {
    const q = queue(name);
    if (q.includes(r)) q.splice(q.indexOf(r), 1);
    pump(name);
  };
  const pump = (name: string) => {
    const head = queue(name)[0];
    if (!head || head.granted) return;
    head.granted = true;
    Promise.resolve()
      .then(() => head.cb({ name, mode: "exclusive" }))
      .then(
        (v) => (release(name, head), head.resolve(v)),
        (e: unknown) => (release(name, head), head.reject(e)),
      );
  };
  return {
    holder: (name: string) => queue(name).filter((r) => r.granted).length,
    /** The navigator.locks of one tab, and its crash. */
    tab() {
      const mine: Array<[string, Req]> = [];
      const locks = {
        request(name: string, opts: { ifAvailable?: boolean; signal?: AbortSignal }, cb: (lock: unknown) => unknown): Promise<unknown> {
          return new Promise((resolve, reject) => {
            const q = queue(name);
            if (opts.ifAvailable && q.length > 0) {
              void Promise.resolve().then(() => cb(null)).then(resolve, reject);
              return;
            }
            const r: Req = { cb, resolve, reject, granted: false };
            q.push(r);
            mine.push([name, r]);
            opts.signal?.addEventListener("abort", () => {
              if (r.granted) return;
              q.splice(q.indexOf(r), 1);
              reject(new DOMException("aborted", "AbortError"));
            });
            pump(name);
          });
        },
      };
      return { locks, crash: () => mine.forEach(([name, r]) => release(name, r)) };
    },
  };
}

describe("electLeader in memory mode", () => {
  it("keeps exactly one leader, and hands over to exactly one follower in order when it closes", async () => {
    const name = fresh();
    const tabs = [0, 1, 2, 3].map(() => tab(name, { mode: "memory" }));
    const closed = new Set<Tab>();
    const problems = watchOne(tabs, () => tabs.filter((t) => !closed.has(t)));
    await Promise.all(tabs.map((t) => t.el.ready));
    expect(leaders(tabs)).toEqual([tabs[0]]);
    for (let i = 0; i < 3; i++) {
      tabs[i]!.el.close();
      closed.add(tabs[i]!);
      expect(leaders(tabs)).toEqual([tabs[i + 1]]);
      expect(tabs[i]!.changes).toEqual([true, false]);
      expect(tabs[i + 1]!.changes).toEqual([true]);
    }
    expect(problems).toEqual([]);
  });
});

describe("electLeader with Web Locks", () => {
  it("holds name:leader, queues the others, and gives the lock to exactly one follower when the leader crashes or closes", async () => {
    const locks = fakeLocks();
    const name = fresh();
    const tabs: Tab[] = [];
    const crash: Array<() => void> = [];
    for (let i = 0; i < 3; i++) {
      const t = locks.tab();
      vi.stubGlobal("navigator", { locks: t.locks });
      tabs.push(tab(name, {}));
      crash.push(t.crash);
    }
    const dead = new Set<Tab>();
    const live = () => tabs.filter((t) => !dead.has(t));
    const problems = watchOne(tabs, live);
    await Promise.all(tabs.map((t) => t.el.ready));
    // Every follower knows its role once ready, before anyone leaves.
    expect(leaders(tabs)).toEqual([tabs[0]]);
    expect(locks.holder(`${name}:leader`)).toBe(1);

    // The leader's tab crashes: its lock goes, its code stops.
    crash[0]!();
    tabs[0]!.bus.close();
    dead.add(tabs[0]!);
    await expect.poll(() => leaders(live())).toEqual([tabs[1]]);
    expect(tabs[1]!.changes).toEqual([true]);
    expect(tabs[2]!.changes).toEqual([]);

    // The next one closes: the last takes over.
    tabs[1]!.el.close();
    dead.add(tabs[1]!);
    expect(tabs[1]!.changes).toEqual([true, false]);
    await expect.poll(() => leaders(live())).toEqual([tabs[2]]);
    expect(tabs[2]!.changes).toEqual([true]);
    expect(problems).toEqual([]);
  });

  it("a follower's close leaves the queue, so it never leads later", async () => {
    const locks = fakeLocks();
    const name = fresh();
    const tabs = [0, 1, 2].map(() => {
      vi.stubGlobal("navigator", { locks: locks.tab().locks });
      return tab(name, { mode: "web-locks" });
    });
    await Promise.all(tabs.map((t) => t.el.ready));
    tabs[1]!.el.close();
    tabs[0]!.el.close();
    await expect.poll(() => leaders(tabs)).toEqual([tabs[2]]);
    expect(tabs[1]!.changes).toEqual([]);
  });

  it("leads alone where Web Locks refuse (an opaque origin, which no other tab shares)", async () => {
    vi.stubGlobal("navigator", { locks: { request: () => Promise.reject(new DOMException("opaque", "SecurityError")) } });
    const el = electLeader(fresh());
    opened.push(el);
    await el.ready;
    expect(el.isLeader).toBe(true);
  });
});

describe("the BroadcastChannel fallback", () => {
  const quick = { mode: "broadcast", heartbeat: 20, timeout: 150 } as const;

  it("elects one leader over Node's BroadcastChannel, and another at once when it closes", async () => {
    const name = fresh();
    const tabs = [0, 1, 2].map(() => tab(name, quick, false));
    await Promise.all(tabs.map((t) => t.el.ready));
    await expect.poll(() => leaders(tabs).length).toBe(1);
    const first = leaders(tabs)[0]!;
    first.el.close();
    const rest = tabs.filter((t) => t !== first);
    await expect.poll(() => leaders(rest).length).toBe(1);
    // A follower's request reaches the new leader.
    const follower = rest.find((t) => !t.el.isLeader)!;
    await follower.bus.request(write("w1"));
    expect(ids(leaders(rest)[0]!.took)).toEqual(["w1"]);
  });

  it("replaces a leader that goes silent without a word after the timeout", async () => {
    // A BroadcastChannel whose instances can be struck dumb and deaf, as a crashed tab is.
    class FakeChannel {
      static all = new Set<FakeChannel>();
      static last: FakeChannel | undefined;
      dead = false;
      onmessage: ((e: { data: unknown }) => void) | null = null;
      constructor(readonly name: string) {
        FakeChannel.all.add(this);
        FakeChannel.last = this;
      }
      postMessage(m: unknown): void {
        if (this.dead) return;
        for (const o of FakeChannel.all)
          if (o !== this && o.name === this.name && !o.dead) {
            const c = structuredClone(m);
            queueMicrotask(() => o.onmessage?.({ data: c }));
          }
      }
      close(): void {
        FakeChannel.all.delete(this);
      }
    }
    vi.stubGlobal("BroadcastChannel", FakeChannel);
    const name = fresh();
    const made = [0, 1, 2].map(() => {
      const el = electLeader(name, quick);
      opened.push(el);
      return { el, ch: FakeChannel.last! };
    });
    await Promise.all(made.map((t) => t.el.ready));
    await expect.poll(() => made.filter((t) => t.el.isLeader).length).toBe(1);
    const old = made.find((t) => t.el.isLeader)!;
    old.ch.dead = true;
    const rest = made.filter((t) => t !== old);
    await expect.poll(() => rest.filter((t) => t.el.isLeader).length, { timeout: 3000 }).toBe(1);
  });
});

describe("TabBus", () => {
  it("answers a follower's request from the leader, and turns a handler's error into a TabBusError", async () => {
    const name = fresh();
    const [a, b] = [tab(name, { mode: "memory" }), tab(name, { mode: "memory" })];
    await b.bus.request(write("w1"));
    await a.bus.request({ type: "subscribe", key: "k1", topic: "collection:todos", filter: "done == false" });
    expect(ids(a.took)).toEqual(["w1", "subscribe:k1"]);
    expect(b.took).toEqual([]);
    a.bus.serve(() => {
      throw new Error("the queue is full");
    });
    const err = await b.bus.request(write("w2")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TabBusError);
    expect(err).toMatchObject({ code: "failed", message: "the queue is full" });
  });

  it("delivers broadcasts and requests in order per sender", async () => {
    const name = fresh();
    const [a, b, c] = [0, 1, 2].map(() => tab(name, { mode: "memory" })) as [Tab, Tab, Tab];
    // A slow handler must not let a later request overtake an earlier one.
    a.bus.serve(async (req) => {
      await new Promise((r) => setTimeout(r, req.type === "write" && req.write.id.endsWith("0") ? 5 : 0));
      a.took.push(req);
    });
    const sent = Array.from({ length: 30 }, (_, i) => `w${i}`);
    await Promise.all(sent.map((w, i) => (i % 2 ? b : c).bus.request(write(w))));
    expect(ids(a.took.filter((r) => r.type === "write" && +r.write.id.slice(1) % 2 === 1))).toEqual(sent.filter((_, i) => i % 2));
    expect(ids(a.took.filter((r) => r.type === "write" && +r.write.id.slice(1) % 2 === 0))).toEqual(sent.filter((_, i) => i % 2 === 0));
    for (let i = 0; i < 50; i++) a.bus.broadcast({ type: "queue", writes: [] as QueuedWrite[] });
    a.bus.broadcast({ type: "cache", collection: "todos", id: "r1", record: null, version: 3 });
    await expect.poll(() => b.heard.length).toBe(51);
    expect(b.heard.at(-1)).toEqual({ type: "cache", collection: "todos", id: "r1", record: null, version: 3 });
    expect(c.heard.length).toBe(51);
    expect(a.heard).toEqual([]); // no echo to the sender
  });

  it("keeps a request while no tab serves, and sends it to the first that does", async () => {
    const locks = fakeLocks();
    const name = fresh();
    // A tab of another kind holds the lock and never serves: there is no leader on the bus.
    const other = locks.tab();
    vi.stubGlobal("navigator", { locks: other.locks });
    const silent = electLeader(name);
    opened.push(silent);
    await silent.ready;
    vi.stubGlobal("navigator", { locks: locks.tab().locks });
    const f = tab(name, {});
    vi.stubGlobal("navigator", { locks: locks.tab().locks });
    const g = tab(name, {});
    await Promise.all([f.el.ready, g.el.ready]);
    const early = g.bus.request(write("early"));
    const late = f.bus.request(write("late"));
    expect(leaders([f, g])).toEqual([]);
    other.crash();
    await Promise.all([early, late]);
    expect(leaders([f, g])).toEqual([f]);
    expect(ids(f.took)).toEqual(["late", "early"]);
    // The follower heard that it follows a new leader.
    expect(g.leaders).toBeGreaterThan(0);
  });

  it("fails with no_leader when no tab serves within the timeout", async () => {
    const name = fresh();
    const el = electLeader(name, { mode: "memory" });
    const bus = createTabBus(name, el, { memory: true });
    opened.push(bus, el);
    const err = await bus.request(write("w"), 30).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: "TabBusError", code: "no_leader" });
    const pending = bus.request(write("w2"));
    bus.close();
    await expect(pending).rejects.toMatchObject({ code: "closed" });
  });

  it("loses no request and runs none twice at one leader when the leader crashes holding some", async () => {
    const locks = fakeLocks();
    const name = fresh();
    const crash: Array<() => void> = [];
    const tabs = [0, 1, 2].map(() => {
      const t = locks.tab();
      crash.push(t.crash);
      vi.stubGlobal("navigator", { locks: t.locks });
      return tab(name, {});
    }) as [Tab, Tab, Tab];
    const [a, b, c] = tabs;
    await Promise.all(tabs.map((t) => t.el.ready));
    await b.bus.request(write("b0"));
    // The leader takes b1 and never answers (nor anything after it).
    a.hang = (req) => req.type === "write" && req.write.id === "b1";
    const bs = ["b1", "b2", "b3"].map((w) => b.bus.request(write(w)));
    const cs = c.bus.request({ type: "unsubscribe", key: "c:k" });
    await expect.poll(() => ids(a.took)).toEqual(["b0", "b1"]);
    crash[0]!();
    a.bus.close();
    await Promise.all([...bs, cs]);
    expect(leaders([b, c])).toEqual([b]);
    // b1 reached two leaders, as the handler must expect; each ran it once.
    expect(ids(a.took)).toEqual(["b0", "b1"]);
    expect(ids(b.took)).toEqual(["b1", "b2", "b3", "unsubscribe:c:k"]);
    expect(c.leaders).toBeGreaterThan(0);
  });

  it("ignores messages of another protocol version and answers their requests with unsupported", async () => {
    const name = fresh();
    const a = tab(name, { mode: "memory" }, false);
    const raw = new BroadcastChannel(`${name}:bus`);
    const answers: unknown[] = [];
    raw.onmessage = (e: MessageEvent) => answers.push(e.data);
    opened.push(raw);
    const b = tab(name, { mode: "memory" }, false);
    await b.bus.request(write("w0")); // a serves, and raw has heard a's announcement
    const lead = answers.find((m) => (m as { k?: string }).k === "lead") as { from: string };
    for (const junk of [null, "text", 42, {}, { v: 2, k: "cast", from: "x", body: { type: "teleport" } }]) raw.postMessage(junk);
    raw.postMessage({ v: 2, k: "req", from: "raw", to: lead.from, rid: 1, body: { type: "teleport" } });
    raw.postMessage({ v: 1, k: "cast", from: "raw", body: { type: "queue", writes: [] } });
    await expect.poll(() => b.heard.length).toBe(1);
    expect(b.heard).toEqual([{ type: "queue", writes: [] }]);
    await expect.poll(() => answers.find((m) => (m as { to?: string }).to === "raw")).toMatchObject({ k: "res", rid: 1, code: "unsupported" });
    expect(ids(a.took)).toEqual(["w0"]);
  });
});

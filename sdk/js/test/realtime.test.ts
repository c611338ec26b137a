import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { backoffDelay } from "../src/backoff.js";
import { RealtimeClient, type RealtimeEvent, type RealtimeNotice } from "../src/realtime.js";
import { FakeWebSocket } from "./fake-ws.js";

const flush = () => vi.advanceTimersByTimeAsync(0);

describe("backoffDelay", () => {
  it("grows exponentially to the cap, with equal jitter", () => {
    const o = { initial: 100, max: 1000, factor: 2 };
    expect(backoffDelay(0, o, () => 0)).toBe(50);
    expect(backoffDelay(0, o, () => 0.999999)).toBe(100);
    expect(backoffDelay(3, o, () => 0)).toBe(400);
    expect(backoffDelay(3, o, () => 0.999999)).toBe(800);
    expect(backoffDelay(10, o, () => 0.999999)).toBe(1000);
    expect(backoffDelay(10, o, () => 0)).toBe(500);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(2, o);
      expect(d).toBeGreaterThanOrEqual(200);
      expect(d).toBeLessThanOrEqual(400);
    }
  });
});

describe("RealtimeClient", () => {
  let token: string | null;
  let tokenListeners: (() => void)[];
  const make = (extra: Partial<ConstructorParameters<typeof RealtimeClient>[0]> = {}) =>
    new RealtimeClient({
      url: "http://abe.test",
      WebSocket: FakeWebSocket,
      getToken: () => token,
      onTokenChange: (l) => {
        tokenListeners.push(l);
        return () => {};
      },
      random: () => 0.5,
      ...extra,
    });

  beforeEach(() => {
    vi.useFakeTimers();
    FakeWebSocket.all = [];
    token = "t1";
    tokenListeners = [];
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  async function connected(rt: RealtimeClient): Promise<FakeWebSocket> {
    const ws = FakeWebSocket.last;
    ws.open();
    await flush();
    expect(ws.sent[0]).toEqual({ type: "auth", id: "auth", token: "t1" });
    ws.msg({ type: "ack", id: "auth" });
    expect(rt.status).toBe("open");
    return ws;
  }

  it("connects to /api/realtime, authenticates first, then subscribes", async () => {
    const rt = make();
    rt.subscribe("collection:todos", () => {}, { filter: "done == false" });
    expect(FakeWebSocket.last.url).toBe("ws://abe.test/api/realtime");
    const ws = await connected(rt);
    expect(ws.sent[1]).toEqual({ type: "subscribe", id: "s1", topic: "collection:todos", filter: "done == false" });
    rt.close();
  });

  it("reference counts: ten subscribers of one topic and filter make one server subscription", async () => {
    const rt = make();
    const seen: number[] = [];
    const offs = Array.from({ length: 10 }, (_, i) => rt.subscribe("record:todos:a", (n) => n.type === "event" && seen.push(i)));
    rt.subscribe("record:todos:a", () => {}, { filter: "x" }); // another filter: another subscription
    const ws = await connected(rt);
    expect(ws.ofType("subscribe")).toHaveLength(2);
    expect(rt.subscriptionCount).toBe(2);
    ws.msg({ type: "ack", id: "s1", seq: 10 });
    ws.msg({ type: "event", sub: "s1", topic: "record:todos:a", op: "update", id: "a", version: 2, seq: 11, record: { id: "a", version: 2 } });
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // Each handler heard the ack as ready; one joining later hears it at once.
    const late: RealtimeNotice[] = [];
    const offLate = rt.subscribe("record:todos:a", (n) => late.push(n));
    await flush();
    expect(late).toEqual([{ type: "ready", topic: "record:todos:a", seq: 11 }]); // the last seq seen
    offLate();
    offs.forEach((off) => off());
    offs[0]!(); // calling an unsubscribe twice changes nothing
    rt.close();
  });

  it("debounces the last unsubscribe; a resubscribe within the delay keeps the server subscription", async () => {
    const rt = make({ unsubscribeDelay: 10_000 });
    const off1 = rt.subscribe("collection:todos", () => {});
    const off2 = rt.subscribe("collection:todos", () => {});
    const ws = await connected(rt);
    off1();
    off2();
    await vi.advanceTimersByTimeAsync(9_000);
    expect(ws.ofType("unsubscribe")).toHaveLength(0);
    // A remount: subscribes again before the delay ends.
    const off3 = rt.subscribe("collection:todos", () => {});
    await vi.advanceTimersByTimeAsync(20_000);
    expect(ws.ofType("unsubscribe")).toHaveLength(0);
    expect(ws.ofType("subscribe")).toHaveLength(1);
    off3();
    await vi.advanceTimersByTimeAsync(9_999);
    expect(ws.ofType("unsubscribe")).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(ws.ofType("unsubscribe")).toEqual([{ type: "unsubscribe", id: "s1" }]);
    // The last subscription gone, the socket closes.
    expect(ws.closedByClient).toBe(true);
    expect(rt.status).toBe("idle");
    expect(rt.subscriptionCount).toBe(0);
  });

  it("reconnects with backoff, re-authenticates and resubscribes with since = the last seq seen", async () => {
    const rt = make({ backoff: { initial: 1000, max: 8000 } });
    const got: RealtimeNotice[] = [];
    rt.subscribe("collection:todos", (n) => n.type !== "ready" && got.push(n));
    rt.subscribe("record:todos:b", () => {});
    let ws = await connected(rt);
    ws.msg({ type: "ack", id: "s1", seq: 40 });
    ws.msg({ type: "ack", id: "s2", seq: 40 });
    ws.msg({ type: "event", sub: "s1", topic: "collection:todos", op: "create", id: "a", version: 1, seq: 41, record: { id: "a", version: 1 } });

    // Three failed attempts: 750, 1500, 3000 ms with random() = 0.5.
    ws.drop();
    expect(rt.status).toBe("reconnecting");
    for (const delay of [750, 1500, 3000]) {
      const n = FakeWebSocket.all.length;
      await vi.advanceTimersByTimeAsync(delay - 1);
      expect(FakeWebSocket.all.length).toBe(n);
      await vi.advanceTimersByTimeAsync(1);
      expect(FakeWebSocket.all.length).toBe(n + 1);
      if (delay !== 3000) FakeWebSocket.last.drop();
    }
    token = "t1";
    ws = await connected(rt);
    expect(ws.ofType("subscribe")).toEqual([
      { type: "subscribe", id: "s1", topic: "collection:todos", since: 41 },
      { type: "subscribe", id: "s2", topic: "record:todos:b", since: 40 },
    ]);
    // Catch-up events, then a repeat of one seen before (ignored), then live.
    ws.msg({ type: "ack", id: "s1", seq: 45 });
    ws.msg({ type: "event", sub: "s1", topic: "collection:todos", op: "update", id: "a", version: 2, seq: 41, record: { id: "a", version: 2 } });
    ws.msg({ type: "event", sub: "s1", topic: "collection:todos", op: "update", id: "a", version: 3, seq: 44, record: { id: "a", version: 3 } });
    ws.msg({ type: "event", sub: "s1", topic: "collection:todos", op: "delete", id: "a", version: 4, seq: 46 });
    expect(got.map((n) => (n.type === "event" ? n.seq : n.type))).toEqual([41, 44, 46]);
    // After a successful connection the backoff starts over.
    ws.drop();
    await vi.advanceTimersByTimeAsync(750);
    expect(FakeWebSocket.all.length).toBe(5);
    rt.close();
  });

  it("tells handlers to refetch on resync, and continues from its seq", async () => {
    const rt = make();
    const got: RealtimeNotice[] = [];
    rt.subscribe("collection:todos", (n) => n.type !== "ready" && got.push(n));
    let ws = await connected(rt);
    ws.msg({ type: "ack", id: "s1", seq: 5 });
    ws.drop();
    await vi.advanceTimersByTimeAsync(60_000);
    ws = await connected(rt);
    expect(ws.ofType("subscribe")[0]?.since).toBe(5);
    ws.msg({ type: "resync", id: "s1", seq: 3000 });
    expect(got).toEqual([{ type: "resync", topic: "collection:todos", seq: 3000 }]);
    ws.drop();
    await vi.advanceTimersByTimeAsync(60_000);
    ws = await connected(rt);
    expect(ws.ofType("subscribe")[0]?.since).toBe(3000);
    rt.close();
  });

  it("sends a refreshed token on the open socket, and resubscribes what an expired token ended", async () => {
    const rt = make();
    const got: RealtimeNotice[] = [];
    rt.subscribe("collection:todos", (n) => n.type !== "ready" && got.push(n));
    const ws = await connected(rt);
    ws.msg({ type: "ack", id: "s1", seq: 7 });
    token = "t2";
    tokenListeners.forEach((l) => l());
    await flush();
    expect(ws.sent.at(-1)).toEqual({ type: "auth", id: "auth", token: "t2" });
    ws.msg({ type: "ack", id: "auth" });
    expect(ws.ofType("subscribe")).toHaveLength(1); // the same user keeps its subscriptions
    // The token expires before the app refreshes it: the server ends the subscription.
    ws.msg({ type: "error", id: "s1", code: "token_expired", message: "the access token expired" });
    expect(got.at(-1)).toMatchObject({ type: "error", code: "token_expired" });
    token = "t3";
    tokenListeners.forEach((l) => l());
    await flush();
    expect(ws.sent.at(-1)).toEqual({ type: "auth", id: "auth", token: "t3" });
    ws.msg({ type: "ack", id: "auth" });
    expect(ws.sent.at(-1)).toEqual({ type: "subscribe", id: "s1", topic: "collection:todos", since: 7 });
    expect(FakeWebSocket.all).toHaveLength(1);
    rt.close();
  });

  it("subscribes with since when given one, and replays from there", async () => {
    const rt = make();
    const got: RealtimeNotice[] = [];
    rt.subscribe("collection:todos", (n) => n.type === "event" && got.push(n), { since: 40 });
    const ws = await connected(rt);
    expect(ws.ofType("subscribe")[0]).toEqual({ type: "subscribe", id: "s1", topic: "collection:todos", since: 40 });
    ws.msg({ type: "ack", id: "s1", seq: 42 });
    ws.msg({ type: "event", sub: "s1", topic: "collection:todos", op: "update", id: "a", version: 2, seq: 41, record: { id: "a", version: 2 } });
    expect(got.map((n) => (n as RealtimeEvent).seq)).toEqual([41]);
    rt.close();
  });

  it("tells a handler that joins a held subscription behind its position to resync, after ready", async () => {
    const rt = make();
    rt.subscribe("collection:todos", () => {}, { since: 40 });
    const ws = await connected(rt);
    ws.msg({ type: "ack", id: "s1", seq: 40 });
    ws.msg({ type: "event", sub: "s1", topic: "collection:todos", op: "update", id: "a", version: 2, seq: 45, record: { id: "a", version: 2 } });
    const told = (since?: number) => {
      const got: string[] = [];
      rt.subscribe("collection:todos", (n) => got.push(n.type), since === undefined ? {} : { since });
      return got;
    };
    const behind = told(41); // a new leader's follower that saw up to 41
    const level = told(45);
    const fresh = told();
    await flush();
    expect(behind).toEqual(["ready", "resync"]);
    expect(level).toEqual(["ready"]);
    expect(fresh).toEqual(["ready"]);
    expect(ws.ofType("subscribe")).toHaveLength(1); // still one server subscription
    // Before the ack too: told once the server holds it.
    const early: string[] = [];
    rt.subscribe("record:todos:b", () => {});
    rt.subscribe("record:todos:b", (n) => early.push(n.type), { since: 3 });
    await flush();
    ws.msg({ type: "ack", id: "s2", seq: 50 });
    expect(early).toEqual(["ready", "resync"]);
    rt.close();
  });

  it("subscribes anonymously without a token", async () => {
    token = null;
    const rt = make();
    rt.subscribe("collection:todos", () => {});
    const ws = FakeWebSocket.last;
    ws.open();
    await flush();
    expect(ws.sent).toEqual([{ type: "subscribe", id: "s1", topic: "collection:todos" }]);
    rt.close();
  });
});

describe("RealtimeClient errors", () => {
  it("tells the handlers when the server refuses a subscription", async () => {
    vi.useFakeTimers();
    FakeWebSocket.all = [];
    const rt = new RealtimeClient({ url: "wss://abe.test/api/realtime", WebSocket: FakeWebSocket });
    const got: RealtimeNotice[] = [];
    rt.subscribe("record:todos:x", (n) => got.push(n));
    const ws = FakeWebSocket.last;
    expect(ws.url).toBe("wss://abe.test/api/realtime");
    ws.open();
    await vi.advanceTimersByTimeAsync(0);
    ws.msg({ type: "error", id: "s1", code: "forbidden", message: "no such record, or you may not read it" });
    expect(got).toEqual([{ type: "error", topic: "record:todos:x", code: "forbidden", message: "no such record, or you may not read it" }]);
    rt.close();
    expect(rt.status).toBe("closed");
    expect(() => rt.subscribe("collection:todos", () => {})).toThrow(/closed/);
    vi.useRealTimers();
  });
});

import { describe, expect, it } from "vitest";
import { RecordCache, type QueryUpdate, type RecordData } from "../src/cache.js";

const rec = (id: string, version: number, f: Record<string, unknown> = {}): RecordData => ({ id, version, ...f });

describe("RecordCache versions", () => {
  it("never lets an older version replace a newer one; equal versions refresh", () => {
    const c = new RecordCache();
    expect(c.put("todos", rec("a", 3, { title: "three" }))).toBe(true);
    expect(c.put("todos", rec("a", 2, { title: "two" }))).toBe(false);
    expect(c.get("todos", "a")?.title).toBe("three");
    expect(c.getVersion("todos", "a")).toBe(3);
    expect(c.put("todos", rec("a", 3, { title: "three again" }))).toBe(true);
    expect(c.put("todos", rec("a", 4, { title: "four" }))).toBe(true);
    expect(c.get("todos", "a")?.title).toBe("four");
    expect(c.getVersion("todos", "b")).toBe(0);
  });

  it("applies realtime events: newer records update, deletes and match:false invalidate, older ones are ignored", () => {
    const c = new RecordCache();
    c.put("todos", rec("a", 5, { title: "x" }));
    const ev = { type: "event" as const, topic: "collection:todos", id: "a", seq: 1 };
    expect(c.applyEvent("todos", { ...ev, op: "update", version: 4, record: rec("a", 4, { title: "old" }) })).toBe(false);
    expect(c.get("todos", "a")?.title).toBe("x");
    expect(c.applyEvent("todos", { ...ev, op: "update", version: 6, record: rec("a", 6, { title: "new" }) })).toBe(true);
    expect(c.get("todos", "a")?.title).toBe("new");
    // match:false without a record: the cache can no longer show it; version kept.
    expect(c.applyEvent("todos", { ...ev, op: "update", version: 7, match: false })).toBe(true);
    expect(c.get("todos", "a")).toBeUndefined();
    expect(c.getVersion("todos", "a")).toBe(7);
    expect(c.put("todos", rec("a", 6))).toBe(false);
    expect(c.put("todos", rec("a", 7, { title: "refetched" }))).toBe(true);
    expect(c.applyEvent("todos", { ...ev, op: "delete", version: 8 })).toBe(true);
    expect(c.get("todos", "a")).toBeUndefined();
    expect(c.isDeleted("todos", "a")).toBe(true);
    expect(c.put("todos", rec("a", 7, { title: "late" }))).toBe(false);
  });

  it("layers pending writes over the server's record and shows it again when a layer goes", () => {
    const c = new RecordCache();
    c.put("todos", rec("a", 1, { title: "server" }));
    c.addLayer("todos", "a", "w1", (r) => r && { ...r, title: "mine" });
    expect(c.get("todos", "a")?.title).toBe("mine");
    expect(c.getServer("todos", "a")?.title).toBe("server");
    // A newer server version arrives under the pending write: the write stays on top.
    c.put("todos", rec("a", 2, { title: "theirs", done: true }));
    expect(c.get("todos", "a")).toEqual({ id: "a", version: 2, title: "mine", done: true });
    c.removeLayer("todos", "a", "w1");
    expect(c.get("todos", "a")?.title).toBe("theirs");
  });

  it("notifies record observers", () => {
    const c = new RecordCache();
    const seen: (string | undefined)[] = [];
    const off = c.observe("todos", "a", (r) => seen.push(r?.title as string | undefined));
    c.put("todos", rec("a", 1, { title: "one" }));
    c.put("todos", rec("a", 0, { title: "older" }));
    c.addLayer("todos", "a", "w", (r) => r && { ...r, title: "opt" });
    c.removeLayer("todos", "a", "w");
    c.remove("todos", "a", 2);
    off();
    c.put("todos", rec("a", 3, { title: "unseen" }));
    expect(seen).toEqual(["one", "opt", "one", undefined]);
  });
});

describe("RecordCache queries", () => {
  it("keeps an unfiltered query sorted and tells observers when members change", () => {
    const c = new RecordCache();
    const q = { collection: "todos", sort: "title" };
    const updates: QueryUpdate[] = [];
    c.observeQuery(q, (u) => updates.push(u));
    c.setQuery(q, [rec("b", 1, { title: "b" }), rec("d", 1, { title: "d" })]);
    c.put("todos", rec("c", 1, { title: "c" })); // a new record of the collection: it belongs
    expect(c.getQuery(q)?.map((r) => r.id)).toEqual(["b", "c", "d"]);
    c.put("todos", rec("b", 2, { title: "z" })); // a member changed
    expect(c.getQuery(q)?.map((r) => r.id)).toEqual(["c", "d", "b"]);
    c.remove("todos", "d", 2);
    expect(c.getQuery(q)?.map((r) => r.id)).toEqual(["c", "b"]);
    c.put("projects", rec("p", 1)); // another collection: not told
    expect(updates).toHaveLength(4);
    expect(updates.every((u) => !u.stale)).toBe(true);
  });

  it("places records with match(); without it a filtered query hears it may be stale", () => {
    const c = new RecordCache();
    const withMatch = { collection: "todos", filter: "done == false", match: (r: RecordData) => r.done === false };
    const without = { collection: "todos", filter: "done == true" };
    c.setQuery(withMatch, [rec("a", 1, { done: false, created_at: "1" })]);
    c.setQuery(without, []);
    const stale: boolean[] = [];
    c.observeQuery(without, (u) => stale.push(u.stale));
    c.put("todos", rec("b", 1, { done: false, created_at: "2" }));
    expect(c.getQuery(withMatch)?.map((r) => r.id)).toEqual(["b", "a"]); // -created_at
    c.put("todos", rec("a", 2, { done: true, created_at: "1" }));
    expect(c.getQuery(withMatch)?.map((r) => r.id)).toEqual(["b"]);
    expect(stale).toEqual([true, true]);
  });

  it("takes a record out of the subscription's query on match:false and puts it in on an event with a record", () => {
    const c = new RecordCache();
    const q = { collection: "todos", filter: "done == false" };
    c.setQuery(q, [rec("a", 1, { done: false })]);
    const ev = { type: "event" as const, topic: "collection:todos", seq: 1 };
    c.applyEvent("todos", { ...ev, op: "update", id: "a", version: 2, match: false }, q);
    expect(c.getQuery(q)).toEqual([]);
    c.applyEvent("todos", { ...ev, op: "create", id: "b", version: 1, record: rec("b", 1, { done: false }) }, q);
    expect(c.getQuery(q)?.map((r) => r.id)).toEqual(["b"]);
  });
});

// The queue's storage on the offline store: slots per tab, adoption of
// a gone tab's writes, and the localStorage journal that keeps writes a
// tab queued in its last milliseconds, before IndexedDB had them.
import { describe, expect, it } from "vitest";
import type { QueuedWrite } from "../src/queue.js";
import { MemoryStore, StoreQueueStorage } from "../src/store.js";

/** A Storage over a Map, as localStorage behaves. */
function fakeStorage() {
  const m = new Map<string, string>();
  return {
    m,
    get length() {
      return m.size;
    },
    key: (i: number) => [...m.keys()][i] ?? null,
    getItem: (k: string) => m.get(k) ?? null,
    setItem: (k: string, v: string) => void m.set(k, v),
    removeItem: (k: string) => void m.delete(k),
  };
}

const write = (n: number): QueuedWrite => ({ id: `w${n}`, collection: "todos", action: "create", recordId: `r${n}`, data: { title: `t${n}` }, base: null });

describe("StoreQueueStorage", () => {
  it("hands a gone tab's slot to the next tab", async () => {
    const store = new MemoryStore("db");
    const a = new StoreQueueStorage(store, { locks: null, journal: null, staleAfter: 1000, now: () => 0 });
    await a.load();
    await a.save([write(1), write(2)]);
    a.close();
    const b = new StoreQueueStorage(store, { locks: null, journal: null, staleAfter: 1000, now: () => 5000 });
    expect((await b.load())?.map((w) => w.id)).toEqual(["w1", "w2"]);
    expect((await store.readSlots()).map((s) => s.tab)).toEqual([b.tab]);
  });

  it("keeps writes a closing tab queued before the store had them, through the journal", async () => {
    const journal = fakeStorage();
    const stored = new MemoryStore("db");
    // The tab's store loses what was not written when the tab went (its
    // IndexedDB transaction never committed): a store that never writes.
    const lossy = Object.assign(new MemoryStore("db"), { writeSlot: () => new Promise<void>(() => {}) });
    const a = new StoreQueueStorage(lossy, { locks: null, journal });
    await a.load();
    void a.save([write(1)]);
    a.flushJournal(); // pagehide
    expect([...journal.m.keys()]).toEqual([`db:journal:${a.tab}`]);

    const b = new StoreQueueStorage(stored, { locks: null, journal });
    expect((await b.load())?.map((w) => w.id)).toEqual(["w1"]);
    expect(journal.m.size).toBe(0);
    expect((await stored.readSlots())[0]?.writes.map((w) => w.id)).toEqual(["w1"]);
  });

  it("writes no journal when the store has the writes, and drops its own once it does", async () => {
    const journal = fakeStorage();
    const a = new StoreQueueStorage(new MemoryStore("db"), { locks: null, journal });
    await a.load();
    await a.save([write(1)]);
    a.flushJournal();
    expect(journal.m.size).toBe(0);
    const pending = a.save([write(1), write(2)]);
    a.flushJournal(); // the save is still out
    expect(journal.m.size).toBe(1);
    await pending;
    expect(journal.m.size).toBe(0);
  });
});

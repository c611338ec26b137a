import { describe, expect, it } from "vitest";
import { LocalStorageQueueStorage, type KeyValueStorage, type QueuedWrite } from "../src/queue.js";

class MapStorage implements KeyValueStorage {
  readonly m = new Map<string, string>();
  getItem(k: string): string | null {
    return this.m.get(k) ?? null;
  }
  setItem(k: string, v: string): void {
    this.m.set(k, v);
  }
  removeItem(k: string): void {
    this.m.delete(k);
  }
}

const write = (id: string): QueuedWrite => ({ id } as unknown as QueuedWrite);

describe("LocalStorageQueueStorage across tabs", () => {
  it("keeps each tab's writes apart, and a new tab adopts only those of tabs gone quiet", () => {
    const ls = new MapStorage();
    let now = 0;
    const clock = () => now;
    const a = new LocalStorageQueueStorage("q", ls, 15_000, clock);
    const b = new LocalStorageQueueStorage("q", ls, 15_000, clock);
    expect(a.load()).toBeNull();
    expect(b.load()).toBeNull();
    a.save([write("a1")]);
    b.save([write("b1"), write("b2")]);
    b.save([write("b1"), write("b2"), write("b3")]); // b's save never touches a's
    a.close();
    b.close();
    now = 20_000;
    b.save([write("b1"), write("b2"), write("b3")]); // b is alive: it was seen now

    const c = new LocalStorageQueueStorage("q", ls, 15_000, clock);
    const adopted = c.load();
    c.close();
    expect(adopted?.map((w) => (w as unknown as { id: string }).id)).toEqual(["a1"]);
    // a's slot is gone; b's is untouched; c holds what it adopted.
    const slots = [...ls.m.keys()].filter((k) => k !== "q:tabs").sort();
    expect(slots).toHaveLength(2);
    const d = new LocalStorageQueueStorage("q", ls, 15_000, clock);
    expect(d.load()).toBeNull(); // nothing stale now: c and b were seen at 20 s
    d.close();
  });

  it("adopts the single shared slot earlier versions kept", () => {
    const ls = new MapStorage();
    ls.setItem("q", JSON.stringify([write("old")]));
    const s = new LocalStorageQueueStorage("q", ls, 15_000, () => 0);
    expect(s.load()?.length).toBe(1);
    s.close();
    expect(ls.getItem("q")).toBeNull();
  });
});

describe("LocalStorageQueueStorage on reload", () => {
  it("hands a released tab's writes to the next page at once", () => {
    const ls = new MapStorage();
    const before = new LocalStorageQueueStorage("q", ls, 15_000, () => 1000);
    before.load();
    before.save([write("w1"), write("w2")]);
    before.release(); // pagehide
    const after = new LocalStorageQueueStorage("q", ls, 15_000, () => 1001);
    expect(after.load()?.length).toBe(2);
    after.close();
  });
});

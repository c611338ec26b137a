// The stand-ins of src/lazy.ts while the offline layer's chunk cannot be
// fetched (an app deployed anew while a tab still runs the old one, a
// flaky network): live queries say so, nothing waits forever on a
// rejection, and every write made meanwhile is kept and handed on, in
// order, when the layer comes.
import { describe, expect, it } from "vitest";
import { NetworkError } from "../src/errors.js";
import { lazyHistory, lazyLives, lazyWrites, offlineLoader } from "../src/lazy.js";
import type { Live, LiveResult, OfflineClient, Writes } from "../src/offline.js";
import type { RecordData } from "../src/realtime.js";

/** A layer that records what is handed to it. */
function fakeLayer() {
  const calls: string[] = [];
  const subs = new Set<(r: LiveResult<RecordData>) => void>();
  const live: Live<LiveResult<RecordData>> = {
    current: { records: [{ id: "a", version: 1 }], source: "server", pending: 0, error: null },
    subscribe: (fn) => (subs.add(fn), fn(live.current), () => subs.delete(fn)),
    refetch: async () => void calls.push("refetch"),
  };
  const writes: Partial<Writes> = {
    create: (c, d) => (calls.push(`create ${c} ${String(d.id)} ${String(d.title)}`), String(d.id)),
    update: (c, id) => (calls.push(`update ${c} ${id}`), "w-update"),
    flush: async () => void calls.push("flush"),
    wait: async (id) => (calls.push(`wait ${id}`), "applied"),
    onChange: () => () => {},
  };
  const layer = { live: () => live, writes, history: { undo: async () => (calls.push("undo"), true), subscribe: () => () => {} } };
  return { calls, layer: layer as unknown as OfflineClient };
}

describe("the offline layer's stand-ins", () => {
  it("keep writes and queries while the layer fails to load, and hand them on in order when it comes", async () => {
    const { calls, layer } = fakeLayer();
    let tries = 0;
    let fail = true;
    const l = offlineLoader(
      async () => {
        tries++;
        if (fail) throw new TypeError("Failed to fetch dynamically imported module");
        return layer;
      },
      { initial: 1, max: 5 },
    );
    const lives = lazyLives(l);
    const q = lives.live("todos", { filter: "done == false" });
    expect(lives.live("todos", { filter: "done == false" })).toBe(q);
    const seen: LiveResult<RecordData>[] = [];
    q.subscribe((r) => seen.push(r));
    const w = lazyWrites(l);
    const id = w.create("todos", { title: "kept" });
    const upd = w.update("todos", id, { done: true });
    const flushed = w.flush();
    const waited = w.wait(upd);
    const undone = lazyHistory(l).undo();

    // The query tells its subscriber the layer did not load; nothing was handed on.
    await expect.poll(() => seen.length).toBeGreaterThan(0);
    expect(seen[0]!.error).toBeInstanceOf(NetworkError);
    expect(q.current.error?.message).toMatch(/offline layer did not load/);
    await expect.poll(() => tries).toBeGreaterThanOrEqual(3);
    expect(calls).toEqual([]);

    fail = false;
    await flushed;
    expect(await waited).toBe("applied");
    expect(await undone).toBe(true);
    // The writes in the order made; the wait asked of the write the queue made.
    expect(calls.filter((c) => !c.startsWith("wait"))).toEqual([`create todos ${id} kept`, `update todos ${id}`, "flush", "undo"]);
    expect(calls).toContain("wait w-update");
    expect(seen.at(-1)).toEqual({ records: [{ id: "a", version: 1 }], source: "server", pending: 0, error: null });
    expect(q.current.error).toBeNull();
    // After the load a new question gets the layer's answer, the old one its stand-in.
    expect(lives.live("todos", { filter: "done == false" })).toBe(q);
  });
});

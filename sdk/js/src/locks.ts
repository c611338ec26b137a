// What the cross-tab parts share (coordinator.ts, leader.ts, store.ts):
// the browser's Web Locks when it has them, and a channel to the other
// tabs of the origin (BroadcastChannel) or, in Node and tests, to the
// other callers of this realm. The protocols over them stay each
// module's own: tabs of other SDK versions speak them.

/** The Web Locks API (navigator.locks) when this realm has it. */
export function webLocks(): LockManager | undefined {
  const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks;
  return locks && typeof locks.request === "function" ? locks : undefined;
}

/** Lets a Node timer or channel not keep the process alive (nothing in a browser). */
export const unref = (t: unknown): void => (t as { unref?: () => void }).unref?.();

/** A channel to the other ports of a name. */
export interface Port {
  post(m: unknown): void;
  close(): void;
}

/** The memory channel: the ports of one realm by name. */
const rooms = new Map<string, Set<(m: unknown) => void>>();

/**
 * Opens a channel that delivers to the other ports of `name`, in order per
 * sender, as a structured clone (as BroadcastChannel does): the
 * BroadcastChannel `name`, or the memory channel of this realm when
 * `memory` is set or there is no BroadcastChannel. Posting on a closed
 * port does nothing.
 */
export function openPort(name: string, memory: boolean, on: (m: unknown) => void): Port {
  if (memory || typeof BroadcastChannel !== "function") {
    let room = rooms.get(name);
    if (!room) rooms.set(name, (room = new Set()));
    const r = room;
    const self = (m: unknown): void => on(m);
    r.add(self);
    return {
      post(m) {
        for (const p of r) {
          if (p === self) continue;
          const c = structuredClone(m);
          queueMicrotask(() => r.has(p) && p(c));
        }
      },
      close: () => r.delete(self),
    };
  }
  const ch = new BroadcastChannel(name);
  unref(ch); // Node: an open channel must not keep the process alive
  ch.onmessage = (e: MessageEvent) => on(e.data);
  return {
    post(m) {
      try {
        ch.postMessage(m);
      } catch {
        // closed
      }
    },
    close: () => ch.close(),
  };
}

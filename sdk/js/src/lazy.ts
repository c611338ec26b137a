// The client's live queries, writes and history while the offline layer
// loads. That layer (cache, queue, store, tabs, realtime, filters) is more
// than half the SDK, so the client imports it on first use rather than
// with the core: an app that only calls the records API never ships it,
// and one that does fetches it as a chunk of its own. Until it is there,
// these stand-ins answer what they can at once (an empty result, an id)
// and hand every call on, in the order made, when it arrives.

import { backoffDelay, type BackoffOptions } from "./backoff.js";
import { NetworkError, type AbeError } from "./errors.js";
import type { Live, LiveOptions, LiveRecordResult, LiveResult, OfflineClient, Writes } from "./offline.js";
import type { RecordData } from "./realtime.js";
import type { QueuedWrite } from "./queue.js";
import type { History } from "./undo.js";
import { uuidv7 } from "./uuid.js";

/** Where the stand-ins find the offline layer. */
export interface OfflineLoader {
  /** The layer, when it has loaded. */
  ready(): OfflineClient | undefined;
  /** The layer, loading it on the first call; it never rejects (see {@link offlineLoader}). */
  load(): Promise<OfflineClient>;
  /** Listens to failed attempts to load it; returns the removal. */
  onFail(fn: (err: unknown) => void): () => void;
}

/**
 * Loads the layer on the first call of `load`, trying again with backoff
 * until it comes, so that a write made before it is kept (in memory) and
 * sent, never dropped. A browser may keep refusing a module that failed
 * once until the page reloads; the service worker precaches the chunk
 * with the app, so an app opened offline has it.
 */
export function offlineLoader(importLayer: () => Promise<OfflineClient>, backoff?: BackoffOptions): OfflineLoader {
  let layer: OfflineClient | undefined;
  let loading: Promise<OfflineClient> | undefined;
  const fails = new Set<(err: unknown) => void>();
  const attempt = async (): Promise<OfflineClient> => {
    for (let n = 0; ; n++) {
      try {
        return (layer = await importLayer());
      } catch (err) {
        for (const f of [...fails]) f(err);
        await new Promise((go) => setTimeout(go, backoffDelay(n, backoff)));
      }
    }
  };
  return {
    ready: () => layer,
    load: () => (loading ??= attempt()),
    onFail: (fn) => {
      fails.add(fn);
      return () => fails.delete(fn);
    },
  };
}

/** What every live result has, for the error a failed load leaves. */
interface Result {
  error: AbeError | null;
}

const loadError = (cause: unknown) => new NetworkError("the SDK's offline layer did not load: is the app's script reachable?", cause);

/** The key of a live query or record: one object per key, made once. */
export function liveKey(kind: "q" | "r", collection: string, ...rest: (string | number | string[] | undefined)[]): string {
  return [kind, collection, ...rest.map((v) => (Array.isArray(v) ? v.join(",") : (v ?? "")))].join("\n");
}

/**
 * The client's live queries and records: one per key, as the layer keeps
 * them, whether asked for before it loaded or after.
 */
export function lazyLives(l: OfflineLoader) {
  // Asked for before the layer loaded: what the same question gets until then.
  const early = new Map<string, Live<Result>>();
  // A stand-in stays what its query is known by, so that a view holding it
  // and one asking again after the load hold the same object.
  const standIn = new WeakMap<object, Live<Result>>();
  const get = <T extends Result>(key: string, empty: T, make: (o: OfflineClient) => Live<T>): Live<T> => {
    const o = l.ready();
    if (o) {
      early.clear();
      const real = make(o);
      return (standIn.get(real) as Live<T> | undefined) ?? real;
    }
    let f = early.get(key) as Live<T> | undefined;
    if (!f) {
      const made: Live<T> = lazyLive(l, empty, (o) => {
        const real = make(o);
        standIn.set(real, made);
        return real;
      });
      early.set(key, (f = made));
    }
    return f;
  };
  return {
    live: <R extends RecordData>(collection: string, opts: LiveOptions<R> = {}): Live<LiveResult<R>> =>
      get(liveKey("q", collection, opts.filter, opts.sort, opts.limit), { records: [], source: "cache", pending: 0, error: null }, (o) => o.live(collection, opts)),
    liveRecord: <R extends RecordData>(collection: string, id: string): Live<LiveRecordResult<R>> =>
      get(liveKey("r", collection, id), { record: undefined, source: "cache", pending: 0, error: null }, (o) => o.liveRecord<R>(collection, id)),
  };
}

/**
 * A live query or record that becomes `make(layer)` once the layer loads;
 * until then its result is `empty`, with an error while loading fails.
 */
export function lazyLive<T extends Result>(l: OfflineLoader, empty: T, make: (o: OfflineClient) => Live<T>): Live<T> {
  const o = l.ready();
  if (o) return make(o);
  let real: Live<T> | undefined;
  let failed: T | undefined;
  const subs = new Map<(r: T) => void, (() => void) | undefined>();
  const offFail = l.onFail((err) => {
    failed = { ...empty, error: loadError(err) };
    for (const fn of [...subs.keys()]) fn(failed);
  });
  const got = l.load().then((o) => {
    offFail();
    real = make(o);
    for (const fn of subs.keys()) subs.set(fn, real.subscribe(fn));
    return real;
  });
  return {
    get current() {
      return real?.current ?? failed ?? empty;
    },
    subscribe(fn) {
      if (real) return real.subscribe(fn);
      subs.set(fn, undefined);
      if (failed) fn(failed);
      return () => {
        subs.get(fn)?.();
        subs.delete(fn);
      };
    },
    refetch: () => got.then((r) => r.refetch()),
  };
}

/** The write queue, taking writes before it has loaded. */
export function lazyWrites(l: OfflineLoader): Writes {
  // A write made before the layer loaded answers an id of its own at once;
  // this maps it to the queue's when the write is made there.
  const early = new Map<string, Promise<string>>();
  const later = <R>(fn: (w: Writes) => R | PromiseLike<R>): Promise<R> => l.load().then((o) => fn(o.writes));
  const write = (fn: (w: Writes) => string): string => {
    const o = l.ready();
    if (o) return fn(o.writes);
    const id = uuidv7();
    early.set(id, later(fn));
    return id;
  };
  return {
    create: (c, data) => {
      const o = l.ready();
      if (o) return o.writes.create(c, data);
      // The record's id is the caller's to use at once (a link, a second write).
      const d = typeof data.id === "string" ? data : { ...data, id: uuidv7() };
      void later((w) => w.create(c, d));
      return d.id as string;
    },
    update: (c, id, data, opts) => write((w) => w.update(c, id, data, opts)),
    replace: (c, id, data, opts) => write((w) => w.replace(c, id, data, opts)),
    applyOps: (c, id, ops, opts) => write((w) => w.applyOps(c, id, ops, opts)),
    delete: (c, id, opts) => write((w) => w.delete(c, id, opts)),
    apply: (edits, opts) => {
      const o = l.ready();
      if (o) return o.writes.apply(edits, opts);
      const ids = later((w) => w.apply(edits, opts));
      return edits.map((_, i) => {
        const id = uuidv7();
        early.set(
          id,
          ids.then((all) => all[i] ?? id),
        );
        return id;
      });
    },
    flush: () => later((w) => w.flush()),
    wait: async (id) => {
      const real = await (early.get(id) ?? id);
      return later((w) => w.wait(real));
    },
    get pending(): readonly QueuedWrite[] {
      return l.ready()?.writes.pending ?? [];
    },
    onChange: (fn) => {
      const o = l.ready();
      if (o) return o.writes.onChange(fn);
      let off: (() => void) | undefined;
      let gone = false;
      void later((w) => {
        if (!gone) off = w.onChange(fn);
      });
      return () => {
        gone = true;
        off?.();
      };
    },
    retryNow: () => void later((w) => w.retryNow()),
  };
}

/**
 * Undo and redo of the signed-in user: the history of whoever is signed
 * in when it is used (a login brings another), empty until the layer has
 * loaded.
 */
export function lazyHistory(l: OfflineLoader): History {
  const now = () => l.ready()?.history;
  const later = <R>(fn: (h: History) => R | PromiseLike<R>): Promise<R> => l.load().then((o) => fn(o.history));
  return {
    get canUndo() {
      return now()?.canUndo ?? false;
    },
    get canRedo() {
      return now()?.canRedo ?? false;
    },
    get undoSteps() {
      return now()?.undoSteps ?? [];
    },
    get redoSteps() {
      return now()?.redoSteps ?? [];
    },
    undo: () => later((h) => h.undo()),
    redo: () => later((h) => h.redo()),
    record: (edit) => void later((h) => h.record(edit)),
    seal: () => now()?.seal(),
    clear: () => void later((h) => h.clear()),
    subscribe: (fn) => {
      let on: History | undefined;
      let off: (() => void) | undefined;
      let offWrites: (() => void) | undefined;
      let gone = false;
      // A new user's queue tells its listeners: then the history is theirs.
      const follow = () => {
        const h = now();
        if (gone || !h || h === on) return;
        off?.();
        off = (on = h).subscribe(fn);
        fn();
      };
      void l
        .load()
        .then((o) => {
          follow();
          if (!gone) offWrites = o.writes.onChange(follow);
        });
      return () => {
        gone = true;
        off?.();
        offWrites?.();
      };
    },
  };
}

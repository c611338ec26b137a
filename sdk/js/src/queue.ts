// The transaction queue: optimistic writes, sent in order through
// POST /api/batch, retried until they land exactly once, rolled back when
// the server refuses them, and kept across reloads.

import { backoffDelay, type BackoffOptions } from "./backoff.js";
import type { RecordCache, RecordData } from "./cache.js";
import { AbeError, ConflictError, RateLimitedError } from "./errors.js";
import type { Transport } from "./http.js";
import { unref } from "./locks.js";
import { applyOperations, jsonEqual, type Operation } from "./operations.js";
import type { RecordOps, UndoRedoStack } from "./undo.js";
import { uuidv7 } from "./uuid.js";

export { uuidv7 } from "./uuid.js";

/** What a write does, as /api/batch names it. */
export type WriteAction = "create" | "update" | "replace" | "delete";

/** A queued write. Plain JSON: it is what the storage adapter keeps. */
export interface QueuedWrite {
  /** The write's own id. */
  id: string;
  collection: string;
  action: WriteAction;
  /** The record's id (client-generated for creates, so a retried create is safe). */
  recordId: string;
  /** The fields (create, replace, and update as a partial object). */
  data?: Record<string, unknown>;
  /** Operations (update). */
  ops?: Operation[];
  /** The If-Match version: the write applies to this version or not at all (409). */
  version?: number;
  /** The record the write started from (for conflicts). */
  base?: RecordData | null;
  /** Set when the write has been sent and the answer did not come: it may have landed. */
  sent?: string;
}

/** What became of a write. */
export type WriteOutcome = "applied" | "rolledBack" | "conflict" | "dropped";

/** A conditional write met a newer version: what the app needs to merge. */
export interface WriteConflict {
  write: QueuedWrite;
  /** The record the write started from. */
  base: RecordData | null;
  /** The record as this client wanted it (null: deleted). */
  local: RecordData | null;
  /** The record as it is on the server now. */
  remote: RecordData | null;
  error: AbeError;
}

/** Where the queue is kept between reloads. */
export interface QueueStorage {
  load(): QueuedWrite[] | null | Promise<QueuedWrite[] | null>;
  save(writes: QueuedWrite[]): void | Promise<void>;
}

/** Keeps the queue in memory: lost on reload. */
export class MemoryQueueStorage implements QueueStorage {
  private writes: QueuedWrite[] | null = null;
  load(): QueuedWrite[] | null {
    return this.writes && (JSON.parse(JSON.stringify(this.writes)) as QueuedWrite[]);
  }
  save(writes: QueuedWrite[]): void {
    this.writes = JSON.parse(JSON.stringify(writes)) as QueuedWrite[];
  }
}

/** The part of the Web Storage API {@link LocalStorageQueueStorage} uses. */
export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** Marks a tab that let go of its writes (pagehide) in the index. */
const RELEASED = -1;

/**
 * Keeps the queue in localStorage, one slot per tab: `key:<tab id>`, with
 * an index of tabs and when each was last seen. Tabs never write each
 * other's slots; a tab that starts adopts the writes of tabs not seen for
 * `staleAfter` ms (closed or crashed), so nothing queued is lost when a
 * tab goes away. Should two tabs adopt one slot at the same moment, its
 * writes are sent twice, which the queue's ids and operations make
 * harmless (a create's id answers 409, operations are idempotent).
 */
export class LocalStorageQueueStorage implements QueueStorage {
  private readonly storage: KeyValueStorage;
  private readonly tab = Math.random().toString(36).slice(2, 10);
  private timer: ReturnType<typeof setInterval> | undefined;
  constructor(
    private readonly key = "abe.queue",
    storage?: KeyValueStorage,
    private readonly staleAfter = 15_000,
    private readonly now: () => number = Date.now,
  ) {
    const s = storage ?? (globalThis as { localStorage?: KeyValueStorage }).localStorage;
    if (!s) throw new Error("abe: localStorage is not available here");
    this.storage = s;
  }
  private readJSON<T>(key: string): T | null {
    try {
      const raw = this.storage.getItem(key);
      return raw ? (JSON.parse(raw) as T) : null;
    } catch {
      return null;
    }
  }
  private tabs(): Record<string, number> {
    return this.readJSON<Record<string, number>>(this.key + ":tabs") ?? {};
  }
  private beat(): void {
    const tabs = this.tabs();
    tabs[this.tab] = this.now();
    this.storage.setItem(this.key + ":tabs", JSON.stringify(tabs));
  }
  load(): QueuedWrite[] | null {
    const tabs = this.tabs();
    const now = this.now();
    const adopted: QueuedWrite[] = [];
    // The key of a single shared slot, as earlier versions kept it.
    for (const slot of [this.key, ...Object.keys(tabs).filter((t) => t !== this.tab && (tabs[t] === RELEASED || now - (tabs[t] ?? 0) > this.staleAfter)).map((t) => this.key + ":" + t)]) {
      const writes = this.readJSON<QueuedWrite[]>(slot);
      if (Array.isArray(writes)) adopted.push(...writes);
      this.storage.removeItem(slot);
      delete tabs[slot.slice(this.key.length + 1)];
    }
    tabs[this.tab] = now;
    this.storage.setItem(this.key + ":tabs", JSON.stringify(tabs));
    if (this.timer === undefined && typeof setInterval === "function") {
      this.timer = setInterval(() => this.beat(), Math.max(1000, this.staleAfter / 3));
      unref(this.timer);
      // A reload or a closed tab hands its writes over at once: the next
      // page to load adopts them without waiting for staleAfter.
      const g = globalThis as { addEventListener?: (type: string, fn: () => void) => void };
      g.addEventListener?.("pagehide", () => this.release());
    }
    if (adopted.length) this.save(adopted);
    return adopted.length ? adopted : null;
  }
  save(writes: QueuedWrite[]): void {
    const slot = this.key + ":" + this.tab;
    if (writes.length) this.storage.setItem(slot, JSON.stringify(writes));
    else this.storage.removeItem(slot);
    this.beat();
  }
  /** Stops the heartbeat; the tab's writes wait for another tab to adopt them. */
  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
  /** Gives this tab's writes to the next tab that loads (on pagehide). */
  release(): void {
    this.close();
    const tabs = this.tabs();
    tabs[this.tab] = RELEASED;
    this.storage.setItem(this.key + ":tabs", JSON.stringify(tabs));
  }
}

/** Options of {@link WriteQueue}. */
export interface QueueOptions {
  /** How requests reach the server (the client's transport). */
  transport: Transport;
  /** The cache the writes apply to optimistically. */
  cache: RecordCache;
  /** Where the queue is kept: localStorage when there is one, else memory. */
  storage?: QueueStorage;
  /** A write the server refused (400, 403, 422) was rolled back. */
  onRollback?: (write: QueuedWrite, error: AbeError) => void;
  /**
   * A conditional write met a newer version and was rolled back. Return
   * fields to write on top of `remote` (say, `mergeFields(...).merged`) to
   * queue them as a new conditional write; return nothing to keep remote.
   */
  onConflict?: (conflict: WriteConflict) => Record<string, unknown> | void;
  /** A write was dropped for another 4xx (404, 409 without If-Match, 413...): its change was undone. */
  onDrop?: (write: QueuedWrite, error: AbeError) => void;
  /** Retry delays (default 1 s doubling up to 60 s, with jitter); Retry-After wins when longer. */
  backoff?: BackoffOptions;
  /** Random numbers in [0, 1) for jitter. */
  random?: () => number;
  /** Most writes per batch (default 100, the server's limit). */
  maxBatch?: number;
}

/** Options of a conditional write. */
export interface QueueWriteOptions {
  /** Make it conditional: `true` for the version the cache holds, or a version. */
  ifMatch?: boolean | number;
}

/** Fields every record has, left out of merges. */
const SYSTEM = new Set(["id", "version", "created_at", "updated_at"]);

/** The result of {@link mergeFields}. */
export interface MergeResult {
  /** remote with the fields only this client changed, taken from local (conflicting fields keep remote's value). */
  merged: Record<string, unknown>;
  /** Fields both sides changed to different values. */
  conflicts: string[];
  /** The fields to write on top of remote: local changes that do not conflict. */
  changes: Record<string, unknown>;
}

/**
 * A field-level three-way merge: a field changed on one side only takes
 * that side's value; a field changed on both sides to different values is
 * a conflict, left at remote's value and named in `conflicts`.
 */
export function mergeFields(base: object | null, local: object | null, remote: object | null): MergeResult {
  const b = (base ?? {}) as Record<string, unknown>;
  const l = (local ?? {}) as Record<string, unknown>;
  const r = (remote ?? {}) as Record<string, unknown>;
  const merged: Record<string, unknown> = { ...r };
  const conflicts: string[] = [];
  const changes: Record<string, unknown> = {};
  for (const k of new Set([...Object.keys(l), ...Object.keys(r)])) {
    if (SYSTEM.has(k) || jsonEqual(b[k], l[k]) || jsonEqual(l[k], r[k])) continue;
    if (jsonEqual(b[k], r[k])) merged[k] = changes[k] = l[k] === undefined ? null : l[k];
    else conflicts.push(k);
  }
  return { merged, conflicts, changes };
}

/** The change a write makes to a record, for the cache's optimistic layer. */
export function applyWrite(w: QueuedWrite, r: RecordData | undefined): RecordData | undefined {
  switch (w.action) {
    case "create":
      return { ...w.data, id: w.recordId, version: r?.version ?? 0 } as RecordData;
    case "replace":
      return r && ({ id: r.id, version: r.version, created_at: r.created_at, updated_at: r.updated_at, ...w.data } as RecordData);
    case "delete":
      return undefined;
    case "update":
      if (!r) return r;
      if (w.ops) {
        try {
          return applyOperations(r, w.ops);
        } catch {
          return r;
        }
      }
      return { ...r, ...w.data };
  }
}

interface BatchAnswer {
  results: { status: number; record?: RecordData }[];
}

const RETRY_STATUS = new Set([0, 401, 408, 429]);

/**
 * The write queue. Each write changes the cache at once (an optimistic
 * layer), is kept in storage, and is sent in order; consecutive writes go
 * in one `POST /api/batch`. A write lands exactly once: creates carry
 * client-made UUIDv7 ids, so a retried create whose first answer was lost
 * meets its own record (409 "id is taken") and counts as applied; the
 * same holds for a conditional write whose record already shows it, and
 * for a delete of a record already gone.
 *
 * - network errors, 5xx, 429 (and 401, waiting for a new token): retried
 *   with exponential backoff and jitter, honouring Retry-After;
 * - 400, 403, 422: rolled back, `onRollback(write, error)`;
 * - 409 on a conditional write: rolled back, `onConflict({base, local, remote})`;
 * - other 4xx: dropped (rolled back too), `onDrop(write, error)`.
 */
export class WriteQueue {
  private readonly o: QueueOptions;
  private readonly storage: QueueStorage;
  private writes: QueuedWrite[] = [];
  private readonly waiters = new Map<string, ((o: WriteOutcome) => void)[]>();
  private readonly idle: (() => void)[] = [];
  private readonly listeners = new Set<(writes: readonly QueuedWrite[]) => void>();
  private running = false;
  private closed = false;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private solo = false;
  private held = false;
  /** What became of the writes settled here, by id (the latest 1000). */
  private readonly done = new Map<string, WriteOutcome>();
  /** Resolves when the queue has read its storage (and resumed what it kept). */
  readonly ready: Promise<void>;

  constructor(opts: QueueOptions) {
    this.o = opts;
    this.storage =
      opts.storage ?? ((globalThis as { localStorage?: KeyValueStorage }).localStorage ? new LocalStorageQueueStorage() : new MemoryQueueStorage());
    this.ready = this.load();
  }

  private async load(): Promise<void> {
    const kept = (await this.storage.load()) ?? [];
    this.writes = [...kept, ...this.writes];
    for (const w of kept) this.layer(w);
    this.kick();
  }

  /** The writes waiting to land, oldest first. */
  get pending(): readonly QueuedWrite[] {
    return this.writes;
  }

  /** Listens to changes of the pending writes; returns the removal. */
  onChange(fn: (writes: readonly QueuedWrite[]) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Creates a record (its id made here unless `data.id` is given); answers the id. */
  create(collection: string, data: Record<string, unknown>): string {
    const { id, ...rest } = data;
    const recordId = typeof id === "string" ? id : uuidv7();
    this.push({ id: uuidv7(), collection, action: "create", recordId, data: rest, base: null });
    return recordId;
  }

  /** Changes the given fields; answers the write's id. */
  update(collection: string, id: string, data: Record<string, unknown>, opts?: QueueWriteOptions): string {
    return this.push(this.make(collection, "update", id, opts, { data }));
  }

  /** Applies operations (set, listInsert, listRemove) to a record; answers the write's id. */
  applyOps(collection: string, id: string, ops: Operation[], opts?: QueueWriteOptions): string {
    return this.push(this.make(collection, "update", id, opts, { ops: [...ops] }));
  }

  /**
   * Queues operations on several records, in order; answers the writes'
   * ids. It is what an {@link UndoRedoStack} takes as `apply`:
   * `new UndoRedoStack({ apply: (ops) => queue.apply(ops) })`.
   */
  apply(edits: readonly RecordOps[], opts?: QueueWriteOptions): string[] {
    const out: string[] = [];
    for (const e of edits) {
      if (e.create) out.push(this.push({ id: uuidv7(), collection: e.collection, action: "create", recordId: e.id, data: { ...e.create }, base: null }));
      else if (e.remove) out.push(this.delete(e.collection, e.id));
      else if (e.ops.length > 0) out.push(this.applyOps(e.collection, e.id, e.ops, opts));
    }
    return out;
  }

  /** Replaces the record's fields (fields left out are cleared); answers the write's id. */
  replace(collection: string, id: string, data: Record<string, unknown>, opts?: QueueWriteOptions): string {
    return this.push(this.make(collection, "replace", id, opts, { data }));
  }

  /** Deletes a record; answers the write's id. */
  delete(collection: string, id: string, opts?: QueueWriteOptions): string {
    return this.push(this.make(collection, "delete", id, opts, {}));
  }

  /** Resolves with what became of a write (in this page's life). */
  wait(writeId: string): Promise<WriteOutcome> {
    if (!this.writes.some((w) => w.id === writeId)) return Promise.resolve(this.outcome(writeId) ?? "applied");
    return new Promise((res) => {
      const list = this.waiters.get(writeId) ?? [];
      list.push(res);
      this.waiters.set(writeId, list);
    });
  }

  /** Resolves when no write is pending. */
  async flush(): Promise<void> {
    await this.ready;
    if (this.writes.length === 0) return;
    return new Promise((res) => this.idle.push(res));
  }

  /** Tries again now, not waiting for the backoff (call it when the browser goes online). */
  retryNow(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.attempt = 0;
    this.kick();
  }

  /** What became of a write settled here, if one was. */
  outcome(writeId: string): WriteOutcome | undefined {
    return this.done.get(writeId);
  }

  /** While held, writes are kept and shown but not sent: another tab sends them (src/tabs.ts). */
  hold(held: boolean): void {
    this.held = held;
    this.kick();
  }

  /**
   * Queues writes made elsewhere (by another tab, or left in a closed
   * tab's slot), first or last, skipping those it has or has settled;
   * resolves once they are saved.
   */
  add(writes: readonly QueuedWrite[], first = false): Promise<void> {
    const fresh = writes.filter((w, i) => !this.done.has(w.id) && !this.writes.some((x) => x.id === w.id) && writes.findIndex((x) => x.id === w.id) === i);
    if (!fresh.length) return Promise.resolve();
    this.writes = first ? [...fresh, ...this.writes] : [...this.writes, ...fresh];
    this.o.cache.batch(() => fresh.forEach((w) => this.layer(w)));
    const saved = this.save();
    this.kick();
    return saved;
  }

  /** Lets go of a write another tab has taken over: no outcome here. */
  forget(writeId: string): void {
    const w = this.writes.find((x) => x.id === writeId);
    if (!w) return;
    this.writes = this.writes.filter((x) => x !== w);
    this.o.cache.removeLayer(w.collection, w.recordId, w.id);
    void this.save();
    if (this.writes.length === 0) for (const f of this.idle.splice(0)) f();
  }

  /** Stops sending (what is pending stays in storage). */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  /** Drops every pending write and its optimistic change (say, on logout). */
  async clear(): Promise<void> {
    for (const w of this.writes) this.settle(w, "dropped");
    this.writes = [];
    await this.save();
    for (const f of this.idle.splice(0)) f();
  }

  private make(collection: string, action: WriteAction, id: string, opts: QueueWriteOptions | undefined, rest: Partial<QueuedWrite>): QueuedWrite {
    const w: QueuedWrite = { id: uuidv7(), collection, action, recordId: id, ...rest };
    w.base = this.o.cache.get(collection, id) ?? null;
    if (opts?.ifMatch !== undefined && opts.ifMatch !== false) {
      w.version = opts.ifMatch === true ? this.o.cache.getVersion(collection, id) : opts.ifMatch;
    }
    return w;
  }

  private push(w: QueuedWrite): string {
    this.writes.push(w);
    this.layer(w);
    void this.save();
    this.kick();
    return w.id;
  }

  private layer(w: QueuedWrite): void {
    this.o.cache.addLayer(w.collection, w.recordId, w.id, (r) => applyWrite(w, r));
  }

  private async save(): Promise<void> {
    for (const f of [...this.listeners]) f(this.writes);
    try {
      await this.storage.save(this.writes);
    } catch {
      // storage full or gone: the queue still works for this page
    }
  }

  private kick(): void {
    if (!this.running && !this.timer && !this.closed && !this.held) void this.run();
  }

  /** Takes the next batch: what was sent together before, or consecutive writes. */
  private take(): QueuedWrite[] {
    const first = this.writes[0];
    if (!first) return [];
    if (first.sent) return this.writes.filter((w) => w.sent === first.sent);
    const max = this.solo ? 1 : (this.o.maxBatch ?? 100);
    const out: QueuedWrite[] = [];
    const seen = new Set<string>();
    for (const w of this.writes) {
      const k = w.collection + "/" + w.recordId;
      // A conditional write waits for earlier writes of its record to land (they move its version).
      if (out.length >= max || w.sent || (w.version !== undefined && seen.has(k))) break;
      seen.add(k);
      out.push(w);
    }
    return out;
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      await this.ready;
      while (!this.closed && !this.held && this.writes.length > 0) {
        const batch = this.take();
        const retried = batch[0]!.sent !== undefined;
        const tag = batch[0]!.sent ?? uuidv7();
        for (const w of batch) w.sent = tag;
        await this.save();
        let answer: BatchAnswer;
        try {
          const res = await this.o.transport.request<BatchAnswer>("POST", "/api/batch", { ops: batch.map(toBatchOp) });
          answer = res.data;
        } catch (err) {
          const e = err instanceof AbeError ? err : new AbeError(String(err), { status: 0, cause: err });
          if (RETRY_STATUS.has(e.status) || e.status >= 500) {
            this.later(e);
            return;
          }
          await this.failed(batch, e, retried);
          continue;
        }
        this.attempt = 0;
        this.solo = false;
        this.o.cache.batch(() => batch.forEach((w, i) => this.landed(w, answer.results[i]?.record)));
        await this.save();
      }
    } finally {
      this.running = false;
    }
    if (this.writes.length === 0) for (const f of this.idle.splice(0)) f();
  }

  private later(e: AbeError): void {
    const after = e instanceof RateLimitedError && e.retryAfter !== undefined ? e.retryAfter * 1000 : 0;
    const delay = Math.max(after, backoffDelay(this.attempt++, { initial: 1000, max: 60_000, ...this.o.backoff }, this.o.random));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.kick();
    }, delay);
  }

  /** A write landed: the server's record replaces the optimistic one. */
  private landed(w: QueuedWrite, record: RecordData | undefined): void {
    const cache = this.o.cache;
    const before = cache.getVersion(w.collection, w.recordId);
    if (w.action === "delete") cache.remove(w.collection, w.recordId, before + 1);
    else if (record) cache.put(w.collection, record);
    const after = record?.version;
    // Later conditional writes of this record made on top of this one's change (they saw a
    // version between its base and its result): the only change in between is ours.
    const from = w.base?.version ?? 0;
    for (const x of this.writes)
      if (x !== w && x.collection === w.collection && x.recordId === w.recordId && after !== undefined && x.version !== undefined && x.version >= from && x.version < after)
        x.version = after;
    this.settle(w, "applied");
  }

  private settle(w: QueuedWrite, outcome: WriteOutcome): void {
    this.writes = this.writes.filter((x) => x !== w);
    this.o.cache.removeLayer(w.collection, w.recordId, w.id);
    this.done.set(w.id, outcome);
    if (this.done.size > 1000) this.done.delete(this.done.keys().next().value as string);
    for (const f of this.waiters.get(w.id) ?? []) f(outcome);
    this.waiters.delete(w.id);
  }

  /** The server refused the batch: nothing of it was applied. */
  private async failed(batch: QueuedWrite[], e: AbeError, retried: boolean): Promise<void> {
    for (const w of batch) delete w.sent;
    if (e.index === undefined && batch.length > 1) {
      // The server did not say which write: send them one at a time.
      this.solo = true;
      return;
    }
    const i = e.index ?? 0;
    const w = batch[i];
    if (!w) {
      batch.forEach((x) => this.settle(x, "dropped"));
      return;
    }
    if (retried && (await this.alreadyApplied(w, e))) {
      // An earlier attempt of this very batch landed (its answer was lost); batches are all or nothing.
      await Promise.all(batch.map((x) => this.refetch(x)));
      await this.save();
      return;
    }
    const cache = this.o.cache;
    if (e.status === 409 && w.version !== undefined && e instanceof ConflictError) {
      const remote = (e.current as RecordData | undefined) ?? null;
      if (remote) cache.put(w.collection, remote);
      const base = w.base ?? null;
      const local = applyWrite(w, base ?? undefined) ?? null;
      this.settle(w, "conflict");
      const next = this.o.onConflict?.({ write: w, base, local, remote, error: e });
      if (next && remote && Object.keys(next).length) this.update(w.collection, w.recordId, next, { ifMatch: remote.version });
    } else if (e.status === 400 || e.status === 403 || e.status === 422) {
      this.settle(w, "rolledBack");
      this.o.onRollback?.(w, e);
    } else {
      this.settle(w, "dropped");
      this.o.onDrop?.(w, e);
    }
    await this.save();
  }

  /** Whether a refusal of a retried write shows that its earlier attempt landed. */
  private async alreadyApplied(w: QueuedWrite, e: AbeError): Promise<boolean> {
    if (w.action === "create") return e.status === 409 && e.fieldErrors.some((f) => f.field === "id");
    if (w.action === "delete") return e.status === 404;
    const cur = (e as ConflictError<RecordData>).current;
    if (e.status !== 409 || !cur || w.version === undefined || cur.version <= w.version) return false;
    const mine = applyWrite(w, cur);
    return !!mine && Object.keys(mine).every((k) => SYSTEM.has(k) || jsonEqual(mine[k], cur[k]));
  }

  private async refetch(w: QueuedWrite): Promise<void> {
    const cache = this.o.cache;
    try {
      const r = await this.o.transport.request<RecordData>("GET", `/api/collections/${w.collection}/records/${w.recordId}`);
      cache.put(w.collection, r.data);
    } catch (err) {
      if (err instanceof AbeError && err.status === 404) cache.remove(w.collection, w.recordId, cache.getVersion(w.collection, w.recordId));
    }
    this.settle(w, "applied");
  }
}

function toBatchOp(w: QueuedWrite): Record<string, unknown> {
  const op: Record<string, unknown> = { collection: w.collection, action: w.action, id: w.recordId };
  if (w.version !== undefined) op.version = w.version;
  if (w.ops) op.ops = w.ops;
  else if (w.action !== "delete") op.data = w.data ?? {};
  return op;
}

// The offline-first data layer: live queries answered from the offline
// store at once and kept current by the server and realtime, a write
// queue that persists with them, and undo/redo over the same writes. One
// session per signed-in user: its cache, store and queue; a logout
// deletes the user's store.

import { backoffDelay, type BackoffOptions } from "./backoff.js";
import { RecordCache, type CacheQuery } from "./cache.js";
import { AbeError, NotFoundError } from "./errors.js";
import { compileFilter, type FilterEnv } from "./filter.js";
import { liveKey } from "./lazy.js";
import type { Transport } from "./http.js";
import { unref } from "./locks.js";
import { invertOperations, set, type Operation } from "./operations.js";
import { LocalStorageQueueStorage, WriteQueue, type QueuedWrite, type QueueOptions, type QueueWriteOptions, type WriteOutcome } from "./queue.js";
import { collectionTopic, RealtimeClient, recordTopic, type RealtimeEvent, type RealtimeHandler, type RealtimeNotice, type RecordData, type SubscribeOptions, type WebSocketConstructor } from "./realtime.js";
import { openStore, storeName, StoreQueueStorage, type OfflineStore, type StoredQuery, type StoredRecord } from "./store.js";
import { shareTabs, type Tabs } from "./tabs.js";
import { UndoRedoStack, type RecordOps } from "./undo.js";

/** Options of the offline layer (`createClient({ offline })`). */
export interface OfflineOptions extends Pick<QueueOptions, "onRollback" | "onConflict" | "onDrop" | "backoff"> {
  /** Where data is kept: "indexeddb" (the default with `offline: true`) or "memory". */
  storage?: "indexeddb" | "memory";
  /** The IndexedDB factory (the global one by default). */
  indexedDB?: IDBFactory;
  /** Told when the data cannot be kept (no IndexedDB, private mode, quota); console.warn by default. */
  onWarning?: (message: string, cause?: unknown) => void;
  /** The WebSocket constructor for realtime (the global one by default). */
  WebSocket?: WebSocketConstructor;
  /** How long realtime keeps a subscription after its last live query leaves, in ms (10 000). */
  unsubscribeDelay?: number;
  /**
   * Share one WebSocket and one sending queue among the tabs of the user
   * (a leader elected with Web Locks; the others go through it): on by
   * default with IndexedDB; false gives each tab its own.
   */
  tabs?: boolean;
}

/** Options of a live query. */
export interface LiveOptions<R> {
  /** The list filter, like `done == false`. */
  filter?: string;
  /** The list sort, like `["-created_at"]` (the server's default). */
  sort?: string | string[];
  /** Most records to fetch (default 1000). */
  limit?: number;
  /**
   * Whether a record belongs (undefined: cannot tell). It places local
   * writes and events in a filtered query at once; without it a change
   * that may belong refetches the query.
   */
  match?: (record: R) => boolean | undefined;
}

/** Where a live answer comes from: the offline store (not yet confirmed), or the server (kept live by realtime). */
export type LiveSource = "cache" | "server";

/** What a live query tells its subscribers. */
export interface LiveResult<R> {
  records: R[];
  source: LiveSource;
  /** Writes of the collection still waiting to land. */
  pending: number;
  /** The last failure to reach the server (the records are then the cached ones), or null. */
  error: AbeError | null;
}

/** What a live record tells its subscribers. */
export interface LiveRecordResult<R> {
  /** The record with pending writes applied; undefined when it does not exist (or is not known yet). */
  record: R | undefined;
  source: LiveSource;
  pending: number;
  error: AbeError | null;
}

/** A live query or record: subscribe to get its result now and on every change. */
export interface Live<T> {
  /** The result as it is now (records empty before anything loaded). */
  readonly current: T;
  /** Calls fn with the result now (when known) and on every change; returns the removal. */
  subscribe(fn: (result: T) => void): () => void;
  /** Asks the server again. */
  refetch(): Promise<void>;
}

/** The write queue of the signed-in user: optimistic, persistent, exactly once, undoable. */
export interface Writes {
  /** Creates a record (its id made here unless `data.id` is given); answers the id. */
  create(collection: string, data: Record<string, unknown>): string;
  /** Changes the given fields; answers the write's id. */
  update(collection: string, id: string, data: Record<string, unknown>, opts?: QueueWriteOptions): string;
  /** Replaces the record's fields; answers the write's id. */
  replace(collection: string, id: string, data: Record<string, unknown>, opts?: QueueWriteOptions): string;
  /** Applies operations (set, listInsert, listRemove); answers the write's id. */
  applyOps(collection: string, id: string, ops: Operation[], opts?: QueueWriteOptions): string;
  /** Operations on several records, as one undo step. */
  apply(edits: readonly RecordOps[], opts?: QueueWriteOptions): string[];
  /** Deletes a record; answers the write's id. */
  delete(collection: string, id: string, opts?: QueueWriteOptions): string;
  /** Resolves when no write is pending. */
  flush(): Promise<void>;
  /** What became of a write. */
  wait(writeId: string): Promise<WriteOutcome>;
  /** The writes waiting to land, oldest first. */
  readonly pending: readonly QueuedWrite[];
  /** Listens to changes of the pending writes; returns the removal. */
  onChange(fn: (writes: readonly QueuedWrite[]) => void): () => void;
  /** Sends now, not waiting for the backoff. */
  retryNow(): void;
}

/** What the offline layer needs of the client. */
export interface OfflineHost {
  url: string;
  transport: Transport;
  getAccessToken(): Promise<string | null>;
  getUserId(): Promise<string | null>;
  onAuthChange(fn: (userId: string | null, event: string) => void): () => void;
  list(collection: string, q: { filter?: string; sort?: string; limit: number; cursor: string | null }): Promise<{ items: RecordData[]; next_cursor: string | null }>;
  get(collection: string, id: string): Promise<RecordData>;
}

const SYSTEM = new Set(["id", "version", "created_at", "updated_at", "expand"]);
const fields = (r: RecordData | undefined): Record<string, unknown> =>
  Object.fromEntries(Object.entries(r ?? {}).filter(([k]) => !SYSTEM.has(k)));

/** One user's data: cache, store, queue and history. */
class Session {
  readonly cache = new RecordCache();
  readonly store: Promise<OfflineStore>;
  readonly queue: WriteQueue;
  readonly history: UndoRedoStack;
  private readonly queueStorage: StoreQueueStorage;
  /** The tab's part in sharing one connection and queue, when the tabs share. */
  private readonly tabs: Tabs | undefined;
  private dirty = new Set<string>();
  private queries = new Map<string, StoredQuery>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private loading = 0;
  private warned = false;
  private readonly off: () => void;
  /** Who the session is for, once known: what a filter's `auth` is. */
  auth: FilterEnv["auth"];

  constructor(
    readonly userId: Promise<string | null>,
    host: OfflineHost,
    private readonly o: OfflineOptions,
    private readonly rt: RealtimeClient,
    migrate: boolean,
  ) {
    void userId.then((u) => (this.auth = u ? { id: u } : null));
    const name = userId.then((u) => storeName(host.url, u));
    this.store = name.then((n) => openStore(n, { storage: o.storage, indexedDB: o.indexedDB, onWarning: (m, e) => this.warn(m, e) }));
    this.queueStorage = new StoreQueueStorage(this.store, { migrate: migrate ? migrateLocalStorageQueue : undefined });
    this.queue = new WriteQueue({
      transport: host.transport,
      cache: this.cache,
      storage: this.queueStorage,
      onRollback: o.onRollback,
      onConflict: o.onConflict,
      onDrop: o.onDrop,
      backoff: o.backoff,
    });
    this.history = new UndoRedoStack({ apply: (edits) => this.queue.apply(edits) });
    const g = globalThis as { indexedDB?: unknown; BroadcastChannel?: unknown; navigator?: { locks?: unknown } };
    if (o.tabs ?? (o.storage !== "memory" && !!(o.indexedDB ?? g.indexedDB) && !!(g.navigator?.locks ?? g.BroadcastChannel)))
      this.tabs = shareTabs(name, { queue: this.queue, cache: this.cache, rt, adopt: () => this.queueStorage.adopt() });
    this.off = this.cache.onRecordChange((c, id) => {
      if (this.loading > 0) return;
      this.dirty.add(c + "\n" + id);
      this.schedule();
    });
  }

  /** The writes waiting to land (in every tab, when the tabs share), oldest first. */
  get pending(): readonly QueuedWrite[] {
    return this.tabs?.pending ?? this.queue.pending;
  }

  onPending(fn: (writes: readonly QueuedWrite[]) => void): () => void {
    return (this.tabs ?? this.queue).onChange(fn);
  }

  flush(): Promise<void> {
    return (this.tabs ?? this.queue).flush();
  }

  retryNow(): void {
    (this.tabs ?? this.queue).retryNow();
  }

  wait(writeId: string): Promise<WriteOutcome> {
    return (this.tabs ?? this.queue).wait(writeId);
  }

  /** Subscribes through this tab's realtime client, or the leading tab's. */
  subscribe(topic: string, h: RealtimeHandler, opts?: SubscribeOptions): () => void {
    return (this.tabs ?? this.rt).subscribe(topic, h, opts);
  }

  warn(message: string, cause?: unknown): void {
    if (this.warned) return;
    this.warned = true;
    (this.o.onWarning ?? ((m: string) => console.warn(m)))(message, cause);
  }

  /** Stores records read from the store without writing them back. */
  quietly(fn: () => void): void {
    this.loading++;
    try {
      fn();
    } finally {
      this.loading--;
    }
  }

  saveQuery(q: StoredQuery): void {
    this.queries.set(q.key, q);
    this.schedule();
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => void this.persist(), 0);
  }

  /** Writes the changed records and queries through to the store. */
  async persist(): Promise<void> {
    this.timer = undefined;
    const records: StoredRecord[] = [];
    for (const k of this.dirty) {
      const [c, id] = k.split("\n") as [string, string];
      const version = this.cache.getVersion(c, id);
      if (version === 0) continue; // only a pending write knows it
      const record = this.cache.getServer(c, id);
      records.push({ collection: c, id, version, deleted: this.cache.isDeleted(c, id) || undefined, record });
    }
    const queries = [...this.queries.values()];
    this.dirty.clear();
    this.queries.clear();
    try {
      await (await this.store).write(records, queries);
    } catch (err) {
      this.warn("abe: the offline store is full or gone: changes of this page are kept in memory only", err);
    }
  }

  async close(destroy: boolean): Promise<void> {
    this.off();
    clearTimeout(this.timer);
    if (destroy) await this.queue.clear();
    this.queue.close();
    // The slot's lock goes before the lead, so the next leader adopts the slot.
    this.queueStorage.close();
    this.tabs?.close();
    await (await this.store).close(destroy);
  }
}

/**
 * Takes over the localStorage queue of earlier SDK versions (the key
 * "abe.queue"). That queue did not say whose writes it held, so only the
 * session a page opens first takes it: the one of the token store's user,
 * who would have sent them under the earlier version. A user who signs in
 * later in the page never sends them with their token.
 */
function migrateLocalStorageQueue(): QueuedWrite[] | null {
  const ls = (globalThis as { localStorage?: Storage }).localStorage;
  if (!ls) return null;
  let any = false;
  for (let i = 0; i < ls.length; i++) if (ls.key(i)?.startsWith("abe.queue")) any = true;
  if (!any) return null;
  const old = new LocalStorageQueueStorage("abe.queue", ls, 0);
  const writes = old.load();
  old.save([]);
  old.close();
  ls.removeItem("abe.queue:tabs");
  return writes;
}

/** The offline layer of one client. */
export class OfflineClient {
  readonly rt: RealtimeClient;
  private session: Session;
  private readonly lives = new Map<string, LiveBase<LiveResult<RecordData>>>();
  /** The live queries and records with subscribers: each follows a change of user. */
  private readonly bound = new Set<LiveBase<LiveResult<RecordData>>>();
  private readonly writeListeners = new Set<(writes: readonly QueuedWrite[]) => void>();
  /** The write queue of the signed-in user. */
  readonly writes: Writes;
  private readonly offAuth: () => void;
  private readonly offWindow: () => void;

  constructor(
    private readonly host: OfflineHost,
    private readonly o: OfflineOptions,
  ) {
    this.rt = new RealtimeClient({
      url: host.url,
      WebSocket: o.WebSocket,
      getToken: () => host.getAccessToken(),
      onTokenChange: (l) => host.onAuthChange(() => l()),
      unsubscribeDelay: o.unsubscribeDelay,
    });
    this.session = this.open(host.getUserId(), true);
    this.writes = this.makeWrites();
    let current: Promise<string | null> = this.session.userId;
    this.offAuth = host.onAuthChange((userId, event) => {
      void current.then((was) => {
        if (was === userId) return;
        const old = this.session;
        current = Promise.resolve(userId);
        this.session = this.open(current, false);
        for (const f of this.writeListeners) f(this.session.pending);
        // A logout (or a refused refresh) deletes the user's data: the
        // next user of this computer must not see it.
        void old.close(event === "logout");
        for (const l of this.bound) l.rebind();
      });
    });
    const w = globalThis as { addEventListener?: typeof addEventListener; removeEventListener?: typeof removeEventListener; document?: Document };
    const wake = () => {
      if (w.document?.visibilityState === "hidden") return;
      this.session.retryNow();
      for (const l of this.bound) if (l.current.error) void l.refetch();
    };
    w.addEventListener?.("online", wake);
    w.document?.addEventListener?.("visibilitychange", wake);
    this.offWindow = () => {
      w.removeEventListener?.("online", wake);
      w.document?.removeEventListener?.("visibilitychange", wake);
    };
  }

  private open(userId: Promise<string | null>, first: boolean): Session {
    const s = new Session(userId, this.host, this.o, this.rt, first);
    s.onPending((w) => {
      if (s === this.session) for (const f of this.writeListeners) f(w);
    });
    return s;
  }

  /** How a live query spaces its retries after a failed fetch: the queue's backoff. */
  get retryBackoff(): BackoffOptions | undefined {
    return this.o.backoff;
  }

  /** The current user's session. */
  get current(): Session {
    return this.session;
  }

  live<R extends RecordData>(collection: string, opts: LiveOptions<R> = {}): Live<LiveResult<R>> {
    const sort = Array.isArray(opts.sort) ? opts.sort.join(",") : opts.sort;
    const key = liveKey("q", collection, opts.filter, sort, opts.limit);
    let l = this.lives.get(key) as LiveQuery<R> | undefined;
    if (!l) {
      l = new LiveQuery<R>(this, this.host, key, collection, { ...opts, sort });
      this.lives.set(key, l as unknown as LiveBase<LiveResult<RecordData>>);
    }
    return l;
  }

  liveRecord<R extends RecordData>(collection: string, id: string): Live<LiveRecordResult<R>> {
    const key = liveKey("r", collection, id);
    let l = this.lives.get(key) as LiveRecord<R> | undefined;
    if (!l) {
      l = new LiveRecord<R>(this, this.host, key, collection, id);
      this.lives.set(key, l as unknown as LiveBase<LiveResult<RecordData>>);
    }
    return l;
  }

  /** Forgets a live query no one listens to (unless another took its key since). */
  drop(key: string, l: LiveBase<LiveResult<RecordData>>): void {
    if (this.lives.get(key) === l) this.lives.delete(key);
    this.bound.delete(l);
  }

  /** A live query or record with subscribers again (perhaps held past its drop, by a view). */
  bind(key: string, l: LiveBase<LiveResult<RecordData>>): void {
    if (!this.lives.has(key)) this.lives.set(key, l);
    this.bound.add(l);
  }

  private makeWrites(): Writes {
    const client = this;
    const w: Writes = {
    create: (c, data) => {
      const id = this.session.queue.create(c, data);
      this.session.history.record({ collection: c, id, ops: [], inverse: [], action: "create", record: { ...data, id } });
      return id;
    },
    update: (c, id, data, opts) => {
      this.recordSet(c, id, data);
      return this.session.queue.update(c, id, data, opts);
    },
    replace: (c, id, data, opts) => {
      const before = this.session.cache.get(c, id);
      const all = Object.fromEntries([...Object.keys(fields(before)), ...Object.keys(data)].map((k) => [k, data[k] ?? null]));
      this.recordSet(c, id, all);
      return this.session.queue.replace(c, id, data, opts);
    },
    applyOps: (c, id, ops, opts) => {
      const before = this.session.cache.get(c, id);
      if (before) this.session.history.record({ collection: c, id, ops, inverse: invertOperations(ops, before) });
      return this.session.queue.applyOps(c, id, ops, opts);
    },
    apply: (edits, opts) => {
      this.session.history.seal();
      const out: string[] = [];
      for (const e of edits) {
        if (e.create) out.push(w.create(e.collection, { ...e.create, id: e.id }));
        else if (e.remove) out.push(w.delete(e.collection, e.id, opts));
        else out.push(w.applyOps(e.collection, e.id, e.ops, opts));
      }
      this.session.history.seal();
      return out;
    },
    delete: (c, id, opts) => {
      const before = this.session.cache.get(c, id);
      if (before) this.session.history.record({ collection: c, id, ops: [], inverse: [], action: "delete", record: fields(before) });
      return this.session.queue.delete(c, id, opts);
    },
    flush: () => this.session.flush(),
    wait: (w) => this.session.wait(w),
    get pending() {
      return client.session.pending;
    },
    onChange: (fn) => {
      // Across sessions: a new user's queue tells the same listener.
      this.writeListeners.add(fn);
      return () => this.writeListeners.delete(fn);
    },
    retryNow: () => this.session.retryNow(),
    };
    return w;
  }

  private recordSet(c: string, id: string, data: Record<string, unknown>): void {
    const before = this.session.cache.get(c, id);
    if (!before) return;
    const ops = Object.entries(data).map(([k, v]) => set([k], v));
    this.session.history.record({ collection: c, id, ops, inverse: invertOperations(ops, before) });
  }

  /** Undo and redo over the writes (Ctrl+Z with {@link bindUndoShortcuts}). */
  get history(): UndoRedoStack {
    return this.session.history;
  }

  close(): void {
    this.offAuth();
    this.offWindow();
    this.rt.close();
    void this.session.close(false);
  }
}

/** What live queries and records share: subscribers, binding to a session, the 10 s linger. */
abstract class LiveBase<T extends { source: LiveSource; pending: number; error: AbeError | null }> implements Live<T> {
  protected readonly subs = new Set<(r: T) => void>();
  protected unbind: (() => void)[] = [];
  protected known = false;
  private linger: ReturnType<typeof setTimeout> | undefined;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private attempt = 0;
  abstract current: T;

  constructor(
    protected readonly client: OfflineClient,
    protected readonly host: OfflineHost,
    protected readonly key: string,
    protected readonly collection: string,
  ) {}

  subscribe(fn: (r: T) => void): () => void {
    this.subs.add(fn);
    clearTimeout(this.linger);
    this.linger = undefined;
    if (this.subs.size === 1 && this.unbind.length === 0) this.bind();
    else if (this.known) fn(this.current);
    return () => {
      if (!this.subs.delete(fn) || this.subs.size > 0) return;
      // Kept for a while: a view that mounts again finds it live.
      this.linger = setTimeout(() => this.stop(), 10_000);
      unref(this.linger);
    };
  }

  protected emit(next: Partial<T>): void {
    this.current = { ...this.current, ...next, pending: this.pendingCount() };
    this.known = true;
    for (const f of [...this.subs]) f(this.current);
  }

  private pendingCount(): number {
    return this.client.current.pending.filter((w) => w.collection === this.collection).length;
  }

  private stop(): void {
    for (const f of this.unbind.splice(0)) f();
    this.calm();
    this.known = false;
    this.client.drop(this.key, this as unknown as LiveBase<LiveResult<RecordData>>);
  }

  /** The user changed: the same query over the new user's data. */
  rebind(): void {
    if (this.unbind.length === 0) return;
    for (const f of this.unbind.splice(0)) f();
    this.known = false;
    this.bind();
  }

  protected bind(): void {
    this.client.bind(this.key, this as unknown as LiveBase<LiveResult<RecordData>>);
    const s = this.client.current;
    this.unbind.push(s.onPending(() => this.known && this.emit({})));
    this.start(s);
  }

  protected abstract start(s: Session): void;
  abstract refetch(): Promise<void>;

  /**
   * Fetches once realtime holds the subscription, so no change falls
   * between the answer and the first event; without an ack in a second
   * (no socket, realtime off for the collection) it fetches anyway.
   */
  protected whenReady(): (n: RealtimeNotice) => boolean {
    let fetched = false;
    const go = () => {
      fetched = true;
      void this.refetch();
    };
    const t = setTimeout(go, 1000);
    this.unbind.push(() => clearTimeout(t));
    return (n) => {
      if (n.type === "ready" && (!fetched || this.current.error)) {
        clearTimeout(t);
        go();
      } else if (n.type === "error" && !fetched) {
        clearTimeout(t);
        go();
      }
      return n.type === "ready" || n.type === "error";
    };
  }

  /**
   * Tells the failure, and tries again with backoff while the answer may
   * change by itself (no answer, 429, 5xx): a fetch that failed while
   * abe restarted must not wait for the next reconnect or "online" event,
   * which may be half a minute away or never come.
   */
  protected failed(err: unknown): void {
    const e = err instanceof AbeError ? err : new AbeError(String(err), { status: 0, cause: err });
    this.emit({ error: e } as Partial<T>);
    if ((e.status === 0 || e.status === 429 || e.status >= 500) && this.unbind.length > 0) {
      clearTimeout(this.retry);
      this.retry = setTimeout(() => {
        this.retry = undefined;
        if (this.unbind.length > 0) void this.refetch();
      }, backoffDelay(this.attempt++, this.client.retryBackoff));
      unref(this.retry);
    }
  }

  /** An answer came: the next failure starts the backoff again. */
  protected calm(): void {
    clearTimeout(this.retry);
    this.retry = undefined;
    this.attempt = 0;
  }
}

class LiveQuery<R extends RecordData> extends LiveBase<LiveResult<R>> {
  current: LiveResult<R> = { records: [], source: "cache", pending: 0, error: null };
  private readonly q: CacheQuery<R>;
  private fetching: Promise<void> | undefined;
  private again = false;
  /** Events that came while a fetch was out: applied over its answer. */
  private during: RealtimeEvent[] | undefined;
  private staleTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    client: OfflineClient,
    host: OfflineHost,
    key: string,
    collection: string,
    private readonly opts: LiveOptions<R> & { sort?: string },
  ) {
    super(client, host, key, collection);
    // Without the app's own match, the filter runs here where it can:
    // local writes and events then place themselves without a refetch.
    let match = opts.match;
    if (!match && opts.filter) {
      const f = compileFilter(opts.filter);
      match = (r) => {
        const m = f.match(r, { auth: client.current.auth });
        // A record only this client has (a create not yet landed) lacks
        // what the server fills in (defaults): shown where the filter
        // cannot tell, since hiding the user's own new record is worse;
        // the server's copy is placed exactly when it lands.
        if (m === undefined && client.current.cache.getVersion(collection, r.id) === 0) return true;
        return m;
      };
    }
    this.q = { collection, filter: opts.filter, sort: opts.sort, match };
  }

  protected start(s: Session): void {
    const cache = s.cache;
    this.unbind.push(
      cache.observeQuery(this.q, (u) => {
        if (u.stale) this.soon();
        this.emit({ records: u.records as R[] });
        this.remember(s);
      }),
    );
    this.unbind.push(() => clearTimeout(this.staleTimer));
    const known = cache.getQuery(this.q);
    if (known) this.emit({ records: known, source: "server" });
    else void this.fromStore(s);
    const ready = this.whenReady();
    this.unbind.push(
      s.subscribe(collectionTopic(this.collection), (n: RealtimeNotice) => ready(n) || this.onNotice(s, n), this.opts.filter ? { filter: this.opts.filter } : {}),
    );
  }

  private async fromStore(s: Session): Promise<void> {
    try {
      const store = await s.store;
      const stored = await store.readQuery(this.key);
      if (!stored || s.cache.getQueryIds(this.q) || s !== this.client.current) return;
      const recs = await store.readRecords(this.collection, stored.ids);
      if (s.cache.getQueryIds(this.q)) return; // the server answered first
      s.quietly(() =>
        s.cache.batch(() => {
          for (const r of recs) {
            if (r.deleted) s.cache.remove(r.collection, r.id, r.version);
            else if (r.record) s.cache.put(r.collection, r.record);
          }
          s.cache.setQueryIds(this.q, this.withPending(s, stored.ids));
        }),
      );
      this.emit({ records: (s.cache.getQuery(this.q) ?? []) as R[], source: "cache" });
    } catch (err) {
      s.warn("abe: the offline store could not be read", err);
    }
  }

  /** ids, and the records of pending creates and edits that belong to the query. */
  private withPending(s: Session, ids: readonly string[]): string[] {
    const out = new Set(ids);
    for (const w of s.pending) {
      if (w.collection !== this.collection || out.has(w.recordId)) continue;
      const r = s.cache.get<R>(this.collection, w.recordId);
      if (r && (this.q.filter ? this.q.match?.(r) === true : true)) out.add(w.recordId);
    }
    return [...out];
  }

  private onNotice(s: Session, n: RealtimeNotice): void {
    if (s !== this.client.current) return;
    if (n.type === "event") {
      this.during?.push(n);
      s.cache.applyEvent(this.collection, n, this.q as CacheQuery);
    } else if (n.type === "resync") void this.refetch();
  }

  private soon(): void {
    clearTimeout(this.staleTimer);
    this.staleTimer = setTimeout(() => void this.refetch(), 200);
  }

  private remember(s: Session): void {
    if (this.current.source !== "server") return;
    const ids = s.cache.getQueryIds(this.q);
    if (ids) s.saveQuery({ key: this.key, ids: ids.filter((id) => s.cache.getVersion(this.collection, id) > 0), at: Date.now() });
  }

  refetch(): Promise<void> {
    if (this.fetching) {
      this.again = true;
      return this.fetching;
    }
    this.fetching = this.fetch().finally(() => {
      this.fetching = undefined;
      if (this.again) {
        this.again = false;
        void this.refetch();
      }
    });
    return this.fetching;
  }

  private async fetch(): Promise<void> {
    const s = this.client.current;
    const limit = this.opts.limit ?? 1000;
    this.during = [];
    try {
      const items: RecordData[] = [];
      let cursor: string | null = null;
      do {
        const page = await this.host.list(this.collection, { filter: this.opts.filter, sort: this.opts.sort, limit: Math.min(500, limit - items.length), cursor });
        items.push(...page.items);
        cursor = page.next_cursor;
      } while (cursor && items.length < limit);
      if (s !== this.client.current) return;
      const during = this.during;
      this.during = undefined;
      // What realtime told while the list was out is newer than the list,
      // or no older: the cache's versions keep the newest.
      const ids = new Set(items.map((r) => r.id));
      for (const e of during) {
        if (e.op === "delete" || e.match === false) ids.delete(e.id);
        else if (e.record) ids.add(e.id);
      }
      this.calm();
      this.current = { ...this.current, source: "server", error: null };
      s.cache.batch(() => {
        for (const r of items) s.cache.put(this.collection, r);
        s.cache.setQueryIds(this.q, this.withPending(s, [...ids]));
      });
      this.emit({ records: (s.cache.getQuery(this.q) ?? []) as R[] });
      this.remember(s);
    } catch (err) {
      this.during = undefined;
      this.failed(err);
    }
  }
}

class LiveRecord<R extends RecordData> extends LiveBase<LiveRecordResult<R>> {
  current: LiveRecordResult<R> = { record: undefined, source: "cache", pending: 0, error: null };

  constructor(
    client: OfflineClient,
    host: OfflineHost,
    key: string,
    collection: string,
    private readonly id: string,
  ) {
    super(client, host, key, collection);
  }

  protected start(s: Session): void {
    this.unbind.push(s.cache.observe<R>(this.collection, this.id, (record) => this.emit({ record })));
    const known = s.cache.get<R>(this.collection, this.id);
    if (known) this.emit({ record: known });
    else void this.fromStore(s);
    const ready = this.whenReady();
    this.unbind.push(
      s.subscribe(recordTopic(this.collection, this.id), (n) => {
        if (ready(n)) return;
        if (n.type === "event" && s === this.client.current) s.cache.applyEvent(this.collection, n);
        else if (n.type === "resync") void this.refetch();
      }),
    );
  }

  private async fromStore(s: Session): Promise<void> {
    try {
      const [r] = await (await s.store).readRecords(this.collection, [this.id]);
      if (!r || s.cache.getVersion(this.collection, this.id) > 0) return;
      s.quietly(() => {
        if (r.deleted) s.cache.remove(r.collection, r.id, r.version);
        else if (r.record) s.cache.put(r.collection, r.record);
      });
    } catch (err) {
      s.warn("abe: the offline store could not be read", err);
    }
  }

  async refetch(): Promise<void> {
    const s = this.client.current;
    try {
      const r = await this.host.get(this.collection, this.id);
      if (s !== this.client.current) return;
      this.calm();
      this.current = { ...this.current, source: "server", error: null };
      if (!s.cache.put(this.collection, r)) this.emit({ record: s.cache.get<R>(this.collection, this.id) });
    } catch (err) {
      if (err instanceof NotFoundError) {
        this.calm();
        this.current = { ...this.current, source: "server", error: null };
        const v = s.cache.getVersion(this.collection, this.id);
        if (v > 0) s.cache.remove(this.collection, this.id, v);
        this.emit({ record: s.cache.get<R>(this.collection, this.id) });
        return;
      }
      this.failed(err);
    }
  }
}

/** Makes the offline layer of a client. */
export function createOffline(host: OfflineHost, o: OfflineOptions): OfflineClient {
  return new OfflineClient(host, o);
}

// The offline store: what a live query and the write queue keep between
// reloads. IndexedDB in browsers, memory elsewhere (and where IndexedDB
// fails: private modes, a full disk). One database per server and user,
// so the next user of a shared computer never sees the last one's data.

import type { RecordData } from "./realtime.js";
import { unref, webLocks } from "./locks.js";
import type { QueuedWrite } from "./queue.js";

/** A record as the store keeps it: the server's copy and its version (a delete keeps the version). */
export interface StoredRecord {
  collection: string;
  id: string;
  version: number;
  deleted?: boolean;
  record?: RecordData;
}

/** A live query's last known result: the ids in order, and when the server sent it (ms since the epoch). */
export interface StoredQuery {
  key: string;
  ids: string[];
  at: number;
}

/** One tab's share of the write queue, and when that tab was last seen. */
export interface QueueSlot {
  tab: string;
  writes: QueuedWrite[];
  seen: number;
}

/** Where the offline client keeps its data. */
export interface OfflineStore {
  /** "indexeddb", or "memory" when nothing outlives the page. */
  readonly kind: "indexeddb" | "memory";
  /** The database's name (per server and user). */
  readonly name: string;
  readRecords(collection: string, ids: readonly string[]): Promise<StoredRecord[]>;
  readQuery(key: string): Promise<StoredQuery | undefined>;
  /** Writes records and queries in one transaction. */
  write(records: readonly StoredRecord[], queries: readonly StoredQuery[]): Promise<void>;
  readSlots(): Promise<QueueSlot[]>;
  /** Replaces one tab's slot (no writes: removes it). */
  writeSlot(slot: QueueSlot): Promise<void>;
  deleteSlots(tabs: readonly string[]): Promise<void>;
  /** Closes the store; with `destroy`, deletes every record, query and queued write in it. */
  close(destroy?: boolean): Promise<void>;
}

/**
 * The layout of the database. A store written by an older layout is
 * migrated in `upgrade`: the queue is carried over, what the server can
 * send again is dropped.
 */
export const STORE_VERSION = 2;

/**
 * Records are kept in buckets, many to an IndexedDB value: Chromium pays
 * per value read, so 5,000 records in 5,000 values took 150-250 ms to
 * read and in 32 values take a fraction of it (bench/README.md). A write
 * rewrites its bucket, which grows with the collection: 1/32 of it.
 */
const BUCKETS = 32;

/** A bucket of one collection's records, by id. */
interface Bucket {
  b: number;
  /** The records by id, as JSON: a string is read whole, objects field by field. */
  json: string;
}

/** The bucket of an id: FNV-1a, so it is the same in every tab and version. */
function bucketOf(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return (h >>> 0) % BUCKETS;
}

const bucketKey = (collection: string, b: number) => collection + "/" + b;

const RECORDS = "records";
const QUERIES = "queries";
const QUEUE = "queue";

const recKey = (collection: string, id: string) => collection + "/" + id;

/** Keeps everything in memory: lost on reload. */
export class MemoryStore implements OfflineStore {
  readonly kind = "memory" as const;
  private records = new Map<string, StoredRecord>();
  private queries = new Map<string, StoredQuery>();
  private slots = new Map<string, QueueSlot>();
  constructor(readonly name = "memory") {}
  async readRecords(collection: string, ids: readonly string[]): Promise<StoredRecord[]> {
    return ids.map((id) => this.records.get(recKey(collection, id))).filter((r): r is StoredRecord => !!r).map(clone);
  }
  async readQuery(key: string): Promise<StoredQuery | undefined> {
    const q = this.queries.get(key);
    return q && clone(q);
  }
  async write(records: readonly StoredRecord[], queries: readonly StoredQuery[]): Promise<void> {
    for (const r of records) this.records.set(recKey(r.collection, r.id), clone(r));
    for (const q of queries) this.queries.set(q.key, clone(q));
  }
  async readSlots(): Promise<QueueSlot[]> {
    return [...this.slots.values()].map(clone);
  }
  async writeSlot(slot: QueueSlot): Promise<void> {
    if (slot.writes.length) this.slots.set(slot.tab, clone(slot));
    else this.slots.delete(slot.tab);
  }
  async deleteSlots(tabs: readonly string[]): Promise<void> {
    for (const t of tabs) this.slots.delete(t);
  }
  async close(destroy = false): Promise<void> {
    if (!destroy) return;
    this.records.clear();
    this.queries.clear();
    this.slots.clear();
  }
}

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

function done<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((res, rej) => {
    r.onsuccess = () => res(r.result);
    r.onerror = () => rej(r.error);
  });
}

function committed(t: IDBTransaction): Promise<void> {
  return new Promise((res, rej) => {
    t.oncomplete = () => res();
    t.onabort = t.onerror = () => rej(t.error ?? new Error("abe: the IndexedDB transaction was aborted"));
  });
}

/** Keeps the data in IndexedDB. Use {@link openStore}, which falls back to memory. */
export class IndexedDBStore implements OfflineStore {
  readonly kind = "indexeddb" as const;
  private constructor(
    readonly name: string,
    private readonly db: IDBDatabase,
    private readonly idb: IDBFactory,
  ) {
    // Another tab deleting or upgrading the database: let it.
    db.onversionchange = () => db.close();
  }

  /** Opens (or makes, or migrates) the database called name. */
  static async open(name: string, idb: IDBFactory = indexedDB): Promise<IndexedDBStore> {
    const r = idb.open(name, STORE_VERSION);
    r.onupgradeneeded = (e) => upgrade(r.result, r.transaction!, e.oldVersion);
    r.onblocked = () => {
      // An open tab holds an older version; it closes on versionchange.
    };
    return new IndexedDBStore(name, await done(r), idb);
  }

  async readRecords(collection: string, ids: readonly string[]): Promise<StoredRecord[]> {
    if (!ids.length) return [];
    const s = this.db.transaction(RECORDS, "readonly").objectStore(RECORDS);
    const wanted = [...new Set(ids.map(bucketOf))];
    const buckets =
      wanted.length > BUCKETS / 4
        ? await done(s.getAll(IDBKeyRange.bound(collection + "/", collection + "/\uffff")) as IDBRequest<Bucket[]>)
        : await Promise.all(wanted.map((b) => done(s.get(bucketKey(collection, b)) as IDBRequest<Bucket | undefined>)));
    const by: (Record<string, StoredRecord> | undefined)[] = [];
    for (const b of buckets) if (b) by[b.b] = JSON.parse(b.json) as Record<string, StoredRecord>;
    const out: StoredRecord[] = [];
    for (const id of ids) {
      const recs = by[bucketOf(id)];
      if (recs && Object.hasOwn(recs, id)) out.push(recs[id]!);
    }
    return out;
  }

  async readQuery(key: string): Promise<StoredQuery | undefined> {
    const t = this.db.transaction(QUERIES, "readonly");
    return done(t.objectStore(QUERIES).get(key) as IDBRequest<StoredQuery | undefined>);
  }

  async write(records: readonly StoredRecord[], queries: readonly StoredQuery[]): Promise<void> {
    if (!records.length && !queries.length) return;
    const t = this.db.transaction([RECORDS, QUERIES], "readwrite");
    const rs = t.objectStore(RECORDS);
    const byBucket = new Map<string, StoredRecord[]>();
    for (const r of records) {
      const k = bucketKey(r.collection, bucketOf(r.id));
      let list = byBucket.get(k);
      if (!list) byBucket.set(k, (list = []));
      list.push(r);
    }
    // Read and rewritten in one transaction: another tab's write to the
    // same bucket waits for it, so neither loses the other's records.
    for (const [k, list] of byBucket) {
      const get = rs.get(k) as IDBRequest<Bucket | undefined>;
      get.onsuccess = () => {
        const recs = get.result ? (JSON.parse(get.result.json) as Record<string, StoredRecord>) : {};
        for (const r of list) recs[r.id] = r;
        rs.put({ b: bucketOf(list[0]!.id), json: JSON.stringify(recs) } satisfies Bucket, k);
      };
    }
    const qs = t.objectStore(QUERIES);
    for (const q of queries) qs.put(q, q.key);
    return committed(t);
  }

  async readSlots(): Promise<QueueSlot[]> {
    const t = this.db.transaction(QUEUE, "readonly");
    return done(t.objectStore(QUEUE).getAll() as IDBRequest<QueueSlot[]>);
  }

  async writeSlot(slot: QueueSlot): Promise<void> {
    const t = this.db.transaction(QUEUE, "readwrite");
    if (slot.writes.length) t.objectStore(QUEUE).put(slot, slot.tab);
    else t.objectStore(QUEUE).delete(slot.tab);
    return committed(t);
  }

  async deleteSlots(tabs: readonly string[]): Promise<void> {
    if (!tabs.length) return;
    const t = this.db.transaction(QUEUE, "readwrite");
    for (const tab of tabs) t.objectStore(QUEUE).delete(tab);
    return committed(t);
  }

  async close(destroy = false): Promise<void> {
    this.db.close();
    if (destroy) await done(this.idb.deleteDatabase(this.name));
  }
}

/**
 * Makes the stores of a layout. From an unknown or older layout only the
 * queue's slots are kept: records and queries come back from the server.
 */
function upgrade(db: IDBDatabase, t: IDBTransaction, oldVersion: number): void {
  if (oldVersion > 0) {
    for (const s of [RECORDS, QUERIES]) if (db.objectStoreNames.contains(s)) db.deleteObjectStore(s);
  }
  db.createObjectStore(RECORDS);
  db.createObjectStore(QUERIES);
  if (!db.objectStoreNames.contains(QUEUE)) db.createObjectStore(QUEUE);
  void t;
}

/** Options of {@link openStore}. */
export interface StoreOptions {
  /** "indexeddb" (the default where it exists) or "memory". */
  storage?: "indexeddb" | "memory";
  /** The IndexedDB factory (the global one by default). */
  indexedDB?: IDBFactory;
  /** Told when IndexedDB cannot be used and the data lives in memory only. */
  onWarning?: (message: string, cause: unknown) => void;
}

/** Opens the store of a database name: IndexedDB when it works, else memory, with a warning. */
export async function openStore(name: string, opts: StoreOptions = {}): Promise<OfflineStore> {
  const idb = opts.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  if (opts.storage === "memory") return new MemoryStore(name);
  if (!idb) {
    opts.onWarning?.("abe: IndexedDB is not available here: offline data lives in memory and is lost on reload", undefined);
    return new MemoryStore(name);
  }
  try {
    return await IndexedDBStore.open(name, idb);
  } catch (err) {
    opts.onWarning?.("abe: IndexedDB could not be opened (private mode, or no space): offline data lives in memory and is lost on reload", err);
    return new MemoryStore(name);
  }
}

/** The database name of a server and user. */
export function storeName(url: string, userId: string | null | undefined): string {
  return `abe:${url}:${userId ?? "anonymous"}`;
}

/** The part of the Web Locks API the queue storage uses. */
interface Locks {
  request(name: string, opts: { ifAvailable?: boolean }, fn: (lock: unknown) => Promise<unknown>): Promise<unknown>;
  request(name: string, fn: (lock: unknown) => Promise<unknown>): Promise<unknown>;
  query(): Promise<{ held?: { name?: string }[] }>;
}

/**
 * Keeps the write queue in an {@link OfflineStore}, one slot per tab, as
 * {@link LocalStorageQueueStorage} does in localStorage. A tab holds a Web
 * Lock named for its slot while it lives, so a slot whose lock nobody
 * holds belongs to a tab that closed or crashed, and the next tab to load
 * adopts its writes at once. Without Web Locks, a slot not seen for
 * `staleAfter` ms is adopted. Adoption runs under one lock per database,
 * so two tabs never take the same slot.
 */
export class StoreQueueStorage {
  readonly tab = Math.random().toString(36).slice(2, 10);
  private timer: ReturnType<typeof setInterval> | undefined;
  private releaseLock: (() => void) | undefined;
  private writes: QueuedWrite[] = [];
  private chain: Promise<void> = Promise.resolve();

  private store!: OfflineStore;
  constructor(
    private readonly opening: OfflineStore | Promise<OfflineStore>,
    private readonly opts: {
      locks?: Locks | null;
      staleAfter?: number;
      now?: () => number;
      /** Writes another storage kept (the localStorage queue of earlier versions), taken over once. */
      migrate?: () => QueuedWrite[] | null;
      /** Where the journal goes (localStorage by default; null for none). */
      journal?: Pick<Storage, "getItem" | "setItem" | "removeItem" | "key" | "length"> | null;
    } = {},
  ) {}

  /** Whether the last save has reached the store. */
  private committed = true;

  private get journal(): Pick<Storage, "getItem" | "setItem" | "removeItem" | "key" | "length"> | null {
    if (this.opts.journal !== undefined) return this.opts.journal;
    return (globalThis as { localStorage?: Storage }).localStorage ?? null;
  }

  private journalKey(tab: string, store = this.store): string {
    return `${store.name}:journal:${tab}`;
  }

  /**
   * IndexedDB writes are asynchronous: a write queued in a tab's last
   * milliseconds may not have reached the store when the tab goes. On
   * pagehide (this is its listener), while a save is still out, the
   * writes go synchronously to localStorage too, and the next tab adopts
   * them from there.
   */
  flushJournal(): void {
    if (this.committed || !this.store) return;
    try {
      this.journal?.setItem(this.journalKey(this.tab), JSON.stringify(this.writes));
    } catch {
      // full or gone: the store's copy is all there is
    }
  }

  /** The journals of other tabs in localStorage, by tab. */
  private journals(): Map<string, QueuedWrite[]> {
    const out = new Map<string, QueuedWrite[]>();
    const j = this.journal;
    if (!j) return out;
    const prefix = `${this.store.name}:journal:`;
    for (let i = 0; i < j.length; i++) {
      const k = j.key(i);
      if (!k?.startsWith(prefix) || k === this.journalKey(this.tab)) continue;
      try {
        const writes = JSON.parse(j.getItem(k) ?? "[]") as QueuedWrite[];
        if (Array.isArray(writes)) out.set(k.slice(prefix.length), writes);
      } catch {
        out.set(k.slice(prefix.length), []);
      }
    }
    return out;
  }

  private get locks(): Locks | null {
    if (this.opts.locks !== undefined) return this.opts.locks;
    return webLocks() ?? null;
  }

  private lockName(tab: string): string {
    return `${this.store.name}:queue:${tab}`;
  }

  async load(): Promise<QueuedWrite[] | null> {
    this.store = await this.opening;
    const locks = this.locks;
    if (locks) {
      await new Promise<void>((held) => {
        void locks.request(this.lockName(this.tab), () => {
          held();
          return new Promise<void>((release) => (this.releaseLock = release));
        });
      });
    } else if (typeof setInterval === "function") {
      this.timer = setInterval(() => void this.save(this.writes), Math.max(1000, (this.opts.staleAfter ?? 15_000) / 3));
      unref(this.timer);
    }
    (globalThis as { addEventListener?: (t: string, f: () => void) => void }).addEventListener?.("pagehide", () => this.flushJournal());
    const taken = await this.adopt();
    this.writes = taken;
    return taken.length ? taken : null;
  }

  /**
   * Takes over the writes of slots (and journals) no live tab holds, under
   * one lock per database, and keeps them in this tab's slot: at load, and
   * when this tab takes the lead from one that closed or crashed.
   */
  adopt(): Promise<QueuedWrite[]> {
    const locks = this.locks;
    const now = this.opts.now ?? Date.now;
    const adopt = async (): Promise<QueuedWrite[]> => {
      const slots = await this.store.readSlots();
      let orphans: QueueSlot[];
      if (locks) {
        const held = new Set(((await locks.query()).held ?? []).map((l) => l.name));
        orphans = slots.filter((s) => s.tab !== this.tab && !held.has(this.lockName(s.tab)));
      } else {
        orphans = slots.filter((s) => s.tab !== this.tab && now() - s.seen > (this.opts.staleAfter ?? 15_000));
      }
      // A tab's journal is newer than its slot: it was written after.
      const journals = this.journals();
      const heldNow = locks ? new Set(((await locks.query()).held ?? []).map((l) => l.name)) : undefined;
      const gone = [...journals.keys()].filter((t) => !heldNow?.has(this.lockName(t)));
      const fromJournal = new Set(gone);
      const taken = [...orphans.filter((s) => !fromJournal.has(s.tab)).flatMap((s) => s.writes), ...gone.flatMap((t) => journals.get(t)!)];
      for (const t of gone) if (!orphans.some((s) => s.tab === t)) orphans.push({ tab: t, writes: [], seen: 0 });
      taken.push(...(this.opts.migrate?.() ?? []));
      // Once each, and not those this tab has (a write a leading tab took from it).
      const ids = new Set(this.writes.map((w) => w.id));
      const fresh = taken.filter((w) => !ids.has(w.id) && (ids.add(w.id), true));
      // Ours first, then theirs go: a crash in between sends some twice,
      // which ids, operations and versions make harmless.
      // Writes made before the store opened are saved with them.
      if (fresh.length) await this.store.writeSlot({ tab: this.tab, writes: [...fresh, ...this.writes], seen: now() });
      await this.store.deleteSlots(orphans.map((s) => s.tab));
      for (const t of gone) this.journal?.removeItem(this.journalKey(t));
      return fresh;
    };
    return locks ? (locks.request(`${this.store.name}:adopt`, adopt) as Promise<QueuedWrite[]>) : adopt();
  }

  /**
   * Saves the tab's writes. Saves run one after another; those asked for
   * while one runs fold into one that saves the latest writes, so queueing
   * n writes at once costs a few saves, not n of a growing list.
   */
  save(writes: QueuedWrite[]): Promise<void> {
    this.writes = writes;
    this.committed = false;
    if (!this.queued) {
      this.queued = true;
      this.chain = this.chain
        .then(async () => {
          this.queued = false;
          const slot = { tab: this.tab, writes: JSON.parse(JSON.stringify(this.writes)) as QueuedWrite[], seen: (this.opts.now ?? Date.now)() };
          const store = this.store ?? (await this.opening);
          await store.writeSlot(slot);
          if (!this.queued) {
            this.committed = true;
            this.journal?.removeItem(this.journalKey(this.tab, store));
          }
        })
        .catch(() => {});
    }
    return this.chain;
  }
  private queued = false;

  /** Lets go of the slot: the next tab to load adopts what is left in it. */
  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.releaseLock?.();
    this.releaseLock = undefined;
  }
}

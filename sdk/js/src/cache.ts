// The record cache: records by {collection, id} with their versions,
// optimistic layers from the write queue on top, and observers per record
// and per query.

import type { RealtimeEvent, RecordData } from "./realtime.js";

export type { RecordData } from "./realtime.js";

/**
 * A query: a collection with a filter and a sort, as the list endpoint
 * takes them. The cache cannot evaluate CEL filters; give `match` (the
 * filter as a function) so that local writes and events of records
 * outside the result can be placed without a refetch.
 */
export interface CacheQuery<R extends RecordData = RecordData> {
  collection: string;
  /** The list filter, like `done == false`: part of the query's identity. */
  filter?: string;
  /** The list sort, like `-created_at,title` (the server's default is `-created_at`). */
  sort?: string;
  /** Whether a record belongs to the result (undefined: cannot tell); without it, a filtered query is told it may be stale. */
  match?: (record: R) => boolean | undefined;
}

/** Told to a query's observers. */
export interface QueryUpdate<R extends RecordData = RecordData> {
  /** The result as the cache knows it (records the cache lost are left out until refetched). */
  records: R[];
  /** True when a record changed that may now belong to the result: refetch the query to be sure. */
  stale: boolean;
}

/** A function that changes a record optimistically (a pending write). */
export type CacheLayer = (record: RecordData | undefined) => RecordData | undefined;

interface Entry {
  /** The record as the server last sent it; undefined when unknown, deleted or invalidated. */
  server: RecordData | undefined;
  /** The newest version the cache heard of (of a record, a delete or an invalidation). */
  version: number;
  deleted: boolean;
  layers: { id: string; fn: CacheLayer }[];
  observers: Set<(r: RecordData | undefined) => void>;
}

interface QueryState {
  q: CacheQuery;
  ids: string[] | undefined;
  /** The ids, for membership tests in O(1). */
  members: Set<string>;
  observers: Set<(u: QueryUpdate) => void>;
}

const key = (c: string, id: string) => c + "/" + id;
const queryKey = (q: CacheQuery) => [q.collection, q.filter ?? "", q.sort ?? ""].join("\n");

function compareBy(sort: string | undefined): (a: RecordData, b: RecordData) => number {
  const keys = (sort || "-created_at")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => (s.startsWith("-") ? { f: s.slice(1), d: -1 } : { f: s.replace(/^\+/, ""), d: 1 }));
  keys.push({ f: "id", d: keys[0]?.d ?? 1 });
  return (a, b) => {
    for (const { f, d } of keys) {
      const x = a[f];
      const y = b[f];
      if (x === y) continue;
      // A value not yet known (a record created offline) sorts as the largest.
      if (x === undefined || x === null) return d;
      if (y === undefined || y === null) return -d;
      return (x < y ? -1 : x > y ? 1 : 0) * d;
    }
    return 0;
  };
}

/**
 * Records by collection and id with their versions.
 *
 * - A record with an older version than the cache knows never replaces
 *   the newer one (`put` answers false); equal versions refresh it.
 * - Pending writes are layers on top of the server's record: `get`
 *   answers the record with every layer applied; removing a layer (a
 *   rollback) shows the server's record again.
 * - Realtime events with a newer version update the record, or
 *   invalidate it (a `delete`, or `match: false`).
 */
export class RecordCache {
  private readonly entries = new Map<string, Entry>();
  private readonly queries = new Map<string, QueryState>();
  private readonly watchers = new Set<(collection: string, id: string) => void>();
  private batching = 0;
  /** Queries changed inside a batch: sorted and told once at its end (true: stale too). */
  private pending = new Map<QueryState, { sort: boolean; stale: boolean }>();

  /**
   * Runs fn with query work deferred: a page of records, or a batch of
   * landed writes, sorts and tells each query once, not once per record
   * (which made storing n records O(n²)). Record observers hear at once.
   */
  batch<T>(fn: () => T): T {
    this.batching++;
    try {
      return fn();
    } finally {
      if (--this.batching === 0) {
        const todo = [...this.pending];
        this.pending.clear();
        for (const [s, p] of todo) {
          if (p.sort) this.sort(s);
          this.notifyQuery(s, p.stale, true);
        }
      }
    }
  }

  /**
   * Listens to every change of a record's server copy, version or layers
   * (the offline store writes them through); returns the removal.
   */
  onRecordChange(fn: (collection: string, id: string) => void): () => void {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }

  /** The ids of a query's result, in order, or undefined before setQuery. */
  getQueryIds<R extends RecordData>(query: CacheQuery<R>): readonly string[] | undefined {
    return this.queries.get(queryKey(query as CacheQuery))?.ids;
  }

  private entry(c: string, id: string): Entry {
    const k = key(c, id);
    let e = this.entries.get(k);
    if (!e) {
      e = { server: undefined, version: 0, deleted: false, layers: [], observers: new Set() };
      this.entries.set(k, e);
    }
    return e;
  }

  /** The record with its pending writes applied, or undefined (unknown, deleted, or invalidated). */
  get<R extends RecordData = RecordData>(collection: string, id: string): R | undefined {
    const e = this.entries.get(key(collection, id));
    if (!e) return undefined;
    let r = e.server;
    for (const l of e.layers) r = l.fn(r);
    return r as R | undefined;
  }

  /** The newest server version the cache knows of the record (0 when none). */
  getVersion(collection: string, id: string): number {
    return this.entries.get(key(collection, id))?.version ?? 0;
  }

  /** The record as the server last sent it, without pending writes. */
  getServer<R extends RecordData = RecordData>(collection: string, id: string): R | undefined {
    return this.entries.get(key(collection, id))?.server as R | undefined;
  }

  /** Whether the server deleted the record (as far as the cache heard). */
  isDeleted(collection: string, id: string): boolean {
    return this.entries.get(key(collection, id))?.deleted ?? false;
  }

  /** Stores a record the server sent. Answers false, changing nothing, when the cache knows a newer version. */
  put(collection: string, record: RecordData): boolean {
    const e = this.entry(collection, record.id);
    if (record.version < e.version || (e.deleted && record.version <= e.version)) return false;
    e.server = record;
    e.version = record.version;
    e.deleted = false;
    this.changed(collection, record.id, undefined);
    return true;
  }

  /** Marks the record deleted at a version (a newer write can bring it back). */
  remove(collection: string, id: string, version = Number.MAX_SAFE_INTEGER): boolean {
    const e = this.entry(collection, id);
    if (version < e.version) return false;
    e.server = undefined;
    e.version = version;
    e.deleted = true;
    this.changed(collection, id, false);
    return true;
  }

  /** Forgets the record's data (keeping the version): it changed in a way the cache did not see. Refetch it. */
  invalidate(collection: string, id: string, version = 0): boolean {
    const e = this.entry(collection, id);
    if (version < e.version) return false;
    e.server = undefined;
    e.version = version;
    this.changed(collection, id, undefined);
    return true;
  }

  /**
   * Applies a realtime event: a newer version with the record updates it;
   * a delete removes it; `match: false` takes it out of `query` (the query
   * the subscription serves, when given) and, with no record to show,
   * invalidates it. Events no newer than the cache are ignored.
   * Answers whether the cache changed.
   */
  applyEvent(collection: string, event: RealtimeEvent, query?: CacheQuery): boolean {
    const e = this.entries.get(key(collection, event.id));
    const known = e?.version ?? 0;
    if (event.op === "delete") return this.remove(collection, event.id, event.version);
    if (event.match === false && query) this.setMember(query, event.id, false);
    if (event.version <= known && !(event.record && event.version === known && !e?.server)) return false;
    if (event.record) {
      if (query) this.setMember(query, event.id, true, false);
      return this.put(collection, event.record);
    }
    return this.invalidate(collection, event.id, event.version);
  }

  /** Adds a pending write's change on top of the record. */
  addLayer(collection: string, id: string, layerId: string, fn: CacheLayer): void {
    const e = this.entry(collection, id);
    e.layers.push({ id: layerId, fn });
    this.changed(collection, id, undefined);
  }

  /** Removes a pending write's change (it landed, or rolled back); `put` may store the server's answer first. */
  removeLayer(collection: string, id: string, layerId: string): void {
    const e = this.entries.get(key(collection, id));
    if (!e) return;
    const n = e.layers.length;
    e.layers = e.layers.filter((l) => l.id !== layerId);
    if (e.layers.length !== n) this.changed(collection, id, undefined);
  }

  /** Observes one record: `fn` gets it (with pending writes) whenever it changes. Returns the removal. */
  observe<R extends RecordData = RecordData>(collection: string, id: string, fn: (record: R | undefined) => void): () => void {
    const e = this.entry(collection, id);
    const f = fn as (r: RecordData | undefined) => void;
    e.observers.add(f);
    return () => e.observers.delete(f);
  }

  /** Stores a query's result (from a list request): its records, and their order. */
  setQuery<R extends RecordData>(query: CacheQuery<R>, records: R[]): void {
    const s = this.query(query);
    this.batch(() => {
      for (const r of records) this.put(query.collection, r);
      this.setIds(s, records.map((r) => r.id));
      this.notifyQuery(s, false);
    });
  }

  private setIds(s: QueryState, ids: string[]): void {
    s.ids = ids;
    s.members = new Set(ids);
  }

  /**
   * Sets a query's members by id, in the query's sort, without storing
   * records: for results made of records the cache holds (a result kept
   * offline, or a server page with the pending creates that belong).
   */
  setQueryIds<R extends RecordData>(query: CacheQuery<R>, ids: readonly string[]): void {
    const s = this.query(query);
    this.setIds(s, [...new Set(ids)]);
    this.sort(s);
    this.notifyQuery(s, false);
  }

  /** The query's result as the cache knows it, or undefined before setQuery. */
  getQuery<R extends RecordData = RecordData>(query: CacheQuery<R>): R[] | undefined {
    const s = this.queries.get(queryKey(query as CacheQuery));
    return s?.ids ? (this.records(s) as R[]) : undefined;
  }

  /** Observes a query: `fn` is called when a member changes or the result may have changed. Returns the removal. */
  observeQuery<R extends RecordData = RecordData>(query: CacheQuery<R>, fn: (update: QueryUpdate<R>) => void): () => void {
    const s = this.query(query);
    const f = fn as unknown as (u: QueryUpdate) => void;
    s.observers.add(f);
    return () => s.observers.delete(f);
  }

  private query<R extends RecordData>(q: CacheQuery<R>): QueryState {
    const k = queryKey(q as CacheQuery);
    let s = this.queries.get(k);
    if (!s) {
      s = { q: q as CacheQuery, ids: undefined, members: new Set(), observers: new Set() };
      this.queries.set(k, s);
    } else if (q.match && !s.q.match) s.q = q as CacheQuery;
    return s;
  }

  private records(s: QueryState): RecordData[] {
    const out: RecordData[] = [];
    for (const id of s.ids ?? []) {
      const r = this.get(s.q.collection, id);
      if (r) out.push(r);
    }
    return out;
  }

  private setMember(q: CacheQuery, id: string, member: boolean, notify = true): void {
    const s = this.queries.get(queryKey(q));
    if (!s?.ids) return;
    const has = s.members.has(id);
    if (has === member) return;
    if (member) this.addId(s, id);
    else this.dropId(s, id);
    if (notify) this.notifyQuery(s, false);
  }

  private addId(s: QueryState, id: string): void {
    s.ids!.push(id);
    s.members.add(id);
  }

  private dropId(s: QueryState, id: string): void {
    s.ids = s.ids!.filter((x) => x !== id);
    s.members.delete(id);
  }

  private notifyQuery(s: QueryState, stale: boolean, now = false, sort = false): void {
    if (this.batching > 0 && !now) {
      const p = this.pending.get(s) ?? { sort: false, stale: false };
      p.sort ||= sort;
      p.stale ||= stale;
      this.pending.set(s, p);
      return;
    }
    if (sort) this.sort(s);
    if (s.observers.size === 0) return;
    const u: QueryUpdate = { records: this.records(s), stale };
    for (const f of [...s.observers]) f(u);
  }

  /** A record changed: tell its observers, and place it in the queries of its collection. */
  private changed(collection: string, id: string, forceMember: boolean | undefined): void {
    const r = this.get(collection, id);
    const e = this.entries.get(key(collection, id));
    for (const f of [...this.watchers]) f(collection, id);
    for (const f of [...(e?.observers ?? [])]) f(r);
    for (const s of this.queries.values()) {
      if (s.q.collection !== collection || !s.ids) continue;
      const has = s.members.has(id);
      let member = forceMember;
      if (member === undefined && r) member = s.q.match ? s.q.match(r) : s.q.filter ? undefined : true;
      if (member === undefined && !r) member = e?.deleted ? false : has; // invalidated: keep its place
      if (member === undefined) {
        // A filtered query the cache cannot evaluate.
        this.notifyQuery(s, !has, false, has);
        continue;
      }
      if (member && !has) this.addId(s, id);
      if (!member && has) this.dropId(s, id);
      if (member || has) this.notifyQuery(s, false, false, member);
    }
  }

  private sort(s: QueryState): void {
    if (!s.ids) return;
    const cmp = compareBy(s.q.sort);
    const c = s.q.collection;
    const withRec = s.ids.map((id) => ({ id, r: this.get(c, id) }));
    withRec.sort((a, b) => (a.r && b.r ? cmp(a.r, b.r) : 0));
    s.ids = withRec.map((x) => x.id);
  }

  /** Forgets everything (observers stay registered). */
  clear(): void {
    for (const e of this.entries.values()) {
      e.server = undefined;
      e.version = 0;
      e.deleted = false;
      e.layers = [];
    }
    for (const s of this.queries.values()) {
      s.ids = undefined;
      s.members.clear();
    }
  }
}

// The client: createClient({url}) with records CRUD, batch, changes and
// auth, typed by the `Collections` map `abe gen types --lang ts` writes.

import { AuthClient, type AuthChangeListener, type AuthOptions } from "./auth.js";
import { HttpTransport, type CallOptions, type FetchLike, type HttpMethod, type RequestOptions, type Transport, type TransportResponse } from "./http.js";
import type { Operation } from "./operations.js";
import { lazyHistory, lazyLives, lazyWrites, offlineLoader } from "./lazy.js";
import type { Live, LiveOptions, LiveRecordResult, LiveResult, OfflineHost, OfflineOptions, Writes } from "./offline.js";
import type { RecordData } from "./realtime.js";
import type { History } from "./undo.js";

/** The fields every record has. */
export interface BaseRecord {
  id: string;
  version: number;
  created_at: string;
  updated_at: string;
}

/** The types of one collection: its record, its create (and replace) body, its update body. */
export interface CollectionTypes {
  record: BaseRecord;
  create: object;
  update: object;
}

/** A record of a collection the client has no types for. */
export type AnyRecord = BaseRecord & Record<string, unknown>;

/** The collections of a client made without a `Collections` type: any name, untyped fields. */
export type AnyCollections = Record<string, { record: AnyRecord; create: Record<string, unknown>; update: Record<string, unknown> }>;

/** What a `Collections` type (as `abe gen types --lang ts` writes it) must look like. */
export type CollectionsShape<C> = { [K in keyof C]: CollectionTypes };

/** The record type of collection K. */
export type RecordOf<C, K extends keyof C> = C[K] extends { record: infer R } ? R : never;
/** The create body of collection K. */
export type CreateOf<C, K extends keyof C> = C[K] extends { create: infer B } ? B : never;
/** The update body of collection K. */
export type UpdateOf<C, K extends keyof C> = C[K] extends { update: infer B } ? B : never;


/** Options of a conditional write. */
export interface RecordWriteOptions extends CallOptions {
  /** The version the write expects (`If-Match`); a newer one makes it a 409 {@link ConflictError}. */
  ifMatch?: number;
}

/** Options of a read of one record. */
export interface GetOptions extends CallOptions {
  /** A projection: `id` and `version` are always there. */
  fields?: string | string[];
  /** Relation fields to inline under `expand`. */
  expand?: string | string[];
}

/** Options of a list. */
export interface ListOptions extends GetOptions {
  /** A CEL filter, like `done == false && title.startsWith('Buy')`. */
  filter?: string;
  /** Sort keys, `-` for descending: `"-created_at,title"` or `["-created_at", "title"]`. */
  sort?: string | string[];
  /** 1 to 500 (default 50). */
  limit?: number;
  /** The `next_cursor` of the previous page. */
  cursor?: string | null;
  /** Adds `total` (a second query). */
  count?: boolean;
}

/** A page of a list. */
export interface ListResult<R> {
  items: R[];
  /** The cursor of the next page; null on the last. */
  next_cursor: string | null;
  /** With `count: true`: the number of records the filter and rules allow. */
  total?: number;
}

/** One change of the change log. */
export interface Change<R> {
  seq: number;
  op: "create" | "update" | "delete";
  id: string;
  version: number;
  at: string;
  /** The record as it is now (none for a delete). */
  record?: R;
}

/** A page of the change log; follow `next_since` until it stops moving. */
export interface ChangesPage<R> {
  items: Change<R>[];
  next_since: number;
}

/** One operation of a batch, typed by its collection. */
export type BatchOp<C> = {
  [K in keyof C & string]:
    | { collection: K; action: "create"; id?: string; data: CreateOf<C, K> }
    | { collection: K; action: "update"; id: string; version?: number; data: UpdateOf<C, K> }
    | { collection: K; action: "update"; id: string; version?: number; ops: Operation[] }
    | { collection: K; action: "replace"; id: string; version?: number; data: CreateOf<C, K> }
    | { collection: K; action: "delete"; id: string; version?: number };
}[keyof C & string];

/** The answer of a batch: one result per operation, in order (no record for a delete). */
export interface BatchResult<C> {
  results: Array<{ status: number; record?: RecordOf<C, keyof C> | null }>;
}

/** The records API of one collection: `client.records("todos")`. */
export interface RecordsApi<R, Create, Update> {
  /** Reads one record (404 {@link NotFoundError} when missing or hidden by the read rule). */
  get(id: string, opts?: GetOptions): Promise<R>;
  /** Reads a page. */
  list(opts?: ListOptions): Promise<ListResult<R>>;
  /** Iterates over every record, page after page. */
  iterate(opts?: Omit<ListOptions, "cursor">): AsyncGenerator<R, void, undefined>;
  /** Creates a record (send your own `id` to make a retry safe). */
  create(data: Create, opts?: CallOptions): Promise<R>;
  /** Changes the fields sent (PATCH); conditional with `ifMatch`. */
  update(id: string, data: Update, opts?: RecordWriteOptions): Promise<R>;
  /** Applies operations (PATCH `{ops}`); with `ifMatch` all or nothing against that version. */
  applyOps(id: string, ops: Operation[], opts?: RecordWriteOptions): Promise<R>;
  /** Replaces the record (PUT): fields left out are cleared. */
  replace(id: string, data: Create, opts?: RecordWriteOptions): Promise<R>;
  /** Deletes the record. */
  delete(id: string, opts?: RecordWriteOptions): Promise<void>;
  /** Reads the change log of the collection after `since` (0 for the start). */
  changes(since: number, opts?: CallOptions & { limit?: number }): Promise<ChangesPage<R>>;
}

/** Options of {@link createClient}. */
export interface ClientOptions extends AuthOptions {
  /** The server's base URL, like `https://api.example.com`. */
  url: string;
  /** A fetch implementation (the global one by default). */
  fetch?: FetchLike;
  /**
   * Keep live queries, records and queued writes in IndexedDB (true, or
   * options), so the app opens offline with its data. Without it they
   * live in memory for the page's life.
   */
  offline?: boolean | OfflineOptions;
}

/** A client of one abe server; C is the generated `Collections` type. */
export interface AbeClient<C extends CollectionsShape<C> = AnyCollections> {
  /** The server's base URL. */
  readonly url: string;
  /** Accounts and tokens. */
  readonly auth: AuthClient;
  /** The transport every part uses (the offline queue too). */
  readonly transport: Transport;
  /** Makes a request with the client's tokens: see {@link Transport.request}. */
  request<T = unknown>(method: HttpMethod, path: string, body?: unknown, opts?: RequestOptions): Promise<TransportResponse<T>>;
  /** The records API of a collection. */
  records<K extends keyof C & string>(collection: K): RecordsApi<RecordOf<C, K>, CreateOf<C, K>, UpdateOf<C, K>>;
  /** Runs up to 100 operations across collections in one transaction: all or none. */
  batch(ops: BatchOp<C>[], opts?: CallOptions): Promise<BatchResult<C>>;
  /** Reads a collection's change log after `since`. */
  changes<K extends keyof C & string>(collection: K, since: number, opts?: CallOptions & { limit?: number }): Promise<ChangesPage<RecordOf<C, K>>>;
  /** A valid access token (refreshed when about to expire), or null. */
  getAccessToken(): Promise<string | null>;
  /** Listens to logins, refreshes and logouts; returns an unsubscribe function. */
  onAuthChange(listener: AuthChangeListener): () => void;
  /**
   * A live query: answers from the offline store at once (`source:
   * "cache"`), then from the server, kept current by realtime, with
   * pending writes on top.
   */
  live<K extends keyof C & string>(collection: K, opts?: LiveOptions<RecordOf<C, K>>): Live<LiveResult<RecordOf<C, K>>>;
  /** One record, live, as {@link live} keeps a query. */
  liveRecord<K extends keyof C & string>(collection: K, id: string): Live<LiveRecordResult<RecordOf<C, K>>>;
  /** The persistent write queue the live queries show at once. */
  readonly writes: Writes;
  /** Undo and redo over the writes (the signed-in user's: read it again after a login). */
  readonly history: History;
  /** Stops timers and releases channels. */
  close(): void;
}

const join = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join(",") : v);

function recordsApi<R, Create, Update>(t: Transport, collection: string): RecordsApi<R, Create, Update> {
  const base = `/api/collections/${encodeURIComponent(collection)}`;
  const one = (id: string) => `${base}/records/${encodeURIComponent(id)}`;
  const data = <T>(p: Promise<TransportResponse<T>>) => p.then((r) => r.data);
  const api: RecordsApi<R, Create, Update> = {
    get: (id, o = {}) => data(t.request<R>("GET", one(id), undefined, { signal: o.signal, query: { fields: join(o.fields), expand: join(o.expand) } })),
    list: (o = {}) =>
      data(
        t.request<ListResult<R>>("GET", `${base}/records`, undefined, {
          signal: o.signal,
          query: {
            filter: o.filter,
            sort: join(o.sort),
            limit: o.limit,
            cursor: o.cursor,
            fields: join(o.fields),
            expand: join(o.expand),
            count: o.count ? "true" : undefined,
          },
        }),
      ),
    async *iterate(o = {}) {
      let cursor: string | null = null;
      do {
        const page: ListResult<R> = await api.list({ ...o, cursor });
        yield* page.items;
        cursor = page.next_cursor;
      } while (cursor);
    },
    create: (body, o = {}) => data(t.request<R>("POST", `${base}/records`, body, { signal: o.signal })),
    update: (id, body, o = {}) => data(t.request<R>("PATCH", one(id), body, { signal: o.signal, ifMatch: o.ifMatch })),
    applyOps: (id, ops, o = {}) => data(t.request<R>("PATCH", one(id), { ops }, { signal: o.signal, ifMatch: o.ifMatch })),
    replace: (id, body, o = {}) => data(t.request<R>("PUT", one(id), body, { signal: o.signal, ifMatch: o.ifMatch })),
    delete: async (id, o = {}) => {
      await t.request("DELETE", one(id), undefined, { signal: o.signal, ifMatch: o.ifMatch });
    },
    changes: (since, o = {}) => data(t.request<ChangesPage<R>>("GET", `${base}/changes`, undefined, { signal: o.signal, query: { since, limit: o.limit } })),
  };
  return api;
}

/**
 * Makes a client of an abe server. Pass the generated `Collections` type
 * to get typed records: `createClient<Collections>({url})`.
 *
 * ```ts
 * const abe = createClient<Collections>({ url: "https://api.example.com" });
 * await abe.auth.login({ email, password });
 * const { items } = await abe.records("todos").list({ filter: "done == false" });
 * ```
 */
export function createClient<C extends CollectionsShape<C> = AnyCollections>(opts: ClientOptions): AbeClient<C> {
  const transport = new HttpTransport({ url: opts.url, fetch: opts.fetch });
  const auth = new AuthClient(transport, opts);
  transport.tokens = auth;
  const cache = new Map<string, RecordsApi<unknown, unknown, unknown>>();
  const host: OfflineHost = {
    url: transport.url,
    transport,
    getAccessToken: () => auth.getAccessToken(),
    getUserId: async () => (await auth.getSession())?.user.id ?? null,
    onAuthChange: (fn) => auth.onAuthChange((s, event) => fn(s?.user.id ?? null, event)),
    list: (c, q) => recordsApi<RecordData, unknown, unknown>(transport, c).list(q),
    get: (c, id) => recordsApi<RecordData, unknown, unknown>(transport, c).get(id),
  };
  // The offline layer is a module of its own (lazy.ts says why), made on
  // first use: a client that never asks for live data opens no store. With
  // `offline` set the app will ask, so its module is fetched at once.
  let closed = false;
  if (opts.offline) void import("./offline.js").catch(() => {});
  const loader = offlineLoader(async () => {
    const m = await import("./offline.js");
    const o = m.createOffline(host, opts.offline === true ? {} : opts.offline ? opts.offline : { storage: "memory" });
    if (closed) o.close();
    return o;
  });
  const lives = lazyLives(loader);
  const writes = lazyWrites(loader);
  const history = lazyHistory(loader);
  const client: AbeClient<C> = {
    url: transport.url,
    auth,
    transport,
    request: (method, path, body, o) => transport.request(method, path, body, o),
    records<K extends keyof C & string>(collection: K) {
      let api = cache.get(collection);
      if (!api) cache.set(collection, (api = recordsApi(transport, collection)));
      return api as RecordsApi<RecordOf<C, K>, CreateOf<C, K>, UpdateOf<C, K>>;
    },
    batch: async (ops, o = {}) => (await transport.request<BatchResult<C>>("POST", "/api/batch", { ops }, { signal: o.signal })).data,
    changes: (collection, since, o) => client.records(collection).changes(since, o),
    getAccessToken: () => auth.getAccessToken(),
    onAuthChange: (l) => auth.onAuthChange(l),
    live: (c, o) => lives.live(c, o as LiveOptions<RecordData>) as never,
    liveRecord: (c, id) => lives.liveRecord(c, id) as never,
    writes,
    history,
    close: () => {
      closed = true;
      loader.ready()?.close();
      auth.close();
    },
  };
  return client;
}

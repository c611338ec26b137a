// What a page and its service worker share in IndexedDB: the session
// (IndexedDBTokenStore), the access token the page hands over, and the
// writes the worker's replay saw refused. One small key-value database,
// "abe-sw", apart from the per-user stores of store.ts.

import type { Session, TokenStore } from "./auth.js";
import type { QueuedWrite } from "./queue.js";

/** The Background Sync tag the page registers while writes wait offline. */
export const SYNC_TAG = "abe-queue";

const DB = "abe-sw";
const KV = "kv";

/** The server's URL as the client keeps it (no trailing slash): what keys and channel names are made of. */
export const baseURL = (url: string): string => url.replace(/\/+$/, "");

/** Keys of the shared database, per server. */
export const swKeys = {
  /** The session, when the app keeps it in an {@link IndexedDBTokenStore}. */
  session: (url: string) => "session:" + baseURL(url),
  /** The access token (no refresh token) the page hands over otherwise. */
  access: (url: string) => "access:" + baseURL(url),
  /** Writes the worker's replay saw refused, for the page to tell. */
  refused: (url: string) => "refused:" + baseURL(url),
};

/** A write the server refused while the worker replayed the queue. */
export interface RefusedWrite {
  write: QueuedWrite;
  status: number;
  message: string;
}

/** Resolves with a request's result. */
export const idb = <T>(r: IDBRequest<T>): Promise<T> =>
  new Promise((res, rej) => {
    r.onsuccess = () => res(r.result);
    r.onerror = () => rej(r.error);
  });

let opening: Promise<IDBDatabase> | undefined;
function db(): Promise<IDBDatabase> {
  return (opening ??= (() => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(KV);
    return idb(r).then((d) => {
      // Another context deleting the database: let it, and open again next time.
      d.onversionchange = () => {
        d.close();
        opening = undefined;
      };
      return d;
    });
  })().catch((e: unknown) => {
    opening = undefined;
    throw e;
  }));
}

/** Reads a key of the shared database (undefined when missing). */
export async function kvGet<T>(key: string): Promise<T | undefined> {
  const d = await db();
  return idb(d.transaction(KV).objectStore(KV).get(key) as IDBRequest<T | undefined>);
}

/** Writes a key (undefined or null: deletes it). */
export async function kvSet(key: string, value: unknown): Promise<void> {
  const d = await db();
  const t = d.transaction(KV, "readwrite");
  if (value === undefined || value === null) t.objectStore(KV).delete(key);
  else t.objectStore(KV).put(value, key);
  await new Promise<void>((res, rej) => {
    t.oncomplete = () => res();
    t.onabort = t.onerror = () => rej(t.error);
  });
}

/**
 * Keeps the session in IndexedDB, where the service worker of
 * `@abe-stack/sdk/sw` reads it too: with it the worker can refresh the
 * access token and replay the queue with every tab closed. The page and
 * the worker then share one copy of the refresh token, and refresh under
 * the same Web Lock, so a rotated token is never presented twice (the
 * server would take that for theft and end the session). Any script of
 * the origin can read it, as it can read localStorage: the same exposure
 * as {@link LocalStorageTokenStore}. Without IndexedDB it keeps the
 * session in memory.
 */
export class IndexedDBTokenStore implements TokenStore {
  private memory: Session | null = null;
  private readonly key: string;
  /** url: the server's base URL, as given to createClient and abeServiceWorker. */
  constructor(url: string) {
    this.key = swKeys.session(url);
  }
  async get(): Promise<Session | null> {
    try {
      return (await kvGet<Session>(this.key)) ?? null;
    } catch {
      return this.memory;
    }
  }
  async set(session: Session | null): Promise<void> {
    this.memory = session;
    try {
      await kvSet(this.key, session);
    } catch {
      // no IndexedDB (private mode): memory only, and no worker refresh
    }
  }
}

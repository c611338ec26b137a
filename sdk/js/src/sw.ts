// @abe-stack/sdk/sw: the service worker module. An app imports it into
// its own service worker file and calls abeServiceWorker(...): the worker
// replays the persistent write queue when Background Sync fires (so a
// write made offline lands with every tab closed), precaches the app's
// listed assets and serves them offline, and waits with a new version
// until the page applies it. The page side (registerAbeServiceWorker,
// IndexedDBTokenStore) is exported here too; docs/service-worker.md has
// the design and its security reasoning.

import type { Session } from "./auth.js";
import type { Problem } from "./errors.js";
import { jsonEqual } from "./operations.js";
import type { QueuedWrite } from "./queue.js";
import type { RecordData } from "./realtime.js";
import { storeName, type QueueSlot } from "./store.js";
import { baseURL, idb, kvGet, kvSet, swKeys, SYNC_TAG, type RefusedWrite } from "./swstore.js";

export { IndexedDBTokenStore, SYNC_TAG, type RefusedWrite } from "./swstore.js";
export { registerAbeServiceWorker, type AbeServiceWorker, type RegisterOptions } from "./swpage.js";

/** Options of {@link abeServiceWorker}. */
export interface ServiceWorkerOptions {
  /** The server's base URL, as given to createClient. */
  url: string;
  /** The app shell: URLs (relative to the worker) to precache at install and serve from the cache. */
  precache?: string[];
  /** Names the cache: a new version precaches anew, waits, and deletes the old cache when it takes over. */
  version?: string;
  /** A navigation to a path not in precache, offline: answered with this cached URL (an SPA's "/index.html"). */
  navigateFallback?: string;
  /** The refresh lock and channel name, when the client was given `channelName` (default `abe-auth:<url>`). */
  channelName?: string;
}

interface ExtendableEvent extends Event {
  waitUntil(p: Promise<unknown>): void;
  readonly tag?: string;
  readonly data?: unknown;
}
interface FetchEvent extends Event {
  readonly request: Request;
  respondWith(r: Response | Promise<Response>): void;
}
interface WorkerScope {
  addEventListener(type: string, fn: (e: ExtendableEvent & FetchEvent) => void): void;
  skipWaiting(): Promise<void>;
  readonly registration: { readonly scope: string };
  readonly clients: { claim(): Promise<void>; matchAll(o?: { includeUncontrolled?: boolean }): Promise<{ postMessage(m: unknown): void }[]> };
  readonly location: Location;
}
interface Locks {
  request(name: string, fn: () => Promise<unknown>): Promise<unknown>;
  request(name: string, o: { ifAvailable: boolean }, fn: (lock: unknown) => unknown): Promise<unknown>;
}

/** Holds a Web Lock if no one holds it: resolves with its release, or null. */
const hold = (locks: Locks, name: string) =>
  new Promise<(() => void) | null>((res) => {
    void locks.request(name, { ifAvailable: true }, (lock) => (lock ? new Promise<void>((r) => res(r)) : res(null)));
  });

/** The credentials the worker has: the session of an IndexedDBTokenStore, else the access token the page handed over. */
type Creds = Partial<Session> & { accessToken: string };

/** An answer: its status and JSON body (a problem, or the batch's results). */
interface Answer {
  status: number;
  body: Problem & { results?: { record?: RecordData }[] };
}

/** A reason to stop replaying and let the browser try the sync again later: no server, 401, 408, 429, 5xx. */
class Later extends Error {}

/** The fields of a record every record has. */
const SYSTEM = new Set(["id", "version", "created_at", "updated_at"]);

/** An /api/batch operation of a write, as WriteQueue sends it. */
const toOp = (w: QueuedWrite) => ({
  collection: w.collection,
  action: w.action,
  id: w.recordId,
  version: w.version,
  ops: w.ops,
  data: w.ops || w.action === "delete" ? undefined : (w.data ?? {}),
});

/**
 * Whether a refusal of a retried batch shows that its earlier attempt
 * landed (its answer was lost): a create meets its own id, a delete a
 * record gone, a conditional write a newer version that shows its
 * fields. Operations cannot be told here, and count as not landed: the
 * batch's other writes are sent again, which their ids and idempotent
 * operations make harmless.
 */
function landedBefore(w: QueuedWrite, a: Answer): boolean {
  const cur = a.body.current as RecordData | undefined;
  if (w.action === "create") return a.status === 409 && !!a.body.errors?.some((f) => f.field === "id");
  if (w.action === "delete") return a.status === 404;
  if (a.status !== 409 || !cur || w.version === undefined || cur.version <= w.version || w.ops) return false;
  return Object.entries(w.data ?? {}).every(([k, v]) => SYSTEM.has(k) || jsonEqual(v, cur[k]));
}

/**
 * Sends one closed tab's writes in order as WriteQueue does (src/queue.ts,
 * which the worker's size budget keeps out): consecutive writes in one
 * batch, a conditional write after earlier writes of its record in the
 * next, a batch sent before (its answer lost) sent again as it was;
 * landed writes leave the slot, later conditional writes of their record
 * move to the version they made; a refused write (400, 403, 409, 422, or
 * another 4xx) leaves it and is told to the page.
 */
async function send(slot: QueueSlot, post: (body: unknown) => Promise<Answer>, save: (writes: QueuedWrite[]) => Promise<void>, refused: RefusedWrite[]): Promise<void> {
  let writes = slot.writes;
  let solo = false;
  const without = (gone: QueuedWrite[]) => (writes = writes.filter((x) => !gone.includes(x)));
  while (writes.length) {
    const first = writes[0]!;
    const retried = first.sent !== undefined;
    let batch: QueuedWrite[] = [];
    if (retried) batch = writes.filter((w) => w.sent === first.sent);
    else {
      const seen = new Set<string>();
      for (const w of writes) {
        const k = w.collection + "/" + w.recordId;
        if (batch.length >= (solo ? 1 : 100) || w.sent || (w.version !== undefined && seen.has(k))) break;
        seen.add(k);
        batch.push(w);
      }
    }
    const tag = first.sent ?? crypto.randomUUID();
    for (const w of batch) w.sent = tag;
    await save(writes);
    const a = await post({ ops: batch.map(toOp) });
    if (a.status < 300) {
      solo = false;
      batch.forEach((w, i) => {
        const after = a.body.results?.[i]?.record?.version;
        const from = w.base?.version ?? 0;
        for (const x of writes)
          if (x !== w && x.collection === w.collection && x.recordId === w.recordId && after !== undefined && x.version !== undefined && x.version >= from && x.version < after)
            x.version = after;
      });
      without(batch);
    } else {
      for (const w of batch) delete w.sent;
      const i = a.body.index;
      if (i === undefined && batch.length > 1) {
        solo = true; // the server did not say which write: one at a time
        continue;
      }
      const w = batch[i ?? 0];
      if (!w) without(batch);
      else if (retried && landedBefore(w, a)) without(batch);
      else {
        refused.push({ write: w, status: a.status, message: a.body.detail ?? a.body.title ?? "" });
        without([w]);
      }
    }
    await save(writes);
  }
}

/**
 * Replays the write queue: the slots of every closed tab, oldest first,
 * and removes what landed. A slot whose lock a live tab holds is that
 * tab's to send, and is left alone. Rejects when the server cannot be
 * reached (or refuses the token) with writes left, so that the browser
 * tries the sync again later.
 */
async function replay(o: ServiceWorkerOptions, locks: Locks): Promise<void> {
  const url = baseURL(o.url);
  const channel = o.channelName ?? `abe-auth:${url}`;
  // The newer of the two: a session left behind by an app that moved to another token store is
  // older than the access token handed over since, and its refresh token must not be presented.
  const session = await kvGet<Session>(swKeys.session(url));
  const access = await kvGet<Creds>(swKeys.access(url));
  let creds: Creds | undefined = session && !(access && access.expiresAt! > session.expiresAt) ? session : access;
  const name = storeName(url, creds?.user?.id);

  const call = async (path: string, body: unknown, token?: string): Promise<Answer> => {
    let r: Response;
    try {
      r = await fetch(url + path, {
        method: "POST",
        headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(body),
      });
    } catch (e) {
      throw new Later(String(e));
    }
    const status = r.status;
    if (status === 408 || status === 429 || status >= 500) throw new Later(`abe: ${path} answered ${status}`);
    return { status, body: (await r.json().catch(() => ({}))) as Answer["body"] };
  };
  let refreshed = false;
  /** Refreshes once, under the lock the page's refreshes take: one of them rotates the token, the other reads the result. */
  const refresh = async (): Promise<void> => {
    const rt = creds?.refreshToken;
    if (refreshed || !rt) throw new Later("abe: the access token expired and the worker has no refresh token");
    refreshed = true;
    creds = (await locks.request(`${channel}:refresh`, async () => {
      const now = await kvGet<Session>(swKeys.session(url));
      if (now && now.refreshToken !== rt) return now;
      const a = await call("/api/auth/refresh", { refresh_token: rt });
      // Refused: the page finds out at its next refresh, and logs out there.
      if (a.status !== 200) throw new Later("abe: the refresh token was refused");
      const b = a.body as unknown as { user: Session["user"]; access_token: string; refresh_token: string; expires_in: number };
      const s: Session = { user: b.user, accessToken: b.access_token, refreshToken: b.refresh_token, expiresAt: Date.now() + b.expires_in * 1000 };
      await kvSet(swKeys.session(url), s);
      // Open tabs take it as another tab's refresh.
      const ch = new BroadcastChannel(channel);
      ch.postMessage({ t: "done", id: "sw", rt, session: s });
      ch.postMessage({ t: "session", id: "sw", session: s });
      ch.close();
      return s;
    })) as Creds;
  };
  const post = async (body: unknown): Promise<Answer> => {
    if (creds?.expiresAt !== undefined && creds.expiresAt < Date.now() && creds.refreshToken && !refreshed) await refresh();
    let a = await call("/api/batch", body, creds?.accessToken);
    if (a.status === 401) {
      await refresh();
      a = await call("/api/batch", body, creds?.accessToken);
      if (a.status === 401) throw new Later("abe: the access token was refused");
    }
    return a;
  };

  // Open the store as it is; if there is none, do not make one (the page makes it, with its layout).
  const open = indexedDB.open(name);
  open.onupgradeneeded = () => open.transaction!.abort();
  const db = await idb(open).catch(() => undefined);
  if (!db) return;
  const refused: RefusedWrite[] = [];
  try {
    // The layout of store.ts: slots keyed by tab in "queue", each guarded by a lock.
    const slots = db.objectStoreNames.contains("queue") ? await idb(db.transaction("queue").objectStore("queue").getAll() as IDBRequest<QueueSlot[]>) : [];
    // Under the lock tabs adopt slots by: no tab takes a slot the worker takes.
    const taken = (await locks.request(`${name}:adopt`, async () => {
      const out: { slot: QueueSlot; release: () => void }[] = [];
      for (const slot of slots.sort((a, b) => a.seen - b.seen)) {
        const release = await hold(locks, `${name}:queue:${slot.tab}`);
        if (release) out.push({ slot, release });
      }
      return out;
    })) as { slot: QueueSlot; release: () => void }[];
    try {
      for (const { slot } of taken) {
        // Read again under its lock: a tab may have adopted it before.
        const now = await idb(db.transaction("queue").objectStore("queue").get(slot.tab) as IDBRequest<QueueSlot | undefined>);
        if (!now) continue;
        await send(now, post, async (writes) => {
          const t = db.transaction("queue", "readwrite");
          if (writes.length) t.objectStore("queue").put({ ...now, writes }, now.tab);
          else t.objectStore("queue").delete(now.tab);
          await new Promise((res, rej) => ((t.oncomplete = res), (t.onabort = t.onerror = () => rej(t.error))));
        }, refused);
      }
    } finally {
      for (const t of taken) t.release();
    }
  } finally {
    db.close();
    if (refused.length) await kvSet(swKeys.refused(url), [...((await kvGet<RefusedWrite[]>(swKeys.refused(url))) ?? []), ...refused]);
  }
}

/**
 * Makes the calling service worker abe's: call it once, at the top of the
 * app's worker file.
 *
 * ```ts
 * import { abeServiceWorker } from "@abe-stack/sdk/sw";
 * abeServiceWorker({ url: "https://api.example.com", precache: ["/", "/app.js", "/app.css"], version: "v3" });
 * ```
 */
export function abeServiceWorker(o: ServiceWorkerOptions): void {
  const sw = self as unknown as WorkerScope;
  const prefix = `abe-shell:${sw.registration.scope}:`;
  const cacheName = prefix + (o.version ?? "v1");
  const abs = (u: string) => new URL(u, sw.location.href).href;
  // Never an answer of the API: only what the app lists, and nothing of /api/ or /realtime (here or under url).
  const api = (u: URL) => [baseURL(abs(o.url)), sw.location.origin].some((b) => /^\/(api\/|realtime)/.test(u.href.slice(b.length)) && u.href.startsWith(b));
  const shell = new Set((o.precache ?? []).map(abs).filter((u) => !api(new URL(u))));
  const fallback = o.navigateFallback && abs(o.navigateFallback);
  const cached = (u: string) => caches.open(cacheName).then((c) => c.match(u));

  sw.addEventListener("install", (e) => {
    // No skipWaiting: a new version waits for the page to apply it.
    e.waitUntil(caches.open(cacheName).then((c) => c.addAll([...shell].map((u) => new Request(u, { cache: "reload" })))));
  });
  sw.addEventListener("activate", (e) => {
    e.waitUntil(
      (async () => {
        for (const k of await caches.keys()) if (k.startsWith(prefix) && k !== cacheName) await caches.delete(k);
        await sw.clients.claim();
      })(),
    );
  });
  sw.addEventListener("message", (e) => {
    if ((e.data as { type?: string } | null)?.type === "SKIP_WAITING") void sw.skipWaiting();
  });
  sw.addEventListener("fetch", (e) => {
    const r = e.request;
    const u = new URL(r.url);
    if (r.method !== "GET" || u.origin !== sw.location.origin || api(u)) return;
    // A navigation is the shell whatever its query string.
    const key = r.mode === "navigate" ? u.origin + u.pathname : u.href;
    if (shell.has(key)) e.respondWith(cached(key).then((hit) => hit ?? fetch(r)));
    else if (r.mode === "navigate" && fallback) e.respondWith(fetch(r).catch(() => cached(fallback).then((hit) => hit ?? Response.error())));
  });
  const onSync = (e: ExtendableEvent) => {
    const locks = (navigator as { locks?: Locks }).locks;
    if (e.tag !== SYNC_TAG || !locks) return;
    e.waitUntil(
      replay(o, locks).finally(async () => {
        for (const c of await sw.clients.matchAll({ includeUncontrolled: true })) c.postMessage({ type: "abe:synced" });
      }),
    );
  };
  sw.addEventListener("sync", onSync);
  sw.addEventListener("periodicsync", onSync);
}

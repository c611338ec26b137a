// The page's side of @abe-stack/sdk/sw: registers the app's service
// worker, arms Background Sync while writes wait offline, hands the worker
// the access token, tells the app of a waiting update and applies it.

import type { Session } from "./auth.js";
import type { AbeClient } from "./client.js";
import { baseURL, kvGet, kvSet, swKeys, SYNC_TAG as TAG, type RefusedWrite } from "./swstore.js";

/** Options of {@link registerAbeServiceWorker}. */
export interface RegisterOptions {
  /** The worker's scope (its folder by default). */
  scope?: string;
  /** A new version is installed and waits: show a reload prompt that calls `applyUpdate()`. */
  onUpdate?: () => void;
  /** Writes the worker's replay saw refused (400, 403, 409, 422...) while no tab was open: told once. */
  onRefused?: (writes: RefusedWrite[]) => void;
  /** Also register a periodic sync of this minimum interval in ms, where the browser allows it (installed apps). */
  periodicSync?: number;
}

/** What {@link registerAbeServiceWorker} answers. */
export interface AbeServiceWorker {
  /** The registration; null where service workers are not available (or registering failed). */
  readonly registration: Promise<ServiceWorkerRegistration | null>;
  /** Calls fn when a new version waits (now, if one already does); returns its removal. */
  onUpdate(fn: () => void): () => void;
  /** Whether a new version waits. */
  readonly updateWaiting: boolean;
  /** Asks the browser to look for a new version of the worker now. */
  update(): Promise<void>;
  /** Lets the waiting version take over, and reloads the page when it does. */
  applyUpdate(): void;
}

interface SyncRegistration {
  sync?: { register(tag: string): Promise<void> };
  periodicSync?: { register(tag: string, o: { minInterval: number }): Promise<void> };
}

/**
 * Registers the app's service worker (a file calling `abeServiceWorker`)
 * for an offline client. Call it right after createClient. It keeps the
 * worker's copy of the access token current (the refresh token only
 * reaches the worker through an {@link IndexedDBTokenStore}), registers
 * the Background Sync tag when writes wait while the browser is offline
 * or the tab goes away, and tells of new versions.
 */
export function registerAbeServiceWorker(abe: Pick<AbeClient, "url" | "auth" | "writes">, scriptURL: string, o: RegisterOptions = {}): AbeServiceWorker {
  const url = baseURL(abe.url);
  const sw = (globalThis as { navigator?: { serviceWorker?: ServiceWorkerContainer } }).navigator?.serviceWorker;
  const updates = new Set<() => void>();
  if (o.onUpdate) updates.add(o.onUpdate);
  let waiting = false;
  const registration: Promise<ServiceWorkerRegistration | null> = sw
    ? sw.register(scriptURL, o.scope ? { scope: o.scope } : undefined).catch(() => sw.getRegistration(o.scope).then((r) => r ?? null, () => null))
    : Promise.resolve(null);

  // A new version installed while an older one controls the page: it waits.
  const check = (r: ServiceWorkerRegistration) => {
    if (!r.waiting || !sw?.controller || waiting) return;
    waiting = true;
    for (const f of [...updates]) f();
  };
  void registration.then((r) => {
    if (!r) return;
    check(r);
    r.addEventListener("updatefound", () => {
      const w = r.installing;
      w?.addEventListener("statechange", () => w.state === "installed" && check(r));
    });
    if (o.periodicSync) (r as SyncRegistration).periodicSync?.register(TAG, { minInterval: o.periodicSync }).catch(() => {});
  });

  // The access token, for a replay within its lifetime; logout takes it away.
  const hand = (s: Session | null) =>
    void kvSet(swKeys.access(url), s && { user: s.user, accessToken: s.accessToken, expiresAt: s.expiresAt }).catch(() => {});
  void abe.auth.getSession().then(hand);
  abe.auth.onAuthChange(hand);

  const g = globalThis as { navigator?: { onLine?: boolean }; addEventListener?: (t: string, f: () => void) => void };
  const arm = () => {
    if (abe.writes.pending.length) void registration.then((r) => (r as SyncRegistration | null)?.sync?.register(TAG)).catch(() => {});
  };
  abe.writes.onChange(() => g.navigator?.onLine === false && arm());
  g.addEventListener?.("offline", arm);
  g.addEventListener?.("pagehide", arm);

  const told = async () => {
    if (!o.onRefused) return;
    try {
      const r = await kvGet<RefusedWrite[]>(swKeys.refused(url));
      if (!r?.length) return;
      await kvSet(swKeys.refused(url), undefined);
      o.onRefused(r);
    } catch {
      // no IndexedDB
    }
  };
  void told();
  sw?.addEventListener("message", (e) => (e.data as { type?: string } | null)?.type === "abe:synced" && void told());

  return {
    registration,
    onUpdate(fn) {
      updates.add(fn);
      if (waiting) fn();
      return () => updates.delete(fn);
    },
    get updateWaiting() {
      return waiting;
    },
    async update() {
      await (await registration)?.update();
    },
    applyUpdate() {
      void registration.then((r) => {
        if (!r?.waiting || !sw) return;
        let reloaded = false;
        sw.addEventListener("controllerchange", () => {
          if (reloaded) return;
          reloaded = true;
          location.reload();
        });
        r.waiting.postMessage({ type: "SKIP_WAITING" });
      });
    },
  };
}

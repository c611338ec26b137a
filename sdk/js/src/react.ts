// @abe-stack/sdk/react: React hooks over the offline-first client. Each
// hook reads a live value through useSyncExternalStore, so a component
// re-renders when, and only when, what it shows changes. The core
// (@abe-stack/sdk) does not import React; this entry point does.

import { createContext, createElement, useContext, useEffect, useMemo, useSyncExternalStore, type ReactNode } from "react";
import type { AbeClient, AnyCollections, AnyRecord, CollectionsShape, RecordOf } from "./client.js";
import type { Live, LiveOptions, LiveRecordResult, LiveResult, Writes } from "./offline.js";
import { bindUndoShortcuts } from "./undo.js";

/**
 * Names the app's `Collections` for the hooks that take their client from
 * {@link AbeProvider}:
 *
 * ```ts
 * declare module "@abe-stack/sdk/react" {
 *   interface Register { collections: Collections }
 * }
 * ```
 */
export interface Register {}

/** The collections registered in {@link Register} (any collection, untyped, without). */
export type RegisteredCollections = Register extends { collections: infer C } ? (C extends CollectionsShape<C> ? C : AnyCollections) : AnyCollections;

type Client = AbeClient<AnyCollections>;

const Ctx = createContext<Client | null>(null);

/** Gives the hooks below their client when they are called without one. */
export function AbeProvider<C extends CollectionsShape<C>>(props: { client: AbeClient<C>; children?: ReactNode }): ReactNode {
  return createElement(Ctx.Provider, { value: props.client as unknown as Client }, props.children);
}

/** The client passed (own: the first argument is its place) or else provided, and the other arguments. */
function useArgs(a: unknown[], own: boolean): [Client, unknown[]] {
  const provided = useContext(Ctx);
  const client = ((own ? a[0] : null) ?? provided) as Client | null;
  if (!client) throw new Error("abe: no client: pass one, or render inside <AbeProvider client={...}>");
  return [client, own ? a.slice(1) : a];
}

/** The current value of a live query or record, re-rendering on its changes. */
function useLiveValue<T>(live: Live<T>): T {
  const subscribe = useMemo(() => (fn: () => void) => live.subscribe(fn), [live]);
  const get = () => live.current;
  return useSyncExternalStore(subscribe, get, get);
}

/**
 * A live query (see `client.live`): the records from the offline store
 * at once, then from the server, kept current by realtime, with pending
 * writes on top. Options are compared by value (filter, sort, limit), so
 * an inline `{ filter: "done == false" }` keeps the same query across
 * renders; `match` is taken when the query is first made.
 */
export function useLive<C extends CollectionsShape<C>, K extends keyof C & string>(
  client: AbeClient<C>,
  collection: K,
  opts?: LiveOptions<RecordOf<C, K>>,
): LiveResult<RecordOf<C, K>>;
/** A live query of the client of {@link AbeProvider}. */
export function useLive<K extends keyof RegisteredCollections & string>(
  collection: K,
  opts?: LiveOptions<RecordOf<RegisteredCollections, K>>,
): LiveResult<RecordOf<RegisteredCollections, K>>;
export function useLive(...a: unknown[]): LiveResult<unknown> {
  const [client, [collection, o]] = useArgs(a, typeof a[0] !== "string");
  const opts = (o ?? {}) as LiveOptions<AnyRecord>;
  const sort = Array.isArray(opts.sort) ? opts.sort.join(",") : opts.sort;
  const live = useMemo(
    () => client.live(collection as string, { ...opts, sort }),
    // By value, not identity: a new options object each render is the same query.
    [client, collection, opts.filter, sort, opts.limit],
  );
  return useLiveValue(live);
}

const none: Live<LiveRecordResult<never>> = {
  current: { record: undefined, source: "cache", pending: 0, error: null },
  subscribe: () => () => {},
  refetch: async () => {},
};

/** One record, live (see `client.liveRecord`); with no id, no record. */
export function useLiveRecord<C extends CollectionsShape<C>, K extends keyof C & string>(
  client: AbeClient<C>,
  collection: K,
  id: string | null | undefined,
): LiveRecordResult<RecordOf<C, K>>;
/** One record, live, from the client of {@link AbeProvider}. */
export function useLiveRecord<K extends keyof RegisteredCollections & string>(
  collection: K,
  id: string | null | undefined,
): LiveRecordResult<RecordOf<RegisteredCollections, K>>;
export function useLiveRecord(...a: unknown[]): LiveRecordResult<unknown> {
  const [client, [collection, id]] = useArgs(a, typeof a[0] !== "string");
  const live = useMemo(() => (id ? client.liveRecord(collection as string, id as string) : none), [client, collection, id]);
  return useLiveValue<LiveRecordResult<unknown>>(live);
}

/** The write queue with the number of writes still to land. */
export type WritesState = Omit<Writes, "pending"> & {
  /** How many writes wait to land. */
  pending: number;
  /** The write queue itself (its `pending` lists the writes). */
  queue: Writes;
};

/** The client's write queue; re-renders when the number of pending writes changes. */
export function useWrites<C extends CollectionsShape<C>>(client?: AbeClient<C>): WritesState;
export function useWrites(...a: unknown[]): WritesState {
  const [client] = useArgs(a, true);
  const w = client.writes;
  const subscribe = useMemo(() => (fn: () => void) => w.onChange(fn), [w]);
  const get = () => w.pending.length;
  const pending = useSyncExternalStore(subscribe, get, get);
  return useMemo(() => ({ ...w, pending, queue: w }), [w, pending]);
}

/** Options of {@link useUndo}. */
export interface UseUndoOptions {
  /** Bind Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y (Cmd on macOS) on window while mounted (default true). */
  shortcuts?: boolean;
}

/** Undo and redo over the client's writes, and whether there is a step to take. */
export interface UndoState {
  undo(): Promise<boolean>;
  redo(): Promise<boolean>;
  canUndo: boolean;
  canRedo: boolean;
}

/** Undo and redo of the signed-in user's writes; re-renders when the history changes. */
export function useUndo<C extends CollectionsShape<C>>(client?: AbeClient<C>, opts?: UseUndoOptions): UndoState;
/** Undo and redo with the client of {@link AbeProvider}. */
export function useUndo(opts?: UseUndoOptions): UndoState;
export function useUndo(...a: unknown[]): UndoState {
  const first = a[0];
  const [client, [o]] = useArgs(a, first === undefined || (typeof first === "object" && first !== null && "history" in first));
  const shortcuts = (o as UseUndoOptions | undefined)?.shortcuts ?? true;
  const subscribe = useMemo(
    () => (fn: () => void) => {
      // The history is the signed-in user's: a new user (told through the
      // write queue) brings another.
      let h = client.history;
      let off = h.subscribe(fn);
      const offWrites = client.writes.onChange(() => {
        if (h !== client.history) {
          off();
          off = (h = client.history).subscribe(fn);
          fn();
        }
      });
      return () => {
        off();
        offWrites();
      };
    },
    [client],
  );
  const get = () => +client.history.canUndo | (+client.history.canRedo << 1);
  const can = useSyncExternalStore(subscribe, get, get);
  const state = useMemo<UndoState>(
    () => ({ undo: () => client.history.undo(), redo: () => client.history.redo(), canUndo: (can & 1) > 0, canRedo: can > 1 }),
    [client, can],
  );
  useEffect(
    () => (shortcuts && typeof window !== "undefined" && typeof window.addEventListener === "function" ? bindUndoShortcuts(window, { undo: () => client.history.undo(), redo: () => client.history.redo() }) : undefined),
    [client, shortcuts],
  );
  return state;
}

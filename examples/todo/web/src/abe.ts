// The one client of the app, and what its write queue tells the screens:
// conflicts waiting for the user's merge, and writes the server refused.
import { AbeError, createClient, ForbiddenError, mergeFields, type QueuedWrite, type WriteConflict } from "@abe-stack/sdk";
import { IndexedDBTokenStore } from "@abe-stack/sdk/sw";
import type { Collections, TodosRecord } from "./abe-types.js";
import { Store } from "./base/store.js";
import { refusal } from "./refusals.js";

declare module "@abe-stack/sdk/react" {
  interface Register {
    collections: Collections;
  }
}

/** The API is served with the app (abe's hosting), so it lives at the page's origin. */
export const url = location.origin;

/** A todo both this window (offline) and someone else changed: the user decides. */
export interface Conflict {
  key: string;
  id: string;
  /** The fields as they were before this window's edit. */
  base: Partial<TodosRecord>;
  /** This window's version. */
  mine: Partial<TodosRecord>;
  /** The server's record now: the write goes out conditional on its version. */
  theirs: TodosRecord;
  /** The fields both changed to different values. */
  fields: (keyof TodosRecord & string)[];
  /** What this window changed that the other side did not: written with the choice. */
  changes: Record<string, unknown>;
}

/** Conflicts waiting for the merge view, oldest first. */
export const conflicts = new Store<Conflict[]>([]);

/** The last write the server refused, in plain words. */
export const notice = new Store<{ text: string; at: number } | null>(null);

function onConflict({ write, base, local, remote }: WriteConflict): Record<string, unknown> | void {
  if (write.collection !== "todos" || !remote) return;
  // Several offline edits of one todo come back one by one: merge them all
  // from the first one's base against the newest server record, in one view.
  const open = conflicts.get().find((c) => c.id === write.recordId);
  const from = open ? open.base : ((base ?? {}) as Partial<TodosRecord>);
  const m = mergeFields(from, local, remote);
  const rest = conflicts.get().filter((c) => c !== open);
  if (m.conflicts.length === 0) {
    if (open) conflicts.set(rest);
    return m.changes; // nothing to ask: written again on top of theirs
  }
  conflicts.set([
    ...rest,
    {
      key: `${write.recordId}:${remote.version}:${write.id}`,
      id: write.recordId,
      base: from,
      mine: (local ?? {}) as Partial<TodosRecord>,
      theirs: remote as TodosRecord,
      fields: m.conflicts as (keyof TodosRecord & string)[],
      changes: m.changes,
    },
  ]);
}

function onRefused(write: QueuedWrite, error: AbeError): void {
  notice.set({ text: refusal(write, error), at: Date.now() });
}

export const abe = createClient<Collections>({
  url,
  tokenStore: new IndexedDBTokenStore(url),
  offline: { onConflict, onRollback: onRefused, onDrop: onRefused },
});

/** Tells a failed call (not a queued write) in plain words. */
export function say(e: unknown): string {
  if (e instanceof ForbiddenError) return "You may not do that here.";
  if (e instanceof AbeError) return e.problem?.detail || e.problem?.title || e.message;
  return e instanceof Error ? e.message : String(e);
}

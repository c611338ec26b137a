// Undo and redo of record operations: each edit records its inverse;
// edits within a batching window undo as one step.

import type { Operation } from "./operations.js";

/**
 * Operations on one record. With `create` the record is made with those
 * fields (ops are empty); with `remove` it is deleted: the undo of a
 * create, and of a delete.
 */
export interface RecordOps {
  collection: string;
  id: string;
  ops: Operation[];
  create?: Record<string, unknown>;
  remove?: true;
}

/** One undoable step: the edits it made and their inverses (in the order to apply them). */
export interface UndoStep {
  /** What the edits did, in order. */
  redo: RecordOps[];
  /** What undoes them, in order (the last edit's inverse first). */
  undo: RecordOps[];
  /** When the step started and last grew (the stack's clock). */
  startedAt: number;
  updatedAt: number;
}

/**
 * One edit to record: operations on a record and their inverse (from
 * {@link invertOperations}); or, with `action`, the record's creation
 * (`record`: its fields) or deletion (`record`: what it was), which undo
 * deletes or makes again.
 */
export interface Edit {
  collection: string;
  id: string;
  ops: Operation[];
  inverse: Operation[];
  action?: "create" | "delete";
  record?: Record<string, unknown>;
}

/** Options of {@link UndoRedoStack}. */
export interface UndoRedoOptions {
  /**
   * Applies operations, for an undo or a redo; the write queue's apply in
   * an app. The stack waits for it; a rejection leaves the step where it
   * was. What it returns (the queue's write ids) is not used.
   */
  apply: (ops: RecordOps[]) => unknown;
  /** Edits less than this many ms after the previous one join its step (default 500; 0 disables). */
  batchWindow?: number;
  /** The most steps kept (default 100; the oldest are dropped). */
  limit?: number;
  /** The clock in ms (for tests). */
  now?: () => number;
}

/** Merges consecutive ops of one record into one entry. */
const whole = (e: RecordOps) => e.create !== undefined || e.remove !== undefined;

function push(list: RecordOps[], entry: RecordOps): void {
  const last = list[list.length - 1];
  if (last && last.collection === entry.collection && last.id === entry.id && !whole(last) && !whole(entry)) last.ops.push(...entry.ops);
  else list.push({ ...entry, ops: [...entry.ops] });
}

/** What an edit does and what undoes it. */
function sides(edit: Edit): { redo: RecordOps; undo: RecordOps } {
  const at = { collection: edit.collection, id: edit.id, ops: [] as Operation[] };
  if (edit.action === "create") return { redo: { ...at, create: edit.record ?? {} }, undo: { ...at, remove: true } };
  if (edit.action === "delete") return { redo: { ...at, remove: true }, undo: { ...at, create: edit.record ?? {} } };
  return { redo: { ...at, ops: edit.ops }, undo: { ...at, ops: edit.inverse } };
}

/** What a client's `history` offers: an {@link UndoRedoStack}'s public face. */
export type History = Pick<UndoRedoStack, "canUndo" | "canRedo" | "undoSteps" | "redoSteps" | "undo" | "redo" | "record" | "seal" | "clear" | "subscribe">;

/**
 * An undo/redo history. `record(edit)` after each local edit; `undo()`
 * applies the inverses of the last step, `redo()` its operations again.
 * Edits within `batchWindow` of each other form one step, keeping every
 * inverse (list operations included); a new edit clears the redo stack.
 */
export class UndoRedoStack {
  private readonly done: UndoStep[] = [];
  private readonly undone: UndoStep[] = [];
  private readonly applyFn: UndoRedoOptions["apply"];
  private readonly windowMs: number;
  private readonly limit: number;
  private readonly now: () => number;
  private readonly listeners = new Set<() => void>();
  private sealed = false;
  private busy: Promise<void> = Promise.resolve();

  constructor(opts: UndoRedoOptions) {
    this.applyFn = opts.apply;
    this.windowMs = opts.batchWindow ?? 500;
    this.limit = opts.limit ?? 100;
    this.now = opts.now ?? Date.now;
  }

  /** Records an edit the app made (its ops already applied). */
  record(edit: Edit): void {
    if (edit.ops.length === 0 && !edit.action) return;
    const t = this.now();
    const last = this.done[this.done.length - 1];
    const { redo, undo } = sides(edit);
    if (last && !this.sealed && this.windowMs > 0 && t - last.updatedAt < this.windowMs) {
      push(last.redo, redo);
      last.undo.unshift({ ...undo, ops: [...undo.ops] });
      // merge with the following entry when it is the same record
      const [a, b] = last.undo;
      if (a && b && a.collection === b.collection && a.id === b.id && !whole(a) && !whole(b)) {
        last.undo.splice(0, 2, { collection: a.collection, id: a.id, ops: [...a.ops, ...b.ops] });
      }
      last.updatedAt = t;
    } else {
      const step: UndoStep = { redo: [], undo: [], startedAt: t, updatedAt: t };
      push(step.redo, redo);
      push(step.undo, undo);
      this.done.push(step);
      if (this.done.length > this.limit) this.done.shift();
    }
    this.sealed = false;
    this.undone.length = 0;
    this.changed();
  }

  /** Ends the current step: the next edit starts a new one even within the window. */
  seal(): void {
    this.sealed = true;
  }

  /** Whether there is a step to undo. */
  get canUndo(): boolean {
    return this.done.length > 0;
  }

  /** Whether there is a step to redo. */
  get canRedo(): boolean {
    return this.undone.length > 0;
  }

  /** The steps that can be undone, oldest first (a copy). */
  get undoSteps(): readonly UndoStep[] {
    return [...this.done];
  }

  /** The steps that can be redone, next first. */
  get redoSteps(): readonly UndoStep[] {
    return [...this.undone].reverse();
  }

  /** Undoes the last step; resolves false when there was none. */
  undo(): Promise<boolean> {
    return this.move(this.done, this.undone, (s) => s.undo);
  }

  /** Redoes the last undone step; resolves false when there was none. */
  redo(): Promise<boolean> {
    return this.move(this.undone, this.done, (s) => s.redo);
  }

  private move(from: UndoStep[], to: UndoStep[], ops: (s: UndoStep) => RecordOps[]): Promise<boolean> {
    const run = this.busy.then(async () => {
      const step = from.pop();
      if (!step) return false;
      this.sealed = true;
      try {
        await this.applyFn(ops(step).map((e) => ({ ...e, ops: [...e.ops] })));
      } catch (e) {
        from.push(step);
        throw e;
      }
      to.push(step);
      this.changed();
      return true;
    });
    this.busy = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  /** Forgets every step. */
  clear(): void {
    this.done.length = 0;
    this.undone.length = 0;
    this.changed();
  }

  /** Calls `listener` when the stacks change; returns an unsubscribe function. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    for (const l of [...this.listeners]) l();
  }
}

/** The parts of a keyboard event the shortcuts read. */
export interface KeyboardEventLike {
  key: string;
  ctrlKey: boolean;
  metaKey: boolean;
  shiftKey: boolean;
  altKey?: boolean;
  target?: unknown;
  defaultPrevented?: boolean;
  preventDefault(): void;
}

/** Something keydown listeners can be added to (a window, a document, an element). */
export interface KeyTarget {
  addEventListener(type: "keydown", listener: (e: KeyboardEventLike) => void): void;
  removeEventListener(type: "keydown", listener: (e: KeyboardEventLike) => void): void;
}

/** Options of {@link bindUndoShortcuts}. */
export interface UndoShortcutOptions {
  /** Also handle the keys inside inputs, textareas and contenteditable elements (default false: native undo there). */
  insideInputs?: boolean;
  /** Use Cmd (⌘) instead of Ctrl; detected from the platform by default. */
  mac?: boolean;
  /** Called with an undo or redo that failed. */
  onError?: (error: unknown) => void;
}

function isTextInput(t: unknown): boolean {
  if (!t || typeof t !== "object") return false;
  const el = t as { tagName?: unknown; isContentEditable?: unknown; type?: unknown };
  if (el.isContentEditable === true) return true;
  const tag = typeof el.tagName === "string" ? el.tagName.toUpperCase() : "";
  if (tag === "TEXTAREA" || tag === "SELECT") return true;
  if (tag !== "INPUT") return false;
  const type = typeof el.type === "string" ? el.type.toLowerCase() : "text";
  return !["checkbox", "radio", "button", "submit", "reset", "range", "color", "file", "image"].includes(type);
}

function detectMac(): boolean {
  const nav = (globalThis as { navigator?: { platform?: string; userAgentData?: { platform?: string }; userAgent?: string } }).navigator;
  const p = nav?.userAgentData?.platform ?? nav?.platform ?? nav?.userAgent ?? "";
  return /mac|iphone|ipad|ipod/i.test(p);
}

/**
 * Wires Ctrl+Z (undo), Ctrl+Shift+Z and Ctrl+Y (redo) — Cmd on macOS —
 * on `target` to `stack`. Inside text inputs, textareas and
 * contenteditable elements the browser's own undo is left alone unless
 * `insideInputs`. Returns a function that unbinds.
 */
export function bindUndoShortcuts(target: KeyTarget, stack: Pick<UndoRedoStack, "undo" | "redo">, opts: UndoShortcutOptions = {}): () => void {
  const mac = opts.mac ?? detectMac();
  const onError = opts.onError ?? (() => {});
  const listener = (e: KeyboardEventLike) => {
    if (e.defaultPrevented || e.altKey) return;
    const mod = mac ? e.metaKey && !e.ctrlKey : e.ctrlKey && !e.metaKey;
    if (!mod) return;
    const key = e.key.toLowerCase();
    const isUndo = key === "z" && !e.shiftKey;
    const isRedo = (key === "z" && e.shiftKey) || (key === "y" && !e.shiftKey);
    if (!isUndo && !isRedo) return;
    if (!opts.insideInputs && isTextInput(e.target)) return;
    e.preventDefault();
    (isUndo ? stack.undo() : stack.redo()).catch(onError);
  };
  target.addEventListener("keydown", listener);
  return () => target.removeEventListener("keydown", listener);
}

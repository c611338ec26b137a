import { describe, expect, it, vi } from "vitest";
import { applyOperations, invertOperations, listInsert, listRemove, set, type Operation } from "../src/operations.js";
import { UndoRedoStack, bindUndoShortcuts, type KeyboardEventLike, type KeyTarget, type RecordOps } from "../src/undo.js";

/** A fake store of records that the stack's apply writes to, like the queue would. */
function setup(windowMs?: number) {
  let now = 0;
  const db = new Map<string, Record<string, unknown>>([["t1", { title: "a", labels: ["x", "y"], done: false }]]);
  const applied: RecordOps[][] = [];
  const apply = (batch: RecordOps[]) => {
    applied.push(batch);
    for (const e of batch) db.set(e.id, applyOperations(db.get(e.id)!, e.ops));
  };
  const stack = new UndoRedoStack({ apply, now: () => now, ...(windowMs === undefined ? {} : { batchWindow: windowMs }) });
  /** An edit as an app makes it: apply locally, record the inverse. */
  const edit = (ops: Operation[], id = "t1") => {
    const before = db.get(id)!;
    db.set(id, applyOperations(before, ops));
    stack.record({ collection: "todos", id, ops, inverse: invertOperations(ops, before) });
  };
  return { db, stack, edit, applied, tick: (ms: number) => (now += ms) };
}

describe("UndoRedoStack", () => {
  it("undoes and redoes one edit through apply", async () => {
    const { db, stack, edit, applied } = setup();
    edit([set("title", "b")]);
    expect(await stack.undo()).toBe(true);
    expect(db.get("t1")?.title).toBe("a");
    expect(applied[0]).toEqual([{ collection: "todos", id: "t1", ops: [set("title", "a")] }]);
    expect(await stack.redo()).toBe(true);
    expect(db.get("t1")?.title).toBe("b");
    expect(await stack.redo()).toBe(false);
  });

  it("edits within the 500 ms window undo as one step, keeping every inverse (list ops too)", async () => {
    const { db, stack, edit, tick } = setup();
    const start = structuredClone(db.get("t1"));
    edit([set("title", "b")]);
    tick(200);
    edit([listInsert("labels", "z", { after: "x" })]);
    tick(200);
    edit([listRemove("labels", "y")]);
    tick(400); // 400 after the last edit: still within the window
    edit([listInsert("labels", "y", "prepend"), set("done", true)]);
    expect(db.get("t1")).toEqual({ title: "b", labels: ["y", "x", "z"], done: true });
    expect(stack.undoSteps).toHaveLength(1);
    expect(stack.undoSteps[0]?.undo[0]?.ops).toHaveLength(5);
    await stack.undo();
    expect(db.get("t1")).toEqual(start);
    expect(stack.canUndo).toBe(false);
    await stack.redo();
    expect(db.get("t1")).toEqual({ title: "b", labels: ["y", "x", "z"], done: true });
  });

  it("edits further apart than the window are separate steps", async () => {
    const { db, stack, edit, tick } = setup();
    edit([set("title", "b")]);
    tick(500);
    edit([set("title", "c")]);
    expect(stack.undoSteps).toHaveLength(2);
    await stack.undo();
    expect(db.get("t1")?.title).toBe("b");
    await stack.undo();
    expect(db.get("t1")?.title).toBe("a");
  });

  it("a step across records undoes each record, last edit first", async () => {
    const { db, stack, edit } = setup();
    db.set("t2", { title: "q", labels: [] });
    edit([set("title", "b")]);
    edit([listInsert("labels", "n")], "t2");
    edit([set("title", "c")]);
    await stack.undo();
    expect(db.get("t1")?.title).toBe("a");
    expect(db.get("t2")).toEqual({ title: "q", labels: [] });
  });

  it("a new edit clears redo", async () => {
    const { stack, edit, tick } = setup();
    edit([set("title", "b")]);
    tick(1000);
    edit([set("title", "c")]);
    await stack.undo();
    expect(stack.canRedo).toBe(true);
    tick(1000);
    edit([set("done", true)]);
    expect(stack.canRedo).toBe(false);
    expect(await stack.redo()).toBe(false);
  });

  it("an edit right after an undo starts a new step, even within the window", async () => {
    const { stack, edit } = setup();
    edit([set("title", "b")]);
    edit([set("title", "c")]);
    await stack.undo();
    edit([set("title", "d")]);
    expect(stack.undoSteps).toHaveLength(1);
    expect(stack.undoSteps[0]?.redo[0]?.ops).toEqual([set("title", "d")]);
  });

  it("a failed apply leaves the step where it was", async () => {
    const stack = new UndoRedoStack({ apply: () => Promise.reject(new Error("offline")) });
    stack.record({ collection: "todos", id: "t1", ops: [set("title", "b")], inverse: [set("title", "a")] });
    await expect(stack.undo()).rejects.toThrow("offline");
    expect(stack.canUndo).toBe(true);
    expect(stack.canRedo).toBe(false);
  });

  it("serialises undo and redo called back to back", async () => {
    const order: string[] = [];
    const stack = new UndoRedoStack({
      apply: async (b) => {
        await new Promise((r) => setTimeout(r, 5));
        order.push(String(b[0]?.ops[0]?.value));
      },
      batchWindow: 0,
    });
    stack.record({ collection: "c", id: "1", ops: [set("v", 1)], inverse: [set("v", 0)] });
    stack.record({ collection: "c", id: "1", ops: [set("v", 2)], inverse: [set("v", 1)] });
    await Promise.all([stack.undo(), stack.undo(), stack.redo()]);
    expect(order).toEqual(["1", "0", "1"]);
  });

  it("notifies subscribers", () => {
    const stack = new UndoRedoStack({ apply: () => {} });
    const l = vi.fn();
    const off = stack.subscribe(l);
    stack.record({ collection: "c", id: "1", ops: [set("v", 1)], inverse: [set("v", 0)] });
    off();
    stack.clear();
    expect(l).toHaveBeenCalledTimes(1);
  });
});

class FakeTarget implements KeyTarget {
  listeners = new Set<(e: KeyboardEventLike) => void>();
  addEventListener(_t: "keydown", l: (e: KeyboardEventLike) => void) {
    this.listeners.add(l);
  }
  removeEventListener(_t: "keydown", l: (e: KeyboardEventLike) => void) {
    this.listeners.delete(l);
  }
  press(key: string, mods: Partial<KeyboardEventLike> = {}): boolean {
    let prevented = false;
    const e: KeyboardEventLike = { key, ctrlKey: false, metaKey: false, shiftKey: false, ...mods, preventDefault: () => (prevented = true) };
    for (const l of this.listeners) l(e);
    return prevented;
  }
}

describe("bindUndoShortcuts", () => {
  const fakeStack = () => ({ undo: vi.fn(() => Promise.resolve(true)), redo: vi.fn(() => Promise.resolve(true)) });

  it("wires Ctrl+Z, Ctrl+Shift+Z and Ctrl+Y, and unbinds", () => {
    const t = new FakeTarget();
    const s = fakeStack();
    const off = bindUndoShortcuts(t, s, { mac: false });
    expect(t.press("z", { ctrlKey: true })).toBe(true);
    expect(t.press("Z", { ctrlKey: true, shiftKey: true })).toBe(true);
    expect(t.press("y", { ctrlKey: true })).toBe(true);
    expect(t.press("z", { metaKey: true })).toBe(false); // Cmd is not Ctrl off macOS
    expect(t.press("z")).toBe(false);
    expect(t.press("x", { ctrlKey: true })).toBe(false);
    expect(s.undo).toHaveBeenCalledTimes(1);
    expect(s.redo).toHaveBeenCalledTimes(2);
    off();
    expect(t.press("z", { ctrlKey: true })).toBe(false);
    expect(t.listeners.size).toBe(0);
  });

  it("uses Cmd on macOS", () => {
    const t = new FakeTarget();
    const s = fakeStack();
    bindUndoShortcuts(t, s, { mac: true });
    t.press("z", { metaKey: true });
    t.press("z", { metaKey: true, shiftKey: true });
    t.press("z", { ctrlKey: true });
    expect(s.undo).toHaveBeenCalledTimes(1);
    expect(s.redo).toHaveBeenCalledTimes(1);
  });

  it("leaves native undo inside inputs, textareas and contenteditable alone unless insideInputs", () => {
    const t = new FakeTarget();
    const s = fakeStack();
    bindUndoShortcuts(t, s, { mac: false });
    for (const target of [{ tagName: "INPUT", type: "text" }, { tagName: "textarea" }, { tagName: "DIV", isContentEditable: true }])
      expect(t.press("z", { ctrlKey: true, target })).toBe(false);
    expect(t.press("z", { ctrlKey: true, target: { tagName: "INPUT", type: "checkbox" } })).toBe(true);
    expect(t.press("z", { ctrlKey: true, target: { tagName: "BUTTON" } })).toBe(true);
    expect(s.undo).toHaveBeenCalledTimes(2);

    const t2 = new FakeTarget();
    const s2 = fakeStack();
    bindUndoShortcuts(t2, s2, { mac: false, insideInputs: true });
    expect(t2.press("z", { ctrlKey: true, target: { tagName: "TEXTAREA" } })).toBe(true);
    expect(s2.undo).toHaveBeenCalledTimes(1);
  });

  it("reports a failed undo to onError", async () => {
    const t = new FakeTarget();
    const onError = vi.fn();
    bindUndoShortcuts(t, { undo: () => Promise.reject(new Error("x")), redo: () => Promise.resolve(true) }, { mac: false, onError });
    t.press("z", { ctrlKey: true });
    await new Promise((r) => setTimeout(r, 0));
    expect(onError).toHaveBeenCalledOnce();
  });

  it("accepts a DOM window as the target (types)", () => {
    type W = typeof globalThis extends { window: infer X } ? X : Window;
    const check = (w: W & Window, s: UndoRedoStack) => bindUndoShortcuts(w, s);
    expect(typeof check).toBe("function");
  });
});

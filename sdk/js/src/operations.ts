// Record operations (set, listInsert, listRemove) and their inverses, with
// the semantics of the Go engine (engine/ops), pinned by the shared JSON
// vectors in testdata/operations.

/** A JSON value, as records hold them. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** One step of a path: a key (string) or an array index (number). */
export type PathStep = string | number;

/** Where a listInsert puts its value; "append" when left out. */
export type Where = "append" | "prepend" | { before: unknown } | { after: unknown };

/** Sets the value at a path; `null` clears (a json key is deleted). */
export interface SetOp {
  op: "set";
  path: PathStep[];
  value: unknown;
}

/** Inserts a unique item into a list (an equal item is moved, not doubled). */
export interface ListInsertOp {
  op: "listInsert";
  path: PathStep[];
  value: unknown;
  where?: Where;
}

/** Removes every item equal to `value` from a list. */
export interface ListRemoveOp {
  op: "listRemove";
  path: PathStep[];
  value: unknown;
}

/** An operation on a record, as `PATCH {"ops": [...]}` and `/api/batch` take it. */
export type Operation = SetOp | ListInsertOp | ListRemoveOp;

/** Why an operation failed: a malformed op, a path that does not exist, or a list op on a non-list. */
export type OperationErrorCode = "decode" | "bad_path" | "not_a_list";

/** The error of {@link decodeOperation}, {@link applyOperation} and {@link invertOperation}. */
export class OperationError extends Error {
  /** The kind of failure, as the shared test vectors name it. */
  readonly code: OperationErrorCode;
  constructor(code: OperationErrorCode, message: string) {
    super(message);
    this.name = "OperationError";
    this.code = code;
  }
}

/** The most steps a path may have. */
export const MAX_PATH_DEPTH = 32;
/** The largest array index a path may hold. */
export const MAX_INDEX = 2147483647;

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function own(o: Obj, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}

function put(o: Obj, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
}

/** Deep JSON equality: numbers by value, objects by keys and values, arrays in order. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (isObj(a)) {
    if (!isObj(b)) return false;
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    for (const k of ka) if (!own(b, k) || !jsonEqual(a[k], b[k])) return false;
    return true;
  }
  return false;
}

/** Deep-copies a JSON value. */
export function cloneJson<T>(v: T): T {
  if (Array.isArray(v)) return v.map(cloneJson) as T;
  if (isObj(v)) {
    const out: Obj = {};
    for (const k of Object.keys(v)) put(out, k, cloneJson(v[k]));
    return out as T;
  }
  return v;
}

function toPath(path: string | readonly PathStep[]): PathStep[] {
  return typeof path === "string" ? [path] : [...path];
}

/** A set: `set("title", "Buy milk")`, `set(["meta", "color"], null)`. */
export function set(path: string | readonly PathStep[], value: unknown): SetOp {
  return { op: "set", path: toPath(path), value };
}

/** A listInsert: `listInsert("labels", "red", {after: "blue"})`; appends by default. */
export function listInsert(path: string | readonly PathStep[], value: unknown, where?: Where): ListInsertOp {
  const op: ListInsertOp = { op: "listInsert", path: toPath(path), value };
  if (where !== undefined) op.where = where;
  return op;
}

/** A listRemove: `listRemove("labels", "red")`. */
export function listRemove(path: string | readonly PathStep[], value: unknown): ListRemoveOp {
  return { op: "listRemove", path: toPath(path), value };
}

const decodeErr = (m: string) => new OperationError("decode", m);

function checkPath(path: unknown): PathStep[] {
  if (!Array.isArray(path)) throw decodeErr('"path" must be an array such as ["title"] or ["meta", "tags", 0]');
  if (path.length === 0) throw decodeErr("the path is empty");
  if (path.length > MAX_PATH_DEPTH) throw decodeErr(`the path has ${path.length} steps; at most ${MAX_PATH_DEPTH} are allowed`);
  path.forEach((s: unknown, i) => {
    if (typeof s === "number") {
      if (!Number.isInteger(s) || s < 0 || s > MAX_INDEX)
        throw decodeErr(`path[${i}] is ${s}: an index must be a whole number from 0 to ${MAX_INDEX}`);
    } else if (typeof s !== "string") throw decodeErr(`path[${i}] must be a string (a key) or a number (an index)`);
  });
  if (typeof path[0] !== "string" || path[0] === "") throw decodeErr("the path must start with a field name");
  return path as PathStep[];
}

function checkWhere(w: unknown): Where {
  if (w === "append" || w === "prepend") return w;
  if (isObj(w)) {
    const keys = Object.keys(w);
    if (keys.length === 1 && (keys[0] === "before" || keys[0] === "after")) return w as Where;
    throw decodeErr('where as an object must have one key, "before" or "after"');
  }
  throw decodeErr('where must be "append", "prepend", {"before": item} or {"after": item}');
}

/**
 * Checks an operation received as JSON with the rules of the Go decoder
 * (known op and keys only, a valid path, a value, where only on
 * listInsert) and returns a normalized copy. Throws an OperationError
 * with code "decode".
 */
export function decodeOperation(raw: unknown): Operation {
  if (!isObj(raw)) throw decodeErr("an op must be a JSON object");
  for (const k of Object.keys(raw))
    if (k !== "op" && k !== "path" && k !== "value" && k !== "where") throw decodeErr(`unknown key "${k}": an op has op, path, value, where`);
  const name = raw.op;
  if (name !== "set" && name !== "listInsert" && name !== "listRemove")
    throw decodeErr(`unknown op ${JSON.stringify(name)}: want set, listInsert or listRemove`);
  const path = checkPath(raw.path);
  if (!own(raw, "value") || raw.value === undefined) throw decodeErr(`"value" is missing: ${name} needs one`);
  if (name !== "set" && raw.value === null) throw decodeErr(`${name} needs a value that is not null`);
  const op = { op: name, path: [...path], value: cloneJson(raw.value) } as Operation;
  if (own(raw, "where")) {
    if (name !== "listInsert") throw decodeErr("where is only for listInsert");
    (op as ListInsertOp).where = cloneJson(checkWhere(raw.where));
  }
  return op;
}

function validate(op: Operation): void {
  decodeOperation(op);
}

interface Target {
  /** chain[k] is the container step k goes into; chain[0] is the record. */
  chain: unknown[];
  old: unknown;
  present: boolean;
}

function fmt(path: PathStep[]): string {
  return path.map((s, i) => (typeof s === "number" ? `[${s}]` : i === 0 ? s : `.${s}`)).join("");
}

function locate(rec: Obj, path: PathStep[]): Target {
  const chain: unknown[] = [];
  let cur: unknown = rec;
  let present = true;
  path.forEach((step, k) => {
    chain.push(cur);
    const bad = (want: string) =>
      new OperationError("bad_path", `bad path at ${fmt(path)}: ${fmt(path.slice(0, k)) || "the record"} is not ${want}`);
    if (isObj(cur)) {
      if (typeof step === "number") throw bad("an array");
      present = own(cur, step);
      cur = present ? cur[step] : undefined;
    } else if (Array.isArray(cur)) {
      if (typeof step !== "number") throw bad("an object");
      if (step >= cur.length) throw new OperationError("bad_path", `bad path at ${fmt(path)}: index ${step} is out of range`);
      cur = cur[step];
    } else {
      throw bad(typeof step === "number" ? "an array" : "an object");
    }
  });
  return { chain, old: cur, present };
}

function listAt(t: Target, op: Operation): unknown[] {
  if (!t.present || t.old === null || t.old === undefined) return [];
  if (!Array.isArray(t.old)) throw new OperationError("not_a_list", `${op.op} needs an array at ${fmt(op.path)}`);
  return t.old;
}

function withLeaf(t: Target, path: PathStep[], leaf: unknown, del: boolean): Obj {
  let v = leaf;
  for (let k = path.length - 1; k >= 0; k--) {
    const c = t.chain[k];
    const step = path[k]!;
    if (Array.isArray(c)) {
      const n = c.slice();
      n[step as number] = v;
      v = n;
    } else {
      const n: Obj = {};
      for (const key of Object.keys(c as Obj)) put(n, key, (c as Obj)[key]);
      if (del && k === path.length - 1) delete n[step as string];
      else put(n, step as string, v);
      v = n;
    }
  }
  return v as Obj;
}

const count = (list: unknown[], v: unknown) => list.filter((x) => jsonEqual(x, v)).length;
const without = (list: unknown[], v: unknown) => list.filter((x) => !jsonEqual(x, v));

function insert(list: unknown[], value: unknown, where: Where | undefined): unknown[] {
  const rest = without(list, value);
  let at = rest.length;
  if (where === "prepend") at = 0;
  else if (isObj(where)) {
    if ("before" in where) at = Math.max(0, rest.findIndex((x) => jsonEqual(x, where.before)));
    else {
      const i = rest.findIndex((x) => jsonEqual(x, (where as { after: unknown }).after));
      if (i >= 0) at = i + 1;
    }
  }
  rest.splice(at, 0, cloneJson(value));
  return rest;
}

/**
 * Returns the record `op` makes of `record`, leaving `record` and `op`
 * unchanged (containers on the path are copied, the rest is shared).
 * Throws an {@link OperationError}: "decode" for a malformed op,
 * "bad_path" when a step does not exist, "not_a_list" for a list op on a
 * value that is not an array (null and absent lists count as empty).
 */
export function applyOperation<R extends object>(record: R, op: Operation): R {
  validate(op);
  const rec = record as unknown as Obj;
  const t = locate(rec, op.path);
  const last = op.path.length - 1;
  if (op.op === "set") {
    const del = op.value === null && isObj(t.chain[last]) && last > 0;
    return withLeaf(t, op.path, cloneJson(op.value), del) as R;
  }
  const list = listAt(t, op);
  if (op.op === "listInsert") return withLeaf(t, op.path, insert(list, op.value, op.where), false) as R;
  if (count(list, op.value) === 0) return { ...rec } as R;
  return withLeaf(t, op.path, without(list, op.value), false) as R;
}

/** Applies operations in order; the record is not modified. */
export function applyOperations<R extends object>(record: R, ops: readonly Operation[]): R {
  return ops.reduce((r, op) => applyOperation(r, op), record);
}

function restore(t: Target, path: PathStep[]): SetOp {
  const last = path.length - 1;
  const parent = t.chain[last];
  if (isObj(parent) && last > 0 && t.present && t.old === null) {
    // A set of null would delete the key: set the object holding it.
    return { op: "set", path: path.slice(0, last), value: cloneJson(parent) };
  }
  return { op: "set", path: [...path], value: t.present && t.old !== undefined ? cloneJson(t.old) : null };
}

/**
 * Returns the operation that undoes `op` applied to `before`: applying it
 * to the result gives `before` back (a top-level field absent from
 * `before` comes back as null). Throws as applyOperation(before, op) would.
 */
export function invertOperation(op: Operation, before: object): Operation {
  validate(op);
  const t = locate(before as Obj, op.path);
  if (op.op === "set") return restore(t, op.path);
  const list = listAt(t, op);
  const n = count(list, op.value);
  if (op.op === "listRemove" && n === 0) return cloneJson(op);
  if (!t.present || t.old === null) return restore(t, op.path);
  if (op.op === "listInsert" && n === 0) return { op: "listRemove", path: [...op.path], value: cloneJson(op.value) };
  if (n > 1) return restore(t, op.path);
  const i = list.findIndex((x) => jsonEqual(x, op.value));
  const back: ListInsertOp = { op: "listInsert", path: [...op.path], value: cloneJson(list[i]), where: "prepend" };
  if (i > 0) {
    if (count(list, list[i - 1]) > 1) return restore(t, op.path);
    back.where = { after: cloneJson(list[i - 1]) };
  }
  return back;
}

/**
 * Inverts a list of operations applied in order to `before`: the result,
 * applied in order to the final record, gives `before` back.
 */
export function invertOperations(ops: readonly Operation[], before: object): Operation[] {
  const inverses: Operation[] = [];
  let cur = before;
  for (const op of ops) {
    inverses.push(invertOperation(op, cur));
    cur = applyOperation(cur, op);
  }
  return inverses.reverse();
}

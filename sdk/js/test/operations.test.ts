import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  OperationError,
  applyOperation,
  applyOperations,
  decodeOperation,
  invertOperation,
  invertOperations,
  listInsert,
  listRemove,
  set,
  type Operation,
} from "../src/operations.js";

// The vectors the Go engine passes too, read from the repository.
const dir = join(dirname(fileURLToPath(import.meta.url)), "../../../testdata/operations");

interface Case {
  name: string;
  before: Record<string, unknown>;
  op: unknown;
  after?: Record<string, unknown>;
  inverse?: unknown;
  restored?: Record<string, unknown>;
  error?: "bad_path" | "not_a_list" | "decode";
}

const files = readdirSync(dir).filter((f) => f.endsWith(".json"));

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === "object") {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

describe("operation vectors (testdata/operations)", () => {
  it("finds the four vector files", () => {
    expect(files.sort()).toEqual(["errors.json", "list_insert.json", "list_remove.json", "set.json"]);
  });

  for (const file of files) {
    const { cases } = JSON.parse(readFileSync(join(dir, file), "utf8")) as { cases: Case[] };
    describe(file, () => {
      it("has cases", () => expect(cases.length).toBeGreaterThan(0));
      for (const c of cases) {
        it(c.name, () => {
          const before = deepFreeze(structuredClone(c.before));
          if (c.error === "decode") {
            expect(() => decodeOperation(c.op)).toThrowError(OperationError);
            try {
              decodeOperation(c.op);
            } catch (e) {
              expect((e as OperationError).code).toBe("decode");
            }
            return;
          }
          // 1. decodes, and encodes back to the same JSON value.
          const op = decodeOperation(c.op);
          expect(JSON.parse(JSON.stringify(op))).toEqual(c.op);
          if (c.error) {
            for (const f of [() => applyOperation(before, op), () => invertOperation(op, before)]) {
              let err: unknown;
              try {
                f();
              } catch (e) {
                err = e;
              }
              expect(err).toBeInstanceOf(OperationError);
              expect((err as OperationError).code).toBe(c.error);
            }
            expect(before).toEqual(c.before);
            return;
          }
          // 2. apply gives after without changing before (frozen).
          const after = applyOperation(before, op);
          expect(after).toStrictEqual(c.after);
          expect(before).toEqual(c.before);
          // 3. the inverse is the vector's.
          const inv = invertOperation(op, before);
          expect(JSON.parse(JSON.stringify(inv))).toEqual(c.inverse);
          // 4. applying the inverse restores.
          expect(applyOperation(deepFreeze(structuredClone(after)), decodeOperation(c.inverse))).toStrictEqual(
            c.restored ?? c.before,
          );
          // 5. idempotent.
          expect(applyOperation(after, op)).toStrictEqual(c.after);
        });
      }
    });
  }
});

describe("operation helpers", () => {
  it("build ops with a field name or a path", () => {
    expect(set("title", "x")).toEqual({ op: "set", path: ["title"], value: "x" });
    expect(listInsert(["meta", "tags"], "a", { after: "b" })).toEqual({
      op: "listInsert",
      path: ["meta", "tags"],
      value: "a",
      where: { after: "b" },
    });
    expect(listRemove("labels", "red")).toEqual({ op: "listRemove", path: ["labels"], value: "red" });
  });

  it("inverts a sequence so that applying the inverses in order restores the record", () => {
    const before = { title: "t", labels: ["a", "b", "c"], meta: { color: "blue" } };
    const ops: Operation[] = [
      set("title", "u"),
      listInsert("labels", "c", "prepend"),
      listRemove("labels", "a"),
      set(["meta", "color"], null),
      listInsert("labels", "d", { before: "b" }),
    ];
    const after = applyOperations(before, ops);
    expect(after).toEqual({ title: "u", labels: ["c", "d", "b"], meta: {} });
    expect(applyOperations(after, invertOperations(ops, before))).toEqual(before);
  });

  it("does not let a __proto__ key reach the prototype", () => {
    const rec = JSON.parse('{"meta": {"__proto__": {"x": 1}}}') as Record<string, unknown>;
    const out = applyOperation(rec, set(["meta", "__proto__", "x"], 2));
    expect(JSON.stringify(out)).toBe('{"meta":{"__proto__":{"x":2}}}');
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});

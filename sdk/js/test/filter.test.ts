import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { compileFilter, type FilterEnv, type FilterFieldType } from "../src/index.js";

// The vectors the server's Filter.Match passes too (rules/filter_vectors_test.go).
const dir = join(dirname(fileURLToPath(import.meta.url)), "../../../testdata/filters");

interface Case {
  name: string;
  filter: string;
  record?: Record<string, unknown>;
  auth?: FilterEnv["auth"];
  now?: string;
  fields?: Record<string, FilterFieldType>;
  want?: boolean | null;
  server?: boolean;
  error?: boolean;
}

const files = readdirSync(dir).filter((f) => f.endsWith(".json"));

describe("filter vectors (testdata/filters)", () => {
  let total = 0;
  for (const file of files) {
    const { cases } = JSON.parse(readFileSync(join(dir, file), "utf8")) as { cases: Case[] };
    total += cases.length;
    describe(file, () => {
      for (const c of cases) {
        it(c.name, () => {
          if (c.error) {
            expect(() => compileFilter(c.filter)).toThrowError(/invalid filter/);
            return;
          }
          const f = compileFilter(c.filter, c.fields ? { fields: c.fields } : undefined);
          const env: FilterEnv = {};
          if ("auth" in c) env.auth = c.auth;
          if (c.now) env.now = new Date(c.now);
          const got = f.match(c.record ?? {}, env);
          if (c.want === true || c.want === false) {
            expect(got).toBe(c.want);
          } else if (c.server === undefined) {
            expect(got).toBeUndefined();
          } else {
            expect([undefined, c.server]).toContain(got);
          }
        });
      }
    });
  }
  it("has at least 150 vectors", () => expect(total).toBeGreaterThanOrEqual(150));
});

// A small seeded generator (mulberry32), so a failure can be replayed.
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("compileFilter on random filters", () => {
  const atoms = [
    "title == 'a'", "title.startsWith('é')", "note != null", "note < 'm'", "count > 2", "count <= 2.5", "score >= 1.5",
    "'red' in labels", "status in ['open', 'closed']", "size(labels) == 1", "done", "done == false", "due > request.time",
    "created_at < timestamp('2025-01-01T00:00:00Z') + duration('1h')", "owner == auth.id", "auth != null", "has_role('admin')",
    "get('groups', owner).name == 'x'", "count * 2 == 4", "meta == null", "title.contains(note)", "size(title) > 1",
  ];
  const values: unknown[] = [null, "", "a", "é", "🙂", 0, 1, 2.5, -3, 2 ** 60, true, false, [], ["red"], "2025-01-01T00:00:00Z", { x: 1 }];
  const fields = ["title", "note", "count", "score", "labels", "status", "done", "due", "created_at", "owner", "meta"];

  it("never throws for a filter that parses, and answers true, false or undefined", () => {
    const r = rng(15);
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const gen = (depth: number): string => {
      const n = r();
      if (depth > 4 || n < 0.35) return pick(atoms);
      if (n < 0.5) return "!" + gen(depth + 1);
      if (n < 0.6) return "(" + gen(depth + 1) + ")";
      return gen(depth + 1) + pick([" && ", " || "]) + gen(depth + 1);
    };
    for (let i = 0; i < 2000; i++) {
      const src = gen(0);
      const f = compileFilter(src);
      const record: Record<string, unknown> = {};
      for (const name of fields) if (r() < 0.85) record[name] = pick(values);
      const auth = pick([undefined, null, { id: "u1" }, { id: "u1", roles: ["admin"] }]);
      const got = f.match(record, { auth, now: new Date(1.7e12) });
      expect([true, false, undefined], src).toContain(got);
      // && and || do not depend on the order of their sides.
      if (src.includes(" && ") && !src.includes("(") && !src.includes("||") && !src.includes("!")) {
        const flipped = src.split(" && ").reverse().join(" && ");
        expect(compileFilter(flipped).match(record, { auth, now: new Date(1.7e12) }), src).toBe(got);
      }
    }
  });

  it("throws an Error for what does not parse, and nothing else", () => {
    const r = rng(7);
    const alphabet = ["a", "1", "'", '"', "(", ")", "[", "]", "{", "}", ".", ",", "!", "&&", "||", "==", "<", "in", " ", "\\", "-", "?", ":", "1.5", "x"];
    for (let i = 0; i < 3000; i++) {
      let src = "";
      const n = 1 + Math.floor(r() * 12);
      for (let j = 0; j < n; j++) src += alphabet[Math.floor(r() * alphabet.length)];
      let f;
      try {
        f = compileFilter(src);
      } catch (e) {
        expect(e, src).toBeInstanceOf(Error);
        expect((e as Error).message, src).toMatch(/^invalid filter/);
        continue;
      }
      expect([true, false, undefined], src).toContain(f.match({ a: 1, x: "x" }, { auth: null }));
    }
  });

  it("handles deep nesting and long filters", () => {
    const deep = "(".repeat(1000) + "done" + ")".repeat(1000);
    expect(compileFilter(deep).match({ done: true })).toBe(true);
    const nots = "!".repeat(2001) + "done";
    expect(compileFilter(nots).match({ done: true })).toBe(false);
    expect(() => compileFilter("count == 1 || ".repeat(400) + "done")).toThrowError(/longer than 4096/);
    expect(() => compileFilter("")).toThrowError(/empty/);
  });
});

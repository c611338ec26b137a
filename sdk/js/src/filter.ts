// Filters on the client: abe's filter language (CEL over field names, as
// in ?filter= and realtime subscriptions) evaluated against one record, so
// that a record written offline can be placed into the right live queries.
//
// The server type-checks a filter against the collection, then runs it as
// SQL (lists) or with cel-go (realtime, Filter.Match). This evaluator
// answers only where it agrees with both, and undefined ("ask the server")
// everywhere else. The vectors in testdata/filters are the contract; the
// Go side checks them against Filter.Match (rules/filter_vectors_test.go).

/** A field's type, for compileFilter's optional fields map. */
export type FilterFieldType = "string" | "integer" | "number" | "bool" | "timestamp" | "json" | "list";

export interface FilterOptions {
  /**
   * The types of the collection's fields, when known. JSON cannot tell an
   * integer from a number field, or a timestamp from text; with the map,
   * more comparisons have a definite answer.
   */
  fields?: Record<string, FilterFieldType>;
}

export interface FilterEnv {
  /** Who asks: null is anonymous; left out, whatever depends on auth is undefined. */
  auth?: { id: string; email?: string; roles?: string[] } | null;
  /** request.time; the current time when left out. */
  now?: Date;
}

export interface CompiledFilter {
  /** The filter, trimmed. */
  readonly source: string;
  /** Whether the server would list record: true or false, or undefined when the client cannot tell. */
  match(record: Record<string, unknown>, env?: FilterEnv): boolean | undefined;
}

/** A timestamp, in nanoseconds since 1970. */
class Ts {
  constructor(readonly n: bigint) {}
}
/** A duration, in nanoseconds. */
class Dur {
  constructor(readonly n: bigint) {}
}
// ERR is CEL's error (a null where a value is needed): the record does
// not match, though && and || may still decide. UNK: the client cannot
// tell.
const ERR = { err: 1 };
const UNK = { unk: 1 };

// What a value is known to be before looking at it: s text, t timestamp,
// d double, i integer.
type Hint = "s" | "t" | "d" | "i" | undefined;
interface Ctx {
  r: Record<string, unknown>;
  e: FilterEnv;
}
interface Node {
  ev: (c: Ctx) => unknown;
  t?: Hint;
  path?: string[]; // an identifier, or ident.ident
}

const MS = 1000000n;
const MIN_TS = -62135596800000n * MS; // 0001-01-01T00:00:00Z, CEL's range
const MAX_TS = 253402300800000n * MS - 1n; // 9999-12-31T23:59:59.999999999Z
const HINTS: Record<string, Hint> = { string: "s", integer: "i", number: "d", timestamp: "t" };
const SYSTEM: Record<string, Hint> = { id: "s", version: "i", created_at: "t", updated_at: "t" };

const fail = (at: number, msg: string): never => {
  throw new Error(`invalid filter at column ${at + 1}: ${msg}`);
};
const k = (v: unknown): Node => ({ ev: () => v });
const unk = k(UNK);

// ---- lexer ----

interface Tok {
  k: "num" | "str" | "id" | "op" | "eof";
  v: unknown; // the number or string (UNK when not evaluated here), or the text
  p: number;
  d?: boolean; // a double literal
}

const TOK =
  /[ \t\n\r\f]+|\/\/[^\n]*|(0[xX][\da-fA-F]+[uU]?|\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\.\d+(?:[eE][+-]?\d+)?|\d+[uU]?)|([rRbB]{0,2})('''|"""|'|")|([_a-zA-Z]\w*)|(\|\||&&|[=!<>]=|[-<>!+*/%?:.,()[\]{}])/y;
const ESC = /\\(?:([0-3][0-7]{2})|[xX]([\da-fA-F]{2})|u([\da-fA-F]{4})|U([\da-fA-F]{8})|([abfnrtv\\'"`?])|([^]?))/g;

function lex(src: string): Tok[] {
  const out: Tok[] = [];
  for (let i = 0; i < src.length; ) {
    TOK.lastIndex = i;
    const m = TOK.exec(src) ?? fail(i, `unexpected ${JSON.stringify(src[i])}`);
    const [all, num, pre, q, id, op] = m;
    const p = i;
    i += all.length;
    if (num) {
      const d = !/^0x/i.test(num) && /[.e]/i.test(num);
      const n = Number(num);
      // uint, hex and 007 literals, and integers beyond 2^53: not here.
      const v = d ? (Number.isFinite(n) ? n : UNK) : /[ux]|^0./i.test(num) || !Number.isSafeInteger(n) ? UNK : n;
      out.push({ k: "num", v, p, d });
    } else if (q) {
      const raw = /r/i.test(pre!);
      let j = i;
      while (!src.startsWith(q, j)) {
        if (j >= src.length || (q.length < 3 && /[\n\r]/.test(src[j]!))) fail(p, "the string is not closed on its line");
        j += src[j] === "\\" && !raw ? 2 : 1;
      }
      let bad = /b/i.test(pre!); // bytes are not evaluated here
      const body = src.slice(i, j);
      i = j + q.length;
      const s = raw
        ? body
        : body.replace(ESC, (_, o?: string, x?: string, u?: string, w?: string, e?: string, no?: string) => {
            if (no !== undefined) fail(p, "a bad escape sequence in the string");
            if (e) return "\x07\b\f\n\r\t\v"["abfnrtv".indexOf(e)] ?? e;
            const cp = parseInt((o ?? x ?? u ?? w)!, o ? 8 : 16);
            if (cp < 0x110000 && (cp < 0xd800 || cp > 0xdfff)) return String.fromCodePoint(cp);
            bad = true;
            return "";
          });
      if (s.includes("\0") && !bad) fail(p, "strings cannot hold the NUL character");
      out.push({ k: "str", v: bad || /\p{Cs}/u.test(s) ? UNK : s, p });
    } else if (id || op) {
      out.push({ k: id ? "id" : "op", v: id ?? op, p });
    }
  }
  out.push({ k: "eof", v: "", p: src.length });
  return out;
}

// ---- values ----

const B = (v: unknown): unknown => (typeof v === "boolean" || v === ERR ? v : v === null ? ERR : UNK);
// JSON numbers are doubles: an integer beyond 2^53 may have been rounded.
const exact = (x: number, t: Hint) => t === "d" || Number.isSafeInteger(x) || !Number.isInteger(x);
const looksTs = (v: unknown) => typeof v === "string" && /^\d{4}-\d\d-\d\dT/.test(v);

/** A record value as the evaluator sees it: text the server could not store is unknown. */
const norm = (v: unknown): unknown => (v === undefined || (typeof v === "string" && /\0|\p{Cs}/u.test(v)) ? UNK : v);

/** An RFC 3339 timestamp as cel-go's timestamp() parses it, at the microseconds PostgreSQL keeps. */
function parseTs(s: string): Ts | undefined {
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:Z|([+-])(\d\d):(\d\d))$/.exec(s);
  if (!m) return undefined;
  const [y, mo, d, h, mi, se, oh, om] = [1, 2, 3, 4, 5, 6, 9, 10].map((j) => Number(m[j] ?? 0)) as [number, number, number, number, number, number, number, number];
  const dt = new Date(0);
  dt.setUTCFullYear(y, mo - 1, d);
  if (dt.getUTCDate() !== d || dt.getUTCMonth() !== mo - 1 || h > 23 || mi > 59 || se > 59 || oh > 23 || om > 59) return undefined;
  const frac = BigInt((m[7] ?? "").padEnd(9, "0"));
  const n = BigInt(dt.getTime() + ((h * 60 + mi - (oh * 60 + om) * (m[8] === "-" ? -1 : 1)) * 60 + se) * 1000) * MS + frac;
  return frac % 1000n === 0n && n >= MIN_TS && n <= MAX_TS ? new Ts(n) : undefined;
}

const UNITS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, μs: 1e3, ms: 1e6, s: 1e9, m: 6e10, h: 3.6e12 };

/** A duration as Go's time.ParseDuration (behind CEL's duration()) reads it. */
function parseDur(s: string): Dur | undefined {
  if (/^[-+]?0$/.test(s)) return new Dur(0n);
  if (!/^[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/.test(s)) return undefined;
  let n = 0n;
  for (const [, i, f, u] of s.matchAll(/(\d*)\.?(\d*)(ns|us|µs|μs|ms|s|m|h)/g)) {
    const unit = UNITS[u!]!;
    if (f!.length > 15 || i!.length > 19) return undefined;
    // As Go computes the fraction: in float64, truncated.
    n += BigInt(i || "0") * BigInt(unit) + BigInt(Math.trunc(Number(f || "0") * (unit / 10 ** f!.length)));
  }
  return n < 1n << 63n ? new Dur(s[0] === "-" ? -n : n) : undefined;
}

const toTs = (v: unknown): Ts | undefined => (v instanceof Ts ? v : typeof v === "string" ? parseTs(v) : undefined);
const sign = (x: number | bigint | string, y: typeof x) => (x < y ? -1 : x > y ? 1 : 0);

/**
 * Compares a and b as CEL does: a number (negative, zero, positive), ERR
 * or UNK. eq asks for equality, where null equals only null and values of
 * unlike types differ; in an ordering, null is an error.
 */
function cmp(a: unknown, b: unknown, ta: Hint, tb: Hint, eq: boolean): unknown {
  if (a === ERR || b === ERR || (!eq && (a === null || b === null))) return ERR;
  if (a === UNK || b === UNK) return UNK;
  if (a === null || b === null) return a === b ? 0 : 1;
  if (ta === "t" || tb === "t" || a instanceof Ts || b instanceof Ts) {
    // A string beside a timestamp is a timestamp field (the server type-checked).
    const x = toTs(a);
    const y = toTs(b);
    return x && y ? sign(x.n, y.n) : UNK;
  }
  if (typeof a === "number" && typeof b === "number") return exact(a, ta) && exact(b, tb) ? sign(a, b) : UNK;
  if (typeof a === "string" && typeof b === "string") {
    if (a === b) return 0;
    // Two fields of unknown type holding timestamps compare as instants.
    if (ta !== "s" && tb !== "s" && (looksTs(a) || looksTs(b))) return UNK;
    const x = [...a];
    const y = [...b];
    for (let i = 0; i < x.length && i < y.length; i++) {
      const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
      if (d) return d; // CEL orders text by code point, as COLLATE "C" does
    }
    return x.length - y.length;
  }
  if (typeof a === "boolean" && typeof b === "boolean") return Number(a) - Number(b);
  if (a instanceof Dur && b instanceof Dur) return sign(a.n, b.n);
  if (eq && Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return 1;
    let r: unknown = 0;
    for (let i = 0; i < a.length; i++) {
      const e = cmp(norm(a[i]), norm(b[i]), undefined, undefined, true);
      if (typeof e === "number" && e) return 1;
      if (e !== 0) r = UNK;
    }
    return r;
  }
  return UNK;
}

function member(x: unknown, l: unknown, tx: Hint): unknown {
  if (x === ERR || l === ERR) return ERR;
  // null in a list holding null: cel-go says true, the SQL false.
  if (x === UNK || !Array.isArray(l) || (x === null && l.includes(null))) return UNK;
  let r: unknown = false;
  for (const e of l) {
    const q = cmp(x, norm(e), tx, undefined, true);
    if (q === 0) return true;
    if (typeof q !== "number") r = UNK;
  }
  return r;
}

function arith(op: string, a: unknown, b: unknown): unknown {
  if (a === ERR || b === ERR) return ERR;
  if (op === "+" && typeof a === "string" && typeof b === "string") return a + b;
  // Only timestamp ± duration (a string beside a duration is a timestamp
  // field), within CEL's range and PostgreSQL's microseconds. A null is
  // CEL's error but the SQL's NULL, and they differ under !=.
  const [t, d] = b instanceof Dur ? [toTs(a), b] : op === "+" && a instanceof Dur ? [toTs(b), a] : [];
  if (!t || !d || d.n % 1000n) return UNK;
  const n = op === "+" ? t.n + d.n : t.n - d.n;
  return n >= MIN_TS && n <= MAX_TS ? new Ts(n) : UNK;
}

// ---- parser: CEL's grammar; each node evaluates against a record ----

function parse(src: string, fields: Record<string, FilterFieldType>): Node {
  const toks = lex(src);
  let pos = 0;
  const peek = () => toks[pos]!;
  const is = (v: string) => peek().k === "op" && peek().v === v;
  const take = (v: string) => is(v) && ++pos > 0;
  const want = (v: string) => take(v) || fail(peek().p, `${v} expected`);
  const list = (end: string, item: () => Node): Node[] => {
    const out: Node[] = [];
    while (!is(end)) {
      out.push(item());
      if (!take(",")) break;
    }
    want(end);
    return out;
  };

  function expr(): Node {
    const c = logic(true);
    if (!take("?")) return c;
    logic(true);
    want(":");
    expr();
    return unk; // no SQL form on the server
  }
  // || (or) and && (and): both sides count, whichever fails (CEL's
  // commutative error handling).
  function logic(or: boolean): Node {
    let l = or ? logic(false) : rel();
    while (take(or ? "||" : "&&")) {
      const a = l;
      const b = or ? logic(false) : rel();
      l = {
        ev: (c) => {
          const x = B(a.ev(c));
          if (x === or) return or;
          const y = B(b.ev(c));
          return y === or ? or : x === UNK || y === UNK ? UNK : x === ERR || y === ERR ? ERR : !or;
        },
      };
    }
    return l;
  }
  function rel(): Node {
    let l = add();
    for (;;) {
      const t = peek();
      const op = t.v === "in" ? (t.k === "id" ? "in" : "") : t.k === "op" && /^[=!<>]=|^[<>]$/.test(t.v as string) ? (t.v as string) : "";
      if (!op) return l;
      pos++;
      const a = l;
      const b = add();
      l = {
        ev: (c) => {
          const x = a.ev(c);
          const y = b.ev(c);
          if (op === "in") return member(x, y, a.t);
          const o = cmp(x, y, a.t, b.t, op[1] === "=" && op[0] !== "<" && op[0] !== ">");
          if (typeof o !== "number") return o;
          return op === "==" ? !o : op === "!=" ? !!o : op === "<" ? o < 0 : op === "<=" ? o <= 0 : op === ">" ? o > 0 : o >= 0;
        },
      };
    }
  }
  function add(): Node {
    let l = mul();
    while (is("+") || is("-")) {
      const op = toks[pos++]!.v as string;
      const a = l;
      const b = mul();
      l = { ev: (c) => arith(op, a.ev(c), b.ev(c)) };
    }
    return l;
  }
  function mul(): Node {
    let l = unary();
    while (take("*") || take("/") || take("%")) {
      unary();
      l = unk; // arithmetic on numbers: overflow and rounding differ
    }
    return l;
  }
  function unary(): Node {
    let n = 0;
    if (is("!")) {
      while (take("!")) n++;
      const x = postfix();
      return {
        ev: (c) => {
          const v = B(x.ev(c));
          return typeof v === "boolean" ? v !== !!(n % 2) : v;
        },
      };
    }
    while (take("-")) n++;
    const x = postfix();
    if (!n) return x;
    return {
      t: x.t,
      ev: (c) => {
        const v = x.ev(c);
        return v === ERR ? ERR : typeof v === "number" && exact(v, x.t) ? (n % 2 ? -v : v) : UNK;
      },
    };
  }
  function postfix(): Node {
    let x = primary();
    for (;;) {
      if (take(".")) {
        const t = peek();
        if (t.k !== "id") fail(t.p, "a name expected after .");
        pos++;
        x = take("(") ? method(x, t.v as string, list(")", expr)) : select(x, t.v as string);
      } else if (take("[")) {
        expr();
        want("]");
        x = unk;
      } else {
        return x;
      }
    }
  }
  function select(x: Node, name: string): Node {
    const path = x.path && [...x.path, name];
    const base = path?.length === 2 ? path[0] : "";
    if (base === "auth") {
      return {
        path,
        t: name === "roles" ? undefined : "s",
        ev: (c) => {
          const a = c.e.auth;
          if (a === null) return ERR;
          const v = a && (name === "id" || name === "email" || name === "roles") ? a[name] : undefined;
          return Array.isArray(v) === (name === "roles") && v !== undefined ? norm(v) : UNK;
        },
      };
    }
    if (base === "request" && name === "time") {
      return {
        t: "t",
        ev: (c) => {
          const ms = (c.e.now ?? new Date()).getTime();
          return ms === ms ? new Ts(BigInt(ms) * MS) : UNK;
        },
      };
    }
    return { ...unk, path };
  }
  function method(x: Node, name: string, args: Node[]): Node {
    if (name === "size" && !args.length) return size(x);
    const a = args[0];
    if (args.length !== 1 || !a || !/^(startsWith|endsWith|contains)$/.test(name)) return unk;
    return {
      ev: (c) => {
        const s = x.ev(c);
        const p = a.ev(c);
        if (s === ERR || p === ERR || s === null || p === null) return ERR;
        if (typeof s !== "string" || typeof p !== "string") return UNK;
        return name === "startsWith" ? s.startsWith(p) : name === "endsWith" ? s.endsWith(p) : s.includes(p);
      },
    };
  }
  // size(null) is an error to cel-go but NULL to the SQL, and they differ
  // under !=, so it is undefined here.
  const size = (x: Node): Node => ({
    t: "i",
    ev: (c) => {
      const v = x.ev(c);
      return v === ERR ? ERR : typeof v === "string" ? [...v].length : Array.isArray(v) ? v.length : UNK;
    },
  });
  function call(name: string, args: Node[]): Node {
    const a = args[0];
    if (args.length !== 1 || !a) return unk;
    if (name === "size") return size(a);
    if (name === "timestamp" || name === "duration") {
      return {
        t: name === "timestamp" ? "t" : undefined,
        ev: (c) => {
          const v = a.ev(c);
          return v === ERR ? ERR : typeof v !== "string" ? UNK : ((name === "timestamp" ? parseTs(v) : parseDur(v)) ?? UNK);
        },
      };
    }
    if (name !== "has_role") return unk;
    return {
      ev: (c) => {
        const r = a.ev(c);
        const au = c.e.auth;
        return r === ERR ? ERR : typeof r !== "string" ? UNK : au === null ? false : Array.isArray(au?.roles) ? au.roles.includes(r) : UNK;
      },
    };
  }
  function primary(): Node {
    const t = toks[pos++]!;
    if (t.k === "num") return { ev: () => t.v, t: t.d ? "d" : "i" };
    if (t.k === "str") return { ev: () => t.v, t: "s" };
    if (t.k === "id" && t.v !== "in") {
      const name = t.v as string;
      if (name === "true" || name === "false") return k(name === "true");
      if (name === "null") return k(null);
      if (take("(")) return call(name, list(")", expr));
      if (name === "auth") return { path: [name], ev: (c) => (c.e.auth === undefined ? UNK : c.e.auth) };
      const ft = fields[name];
      const hint = Object.hasOwn(SYSTEM, name) ? SYSTEM[name] : ft && Object.hasOwn(HINTS, ft) ? HINTS[ft] : undefined;
      return {
        path: [name],
        t: hint,
        ev: (c) => {
          const v = Object.hasOwn(c.r, name) ? norm(c.r[name]) : UNK;
          // A json field is compared only with null; an integer field holds integers.
          return (ft === "json" && v !== null) || (hint === "i" && typeof v === "number" && !Number.isInteger(v)) ? UNK : v;
        },
      };
    }
    if (t.v === "(" && t.k === "op") {
      const x = expr();
      want(")");
      return x;
    }
    if (t.v === "[" && t.k === "op") {
      const items = list("]", expr);
      return {
        ev: (c) => {
          const vs = items.map((i) => i.ev(c));
          return vs.includes(ERR) ? ERR : vs.includes(UNK) ? UNK : vs;
        },
      };
    }
    if (t.v === "{" && t.k === "op") {
      list("}", () => (expr(), want(":"), expr()));
      return unk; // maps have no SQL form
    }
    if (t.v === "." && t.k === "op" && peek().k === "id") return primary();
    return fail(t.p, t.k === "eof" ? "the filter ends where a value is expected" : `unexpected ${JSON.stringify(t.v)}`);
  }

  const root = expr();
  if (peek().k !== "eof") fail(peek().p, `unexpected ${JSON.stringify(peek().v)}`);
  return root;
}

/**
 * Compiles a filter to evaluate on the client. It throws an Error for a
 * filter that does not parse (the server answers 400 for it); one that
 * parses always compiles, and match answers undefined where it cannot tell.
 */
export function compileFilter(filter: string, options?: FilterOptions): CompiledFilter {
  const source = filter.trim();
  if (new TextEncoder().encode(source).length > 4096) throw new Error("invalid filter: the filter is longer than 4096 characters");
  if (!source) throw new Error("invalid filter: the filter is empty");
  const root = parse(source, options?.fields ?? {});
  return {
    source,
    match(record, env = {}) {
      const v = B(root.ev({ r: record, e: env }));
      return v === UNK ? undefined : v === true;
    },
  };
}

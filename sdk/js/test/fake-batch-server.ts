// An in-memory imitation of abe's batch endpoint for unit tests of the
// write queue: atomic batches, versions, If-Match, client ids, and
// scripted failures (refusals, outages, lost answers).
import { ConflictError, NetworkError, errorFromResponse, type AbeError, type Problem } from "../src/errors.js";
import type { HttpMethod, Transport, TransportResponse } from "../src/http.js";
import { applyOperations, type Operation } from "../src/operations.js";
import type { RecordData } from "../src/realtime.js";

interface Op {
  collection: string;
  action: string;
  id: string;
  version?: number;
  data?: Record<string, unknown>;
  ops?: Operation[];
}

export function problem(status: number, p: Problem = {}, headers?: Record<string, string>): AbeError {
  return errorFromResponse(status, { status, detail: `HTTP ${status}`, ...p }, new Headers(headers));
}

export class FakeServer implements Transport {
  records = new Map<string, RecordData>();
  batches: Op[][] = [];
  /** Each call takes the next scripted behaviour; "ok" (or nothing) answers normally. */
  script: ("ok" | "offline" | "lose" | AbeError | ((ops: Op[]) => AbeError | undefined))[] = [];
  /** Fails every request while true. */
  offline = false;

  rec(c: string, id: string): RecordData | undefined {
    return this.records.get(c + "/" + id);
  }

  async request<T>(method: HttpMethod, path: string, body?: unknown): Promise<TransportResponse<T>> {
    await Promise.resolve();
    if (this.offline) throw new NetworkError("offline");
    if (method === "GET") {
      const [, , , c, , id] = path.split("/");
      const r = this.rec(c!, id!);
      if (!r) throw problem(404);
      return { status: 200, headers: new Headers(), data: structuredClone(r) as T };
    }
    const ops = (body as { ops: Op[] }).ops;
    this.batches.push(ops);
    const step = this.script.shift() ?? "ok";
    if (step === "offline") throw new NetworkError("connection refused");
    if (typeof step === "object") throw step;
    if (typeof step === "function") {
      const e = step(ops);
      if (e) throw e;
    }
    const results = this.apply(ops);
    if (step === "lose") throw new NetworkError("the answer was lost");
    return { status: 200, headers: new Headers(), data: { results } as T };
  }

  private apply(ops: Op[]): { status: number; record?: RecordData }[] {
    const next = new Map(this.records);
    const results = ops.map((op, index) => {
      const k = op.collection + "/" + op.id;
      const cur = next.get(k);
      const fail = (status: number, p: Problem = {}): never => {
        throw status === 409 ? new ConflictError("conflict", { status, problem: { index, ...p } }) : problem(status, { index, ...p });
      };
      if (op.action === "create") {
        if (cur) fail(409, { errors: [{ field: "id", message: "is taken" }] });
        if (op.data?.title === "") fail(422, { errors: [{ field: "title", message: "is required" }] });
        const r = { ...op.data, id: op.id, version: 1 } as RecordData;
        next.set(k, r);
        return { status: 201, record: r };
      }
      if (!cur) return fail(404);
      if (op.version !== undefined && op.version !== cur.version) fail(409, { current: cur });
      if (op.action === "delete") {
        next.delete(k);
        return { status: 204 };
      }
      if (op.data?.title === "") fail(422, { errors: [{ field: "title", message: "is required" }] });
      const changed = op.ops ? applyOperations(cur, op.ops) : { ...cur, ...op.data };
      const same = JSON.stringify(changed) === JSON.stringify(cur);
      const r = same ? cur : { ...changed, version: cur.version + 1 };
      next.set(k, r);
      return { status: 200, record: r };
    });
    this.records = next;
    return structuredClone(results);
  }
}

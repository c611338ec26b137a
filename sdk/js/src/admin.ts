// The admin API (docs/admin-api.md) as typed functions over a client's
// `request`: what the admin console at /_/ uses, and nothing else does.
// A separate entry (@abe-stack/sdk/admin) so an app's bundle never carries
// it. Every function rejects with the SDK's AbeError subclasses, which the
// transport makes from the server's problem+json.

import type { AuthUser } from "./auth.js";
import type { AnyRecord, ListResult } from "./client.js";
import { errorFromResponse, NetworkError, type Problem } from "./errors.js";
import type { CallOptions, HttpMethod, QueryValue, RequestOptions, TransportResponse } from "./http.js";

/** What the admin functions need of a client: its `request`. */
export interface AdminTransport {
  request<T = unknown>(method: HttpMethod, path: string, body?: unknown, opts?: RequestOptions): Promise<TransportResponse<T>>;
}

/** A page of an admin list. */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** An account as the admin API shows it. */
export interface AdminUser extends AuthUser {
  locked_until: string | null;
  failed_attempts: number;
}

/** One security event (the audit log). */
export interface SecurityEvent {
  id: number;
  user_id: string | null;
  type: string;
  ip: string;
  user_agent: string;
  details: Record<string, unknown> | null;
  at: string;
}

/** An account with the failed sign-ins that count toward its lockout. */
export interface AdminUserDetail extends AdminUser {
  recent_failures: SecurityEvent[];
}

/** A live session: one refresh-token family. */
export interface AdminSession {
  id: string;
  created_at: string;
  last_used_at: string | null;
  expires_at: string;
  ip: string;
  user_agent: string;
  mfa: boolean;
}

/** A role, from abe.yaml (`config`) or made through the API (`api`). */
export interface Role {
  name: string;
  description: string;
  permissions: string[];
  default?: boolean;
  builtin?: boolean;
  source?: "config" | "api";
}

/** One River job. */
export interface Job {
  id: number;
  kind: string;
  state: string;
  queue: string;
  attempt: number;
  max_attempts: number;
  args: unknown;
  errors: { at: string; attempt: number; error: string }[] | null;
  created_at: string;
  scheduled_at: string;
  attempted_at: string | null;
  finalized_at: string | null;
}

/** What the signed-in admin may do. */
export interface ConsoleAccess {
  user: AuthUser;
  permissions: string[];
  mfa_required: boolean;
}

/** The node at a glance (GET /api/admin/overview). */
export interface Overview {
  version: string;
  started_at: string;
  ready: { status: "ok" | "degraded" | "down"; checks: { name: string; status: "up" | "down"; required: boolean; latency_ms: number; error?: string }[] };
  http: { minutes: { at: string; requests: number; errors: number }[] };
  realtime: { connections: number; subscriptions: number };
  jobs: Record<string, number> | null;
}

/** One collection as abe.yaml declares it (GET /api/admin/schema). */
export interface SchemaCollection {
  name: string;
  realtime: boolean;
  line: number;
  fields: ({ name: string; type: string } & Record<string, unknown>)[];
  indexes: { fields: string[]; unique?: boolean }[];
  rules: Record<string, string | null>;
  field_rules: Record<string, Record<string, string | null>>;
  files: { field: string; many: boolean; max_size: number; mime_types: string[] }[];
}

/** The schema in force and the migration the database needs. */
export interface Schema {
  config_path: string;
  collections: SchemaCollection[];
  plan: { in_sync: boolean; text: string; steps: { kind: string; summary: string; sql: string; destructive: boolean; warning?: string }[]; statements: string[]; error?: string };
}

/** Who a rule is explained for. */
export type ExplainPrincipal = { anonymous: true } | { user_id: string } | { email: string } | { roles: string[]; id?: string };

/** A rules playground question (POST /api/admin/rules/explain). */
export interface ExplainRequest {
  collection: string;
  operation: "list" | "read" | "create" | "update" | "delete";
  principal: ExplainPrincipal;
  record_id?: string;
  body?: unknown;
  query?: string;
}

/** One subexpression of a rule, with its value. */
export interface ExplainNode {
  id: number;
  expr: string;
  start: number;
  end: number;
  evaluated: boolean;
  value?: unknown;
  error?: string;
  children?: ExplainNode[];
}

/** One rule's explanation. */
export interface RuleExplanation {
  rule: string;
  allowed: boolean;
  reason?: string;
  tree?: ExplainNode | null;
  field?: string;
  kind?: string;
}

/** The rules playground's answer. */
export interface Explanation extends RuleExplanation {
  principal: { anonymous: boolean; id?: string; email?: string; roles: string[]; permissions: string[]; verified: boolean; mfa: boolean };
  record?: Record<string, unknown> | null;
  before?: Record<string, unknown> | null;
  changes?: Record<string, unknown> | null;
  loads?: { collection: string; id: string; found: boolean; record: Record<string, unknown> | null }[];
  read_rule?: RuleExplanation | null;
  fields?: RuleExplanation[];
  hidden?: string[];
  refused?: string[];
  sql?: { text: string; args: unknown[] } | null;
  api?: { method: string; path: string; status: number; body: unknown } | null;
  notes?: string[];
}

/** A user search. */
export interface UserQuery {
  email?: string;
  cursor?: string | null;
  limit?: number;
}

/** A security events filter. */
export interface EventQuery {
  user_id?: string;
  /** An exact type, or a prefix ending in `*`. */
  type?: string;
  /** RFC 3339. */
  since?: string;
  until?: string;
  cursor?: string | null;
  limit?: number;
}

/** A records query of the admin records API. */
export interface RecordQuery {
  filter?: string;
  sort?: string;
  cursor?: string | null;
  limit?: number;
  count?: boolean;
}

const enc = encodeURIComponent;

/** The admin API of a client: `admin(client).users.list({email: "ann"})`. */
export function admin(client: AdminTransport) {
  const call = async <T>(method: HttpMethod, path: string, body?: unknown, opts: CallOptions & { query?: Record<string, QueryValue>; ifMatch?: number } = {}): Promise<T> =>
    (await client.request<T>(method, path, body, { signal: opts.signal, query: opts.query, ifMatch: opts.ifMatch })).data;
  const u = (id: string) => `/api/admin/users/${enc(id)}`;
  const rec = (c: string) => `/api/admin/collections/${enc(c)}/records`;
  return {
    console: (o?: CallOptions) => call<ConsoleAccess>("GET", "/api/admin/console", undefined, o),
    overview: (o?: CallOptions) => call<Overview>("GET", "/api/admin/overview", undefined, o),
    schema: (o?: CallOptions) => call<Schema>("GET", "/api/admin/schema", undefined, o),
    users: {
      list: (q: UserQuery = {}, o?: CallOptions) => call<Page<AdminUser>>("GET", "/api/admin/users", undefined, { ...o, query: { ...q } }),
      get: (id: string, o?: CallOptions) => call<AdminUserDetail>("GET", u(id), undefined, o),
      create: (body: { email: string; password?: string; name?: string; email_verified?: boolean; roles?: string[] }, o?: CallOptions) =>
        call<AdminUser>("POST", "/api/admin/users", body, o),
      verify: (id: string, o?: CallOptions) => call<AdminUser>("POST", `${u(id)}/verify`, undefined, o),
      unlock: (id: string, o?: CallOptions) => call<unknown>("POST", `${u(id)}/unlock`, undefined, o),
      resetMfa: (id: string, o?: CallOptions) => call<unknown>("DELETE", `${u(id)}/mfa`, undefined, o),
      roles: (id: string, o?: CallOptions) => call<{ roles: string[] } | string[]>("GET", `${u(id)}/roles`, undefined, o),
      assignRole: (id: string, role: string, o?: CallOptions) => call<unknown>("POST", `${u(id)}/roles`, { role }, o),
      removeRole: (id: string, role: string, o?: CallOptions) => call<unknown>("DELETE", `${u(id)}/roles/${enc(role)}`, undefined, o),
      sessions: (id: string, o?: CallOptions) => call<{ items: AdminSession[] }>("GET", `${u(id)}/sessions`, undefined, o),
      revokeSession: (id: string, session: string, o?: CallOptions) => call<null>("DELETE", `${u(id)}/sessions/${enc(session)}`, undefined, o),
      logoutAll: (id: string, o?: CallOptions) => call<{ revoked: number }>("POST", `${u(id)}/logout-all`, undefined, o),
    },
    roles: {
      list: (o?: CallOptions) => call<{ items: Role[] }>("GET", "/api/admin/roles", undefined, o),
      get: (name: string, o?: CallOptions) => call<Role>("GET", `/api/admin/roles/${enc(name)}`, undefined, o),
      create: (role: { name: string; description?: string; permissions: string[]; default?: boolean }, o?: CallOptions) => call<Role>("POST", "/api/admin/roles", role, o),
      update: (name: string, patch: { description?: string; permissions?: string[]; default?: boolean }, o?: CallOptions) =>
        call<Role>("PATCH", `/api/admin/roles/${enc(name)}`, patch, o),
      remove: (name: string, o?: CallOptions) => call<null>("DELETE", `/api/admin/roles/${enc(name)}`, undefined, o),
      holders: (name: string, cursor?: string | null, o?: CallOptions) => call<Page<AdminUser>>("GET", `/api/admin/roles/${enc(name)}/users`, undefined, { ...o, query: { cursor } }),
    },
    events: {
      list: (q: EventQuery = {}, o?: CallOptions) => call<Page<SecurityEvent>>("GET", "/api/admin/security-events", undefined, { ...o, query: { ...q } }),
    },
    jobs: {
      list: (q: { state?: string; kind?: string; cursor?: string | null; limit?: number } = {}, o?: CallOptions) =>
        call<Page<Job>>("GET", "/api/admin/jobs", undefined, { ...o, query: { ...q } }),
      retry: (id: number, o?: CallOptions) => call<Job>("POST", `/api/admin/jobs/${id}/retry`, undefined, o),
      cancel: (id: number, o?: CallOptions) => call<Job>("POST", `/api/admin/jobs/${id}/cancel`, undefined, o),
    },
    records: {
      list: (collection: string, q: RecordQuery = {}, o?: CallOptions) => call<ListResult<AnyRecord>>("GET", rec(collection), undefined, { ...o, query: { ...q } }),
      get: (collection: string, id: string, o?: CallOptions) => call<AnyRecord>("GET", `${rec(collection)}/${enc(id)}`, undefined, o),
      create: (collection: string, body: Record<string, unknown>, o?: CallOptions) => call<AnyRecord>("POST", rec(collection), body, o),
      update: (collection: string, id: string, body: Record<string, unknown>, o: CallOptions & { ifMatch?: number } = {}) =>
        call<AnyRecord>("PATCH", `${rec(collection)}/${enc(id)}`, body, o),
      remove: async (collection: string, id: string, o: CallOptions & { ifMatch?: number } = {}) => {
        await call<null>("DELETE", `${rec(collection)}/${enc(id)}`, undefined, o);
      },
    },
    rules: {
      explain: (req: ExplainRequest, o?: CallOptions) => call<Explanation>("POST", "/api/admin/rules/explain", req, o),
    },
  };
}

/** The admin API object {@link admin} returns. */
export type AdminApi = ReturnType<typeof admin>;

// ---- Files of the admin records API (.../records/{id}/files/{field}) ----

/** What {@link adminFiles} needs of a client: its URL and a fresh access token. */
export interface FilesClient {
  readonly url: string;
  getAccessToken(): Promise<string | null>;
}

/** A download: the file's bytes, with the type and name the server gave. */
export interface DownloadedFile {
  blob: Blob;
  type: string;
  name: string;
}

/**
 * The file fields of the admin records API, for the records browser: an
 * upload is multipart and a download is bytes, which the JSON `request`
 * does not carry, so these go through fetch with the admin's token. No
 * rule applies (records:admin); the field's size and type limits do.
 * Every failure rejects with the SDK's AbeError subclasses, as `request`
 * does: a stale `ifMatch` is a ConflictError with `current`.
 */
export function adminFiles(client: FilesClient) {
  const base = (c: string, id: string, field: string) =>
    `${client.url.replace(/\/+$/, "")}/api/admin/collections/${enc(c)}/records/${enc(id)}/files/${enc(field)}`;
  const send = async (method: string, url: string, o: CallOptions & { ifMatch?: number; body?: BodyInit } = {}): Promise<Response> => {
    const token = await client.getAccessToken();
    const headers: Record<string, string> = {};
    if (token) headers.Authorization = `Bearer ${token}`;
    if (o.ifMatch !== undefined) headers["If-Match"] = `"${o.ifMatch}"`;
    let res: Response;
    try {
      res = await fetch(url, { method, headers, body: o.body, signal: o.signal });
    } catch (err) {
      if (o.signal?.aborted) throw o.signal.reason;
      throw new NetworkError(`abe: ${method} ${url} failed: ${err instanceof Error ? err.message : String(err)}`, err);
    }
    if (res.ok) return res;
    let problem: Problem | undefined;
    try {
      problem = (await res.json()) as Problem;
    } catch {
      // not problem+json: the status says it
    }
    throw errorFromResponse(res.status, problem, res.headers);
  };
  return {
    /** The URL of a file (or of the field's only file, without a name); it needs the token, so fetch it with {@link download}. */
    url: (collection: string, id: string, field: string, name?: string) => base(collection, id, field) + (name ? `/${enc(name)}` : ""),
    /** Uploads a file to a file field (a list field gets one more); resolves with the record as it is now. */
    upload: async (collection: string, id: string, field: string, file: Blob, o: CallOptions & { ifMatch?: number; name?: string } = {}): Promise<AnyRecord> => {
      const body = new FormData();
      body.append("file", file, o.name ?? (file instanceof File ? file.name : "file"));
      return (await (await send("POST", base(collection, id, field), { ...o, body })).json()) as AnyRecord;
    },
    /** A file's bytes (the field's only file without a name). */
    download: async (collection: string, id: string, field: string, name?: string, o?: CallOptions): Promise<DownloadedFile> => {
      const res = await send("GET", base(collection, id, field) + (name ? `/${enc(name)}` : ""), o);
      const blob = await res.blob();
      const disp = /filename="?([^";]+)"?/.exec(res.headers.get("Content-Disposition") ?? "");
      return { blob, type: res.headers.get("Content-Type") ?? blob.type, name: disp?.[1] ?? name ?? field };
    },
    /** Removes one file of a field, or all of them without a name; resolves with the record as it is now. */
    remove: async (collection: string, id: string, field: string, name?: string, o: CallOptions & { ifMatch?: number } = {}): Promise<AnyRecord> => {
      const res = await send("DELETE", base(collection, id, field) + (name ? `/${enc(name)}` : ""), o);
      return (res.status === 204 ? null : await res.json()) as AnyRecord;
    },
  };
}

/** The file functions {@link adminFiles} returns. */
export type AdminFiles = ReturnType<typeof adminFiles>;

// ---- Realtime inspector (GET /api/admin/realtime/inspect) ----

/** Who the inspector listens as: `anonymous`, `user:<id>` or `roles:<a,b>`. */
export interface InspectQuery {
  collection: string;
  filter?: string;
  as: string;
}

/** One message of the inspector's stream: the realtime protocol's, without `sub`. */
export interface InspectMessage {
  type: "ack" | "event" | "error" | "resync" | string;
  id?: string;
  topic?: string;
  op?: "create" | "update" | "delete";
  version?: number;
  seq?: number;
  /** false when an update takes the record out of the filter (no record then). */
  match?: boolean;
  record?: Record<string, unknown>;
  code?: string;
  message?: string;
}

/** What {@link inspectStream} needs of a client. */
export interface InspectClient {
  readonly url: string;
  getAccessToken(): Promise<string | null>;
}

/**
 * Opens the realtime inspector and yields its messages as they come. It
 * reads the text/event-stream with fetch (EventSource cannot send a
 * bearer token); it ends when the server ends the stream or `signal`
 * aborts. A refusal before the stream (400, 401, 403) rejects with an
 * Error carrying the problem's detail and `status`.
 */
export async function* inspectStream(client: InspectClient, q: InspectQuery, signal?: AbortSignal): AsyncGenerator<InspectMessage, void, undefined> {
  const params = new URLSearchParams({ collection: q.collection, as: q.as });
  if (q.filter) params.set("filter", q.filter);
  const token = await client.getAccessToken();
  const res = await fetch(`${client.url.replace(/\/+$/, "")}/api/admin/realtime/inspect?${params}`, {
    headers: { Accept: "text/event-stream", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    signal,
  });
  if (!res.ok || !res.body) {
    let detail = `${res.status} ${res.statusText}`;
    try {
      const p = (await res.json()) as { detail?: string; title?: string };
      detail = p.detail || p.title || detail;
    } catch {
      // not problem+json: keep the status line
    }
    throw Object.assign(new Error(detail), { status: res.status });
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      // Events end at a blank line; a partial one waits for the next chunk.
      let end: number;
      while ((end = buf.search(/\r?\n\r?\n/)) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end).replace(/^\r?\n\r?\n/, "");
        const data = block
          .split(/\r?\n/)
          .filter((l) => l.startsWith("data:"))
          .map((l) => l.slice(5).replace(/^ /, ""))
          .join("\n");
        if (data) yield JSON.parse(data) as InspectMessage;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

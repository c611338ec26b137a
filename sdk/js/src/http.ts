// The transport: one place where requests are made, tokens attached,
// expired tokens refreshed, and error answers turned into typed errors.
// The client, auth, and the offline queue all go through it.

import { AbeError, NetworkError, errorFromResponse, type Problem } from "./errors.js";

/** The HTTP methods the API uses. */
export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD";

/** A query parameter value; `undefined` and `null` are left out. */
export type QueryValue = string | number | boolean | null | undefined;

/** Options of a call: an AbortSignal. */
export interface CallOptions {
  /** Aborts the request; the call then rejects with the signal's reason. */
  signal?: AbortSignal | undefined;
}

/** Options of one request. */
export interface RequestOptions {
  /** Aborts the request; it then rejects with the signal's reason. */
  signal?: AbortSignal | undefined;
  /** Query parameters, appended to the path. */
  query?: Record<string, QueryValue> | undefined;
  /** Extra headers. */
  headers?: Record<string, string> | undefined;
  /** Makes a write conditional: sent as `If-Match: "<version>"`. */
  ifMatch?: number | string | undefined;
  /** Sent as `If-None-Match: "<version>"`; a 304 then resolves with `data: null`. */
  ifNoneMatch?: number | string | undefined;
  /**
   * Whether to send the access token (and refresh it when it expired).
   * Default true; auth endpoints that take no token pass false.
   */
  auth?: boolean | undefined;
}

/** A successful answer: the status, the headers and the parsed JSON body (null when empty). */
export interface TransportResponse<T = unknown> {
  status: number;
  headers: Headers;
  data: T;
}

/**
 * What the SDK's parts use to talk to the server. `request` resolves with
 * a 2xx (or 304) answer and rejects with an {@link AbeError} subclass for
 * any other status, a {@link NetworkError} when the server could not be
 * reached, or the signal's reason when aborted.
 */
export interface Transport {
  request<T = unknown>(
    method: HttpMethod,
    path: string,
    body?: unknown,
    opts?: RequestOptions,
  ): Promise<TransportResponse<T>>;
}

/** The fetch function the SDK calls (the global one by default). */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/** How the transport obtains tokens; auth.ts implements it. */
export interface TokenProvider {
  /** A current access token (refreshed first when about to expire), or null. */
  getAccessToken(signal?: AbortSignal): Promise<string | null>;
  /**
   * Called when a request sent with `token` got 401. Resolves true when a
   * new token is available and the request should be retried once.
   */
  onUnauthorized(token: string, signal?: AbortSignal): Promise<boolean>;
}

/** Options of {@link HttpTransport}. */
export interface HttpTransportOptions {
  /** The server's base URL, like `https://api.example.com`. */
  url: string;
  /** A fetch implementation; the global fetch by default. */
  fetch?: FetchLike | undefined;
}

function quoteTag(v: number | string): string {
  const s = String(v);
  return s.startsWith('"') || s.startsWith("W/") ? s : `"${s}"`;
}

/** Builds `base + path + ?query`, leaving out null and undefined values. */
export function buildUrl(base: string, path: string, query?: Record<string, QueryValue>): string {
  let url = base.replace(/\/+$/, "") + (path.startsWith("/") ? path : "/" + path);
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) q.append(k, String(v));
    const s = q.toString();
    if (s) url += (url.includes("?") ? "&" : "?") + s;
  }
  return url;
}

function abortReason(signal: AbortSignal | undefined, err: unknown): unknown {
  if (signal?.aborted) return signal.reason ?? err;
  if (err instanceof Error && err.name === "AbortError") return err;
  return undefined;
}

/** The fetch-based {@link Transport}. */
export class HttpTransport implements Transport {
  /** The server's base URL, without a trailing slash. */
  readonly url: string;
  private readonly fetchFn: FetchLike;
  /** Set by the auth part; without it requests go out without tokens. */
  tokens: TokenProvider | undefined;

  constructor(opts: HttpTransportOptions) {
    this.url = opts.url.replace(/\/+$/, "");
    const f = opts.fetch ?? (globalThis.fetch as FetchLike | undefined);
    if (!f) throw new Error("abe: no fetch available; pass one to createClient({fetch})");
    this.fetchFn = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  async request<T = unknown>(
    method: HttpMethod,
    path: string,
    body?: unknown,
    opts: RequestOptions = {},
  ): Promise<TransportResponse<T>> {
    const useAuth = opts.auth !== false && this.tokens !== undefined;
    let token = useAuth ? await this.tokens!.getAccessToken(opts.signal) : null;
    try {
      return await this.send<T>(method, path, body, opts, token);
    } catch (err) {
      if (useAuth && token !== null && err instanceof AbeError && err.status === 401) {
        if (await this.tokens!.onUnauthorized(token, opts.signal)) {
          token = await this.tokens!.getAccessToken(opts.signal);
          return await this.send<T>(method, path, body, opts, token);
        }
      }
      throw err;
    }
  }

  private async send<T>(
    method: HttpMethod,
    path: string,
    body: unknown,
    opts: RequestOptions,
    token: string | null,
  ): Promise<TransportResponse<T>> {
    const headers: Record<string, string> = { Accept: "application/json, application/problem+json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
    if (opts.ifMatch !== undefined) headers["If-Match"] = quoteTag(opts.ifMatch);
    if (opts.ifNoneMatch !== undefined) headers["If-None-Match"] = quoteTag(opts.ifNoneMatch);
    Object.assign(headers, opts.headers);
    const init: RequestInit = { method, headers };
    if (body !== undefined) init.body = JSON.stringify(body);
    if (opts.signal) init.signal = opts.signal;

    opts.signal?.throwIfAborted();
    let res: Response;
    try {
      res = await this.fetchFn(buildUrl(this.url, path, opts.query), init);
    } catch (err) {
      const reason = abortReason(opts.signal, err);
      if (reason !== undefined) throw reason;
      throw new NetworkError(`abe: ${method} ${path} failed: ${err instanceof Error ? err.message : String(err)}`, err);
    }
    let text: string;
    try {
      text = res.status === 204 || res.status === 304 || method === "HEAD" ? "" : await res.text();
    } catch (err) {
      const reason = abortReason(opts.signal, err);
      if (reason !== undefined) throw reason;
      throw new NetworkError(`abe: reading the answer to ${method} ${path} failed`, err);
    }
    let data: unknown = null;
    if (text !== "") {
      try {
        data = JSON.parse(text);
      } catch (err) {
        if (res.ok) throw new NetworkError(`abe: the answer to ${method} ${path} is not JSON`, err);
        data = { detail: text.slice(0, 200) };
      }
    }
    if (res.ok || res.status === 304) return { status: res.status, headers: res.headers, data: data as T };
    const problem = data !== null && typeof data === "object" ? (data as Problem) : undefined;
    throw errorFromResponse(res.status, problem, res.headers);
  }
}

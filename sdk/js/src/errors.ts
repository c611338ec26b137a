// Typed errors for abe's problem+json answers (RFC 9457).

/** One invalid field of a request, as the server names it. */
export interface FieldError {
  field: string;
  message: string;
}

/** The body of an error answer: an RFC 9457 problem detail. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  errors?: FieldError[];
  request_id?: string;
  /** The failing item of a batch. */
  index?: number;
  /** In a version conflict: the record as it is now. */
  current?: unknown;
  [key: string]: unknown;
}

/** The prefix of abe's problem types: `type` is this plus the code. */
export const PROBLEM_TYPE_BASE = "https://abe.dev/errors/";

/** The code of a status, for answers whose problem names none (docs/errors.md). */
const STATUS_CODES: Record<number, string> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  408: "timeout",
  409: "conflict",
  410: "changes_pruned",
  413: "body_too_large",
  415: "unsupported_media_type",
  422: "validation",
  429: "rate_limited",
  500: "internal",
  501: "not_implemented",
  503: "unavailable",
};

/**
 * The error class of an answer, as docs/errors.md lists them: the code of
 * the problem's `type` (`https://abe.dev/errors/<code>`), else the code of
 * the status; `network` when no answer came.
 */
export function errorCode(status: number, problem?: Problem): string {
  const t = problem?.type;
  if (typeof t === "string" && t.startsWith(PROBLEM_TYPE_BASE) && t.length > PROBLEM_TYPE_BASE.length) {
    return t.slice(PROBLEM_TYPE_BASE.length);
  }
  if (status === 0) return "network";
  return STATUS_CODES[status] ?? (status >= 500 ? "internal" : "bad_request");
}

/** Details every AbeError may carry. */
export interface AbeErrorInit {
  status: number;
  problem?: Problem | undefined;
  headers?: Headers | undefined;
  cause?: unknown;
}

/**
 * The base of every error the SDK throws for an answer of the server
 * (`status` > 0) or a failure to reach it (`NetworkError`, `status` 0).
 * Aborted requests reject with the signal's reason (an `AbortError`
 * DOMException by default), never with an AbeError.
 */
export class AbeError extends Error {
  /** The HTTP status, or 0 when no answer came. */
  readonly status: number;
  /**
   * The error class, stable across versions (docs/errors.md): such as
   * `version_conflict`, `token_expired`, `validation`; realtime errors use
   * the same codes. `network` when no answer came.
   */
  readonly code: string;
  /** The problem detail of the answer, when it had one. */
  readonly problem: Problem | undefined;
  /** The headers of the answer, when one came. */
  readonly headers: Headers | undefined;
  /** The field errors of the answer (empty when none). */
  readonly fieldErrors: FieldError[];
  /** The failing item of a batch, when the server named one. */
  readonly index: number | undefined;
  /** The request id the server logged, for support. */
  readonly requestId: string | undefined;

  constructor(message: string, init: AbeErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.status = init.status;
    this.code = errorCode(init.status, init.problem);
    this.problem = init.problem;
    this.headers = init.headers;
    this.fieldErrors = init.problem?.errors ?? [];
    this.index = typeof init.problem?.index === "number" ? init.problem.index : undefined;
    this.requestId = init.problem?.request_id;
  }
}

/** 401: no, a bad, an expired or a revoked token; or bad credentials. */
export class UnauthorizedError extends AbeError {}

/** 403: the rules or a missing permission refuse the request. */
export class ForbiddenError extends AbeError {}

/** 404: no such record (or one the read rule hides), no such route. */
export class NotFoundError extends AbeError {}

/**
 * 409: a conditional write met a newer version (`current` holds the record
 * as it is now), a taken id or unique value, or a restricting relation.
 */
export class ConflictError<T = unknown> extends AbeError {
  /** The record as it is now, for a version conflict; else undefined. */
  readonly current: T | undefined;
  constructor(message: string, init: AbeErrorInit) {
    super(message, init);
    this.current = init.problem?.current as T | undefined;
  }
}

/** 410: a change-log position older than the log keeps: refetch. */
export class GoneError extends AbeError {}

/** 400 or 422: a malformed request or invalid fields (see `fieldErrors`). */
export class ValidationError extends AbeError {
  /** The invalid fields as `{field: message}` (the first message of each). */
  get fields(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const e of this.fieldErrors) if (!(e.field in out)) out[e.field] = e.message;
    return out;
  }
}

/** 429: throttled; `retryAfter` is the seconds to wait (from Retry-After). */
export class RateLimitedError extends AbeError {
  /** Seconds to wait before trying again, when the server said. */
  readonly retryAfter: number | undefined;
  constructor(message: string, init: AbeErrorInit) {
    super(message, init);
    this.retryAfter = parseRetryAfter(init.headers?.get("retry-after") ?? null);
  }
}

/** The server could not be reached, or its answer could not be read. */
export class NetworkError extends AbeError {
  constructor(message: string, cause?: unknown) {
    super(message, { status: 0, cause });
  }
}

/** Reads a Retry-After header (seconds or an HTTP date) as seconds. */
export function parseRetryAfter(v: string | null, now: number = Date.now()): number | undefined {
  if (v === null || v.trim() === "") return undefined;
  const n = Number(v);
  if (Number.isFinite(n)) return Math.max(0, n);
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, Math.ceil((t - now) / 1000));
}

/** Turns an error answer into the matching AbeError subclass. */
export function errorFromResponse(status: number, problem: Problem | undefined, headers: Headers | undefined): AbeError {
  const message = problem?.detail || problem?.title || `HTTP ${status}`;
  const init: AbeErrorInit = { status, problem, headers };
  switch (status) {
    case 400:
    case 422:
      return new ValidationError(message, init);
    case 401:
      return new UnauthorizedError(message, init);
    case 403:
      return new ForbiddenError(message, init);
    case 404:
      return new NotFoundError(message, init);
    case 409:
      return new ConflictError(message, init);
    case 410:
      return new GoneError(message, init);
    case 429:
      return new RateLimitedError(message, init);
    default:
      return new AbeError(message, init);
  }
}

// The realtime client: one WebSocket per client, reference-counted
// subscriptions with a debounced last unsubscribe, reconnection with
// backoff and catch-up by seq. The protocol is docs/realtime.md.

import { backoffDelay, type BackoffOptions } from "./backoff.js";

/** A record as the server sends it: `id`, `version` and the fields. */
export interface RecordData {
  id: string;
  version: number;
  [field: string]: unknown;
}

/** A change of a record the subscription may read. */
export interface RealtimeEvent<R extends RecordData = RecordData> {
  type: "event";
  /** The topic subscribed to, like `collection:todos`. */
  topic: string;
  op: "create" | "update" | "delete";
  /** The record's id. */
  id: string;
  /** The record's version after the change. */
  version: number;
  /** The change's position in the change log. */
  seq: number;
  /** The record as the subscriber may see it (absent for deletes and `match: false`). */
  record?: R;
  /** false: the record no longer matches the subscription's filter. */
  match?: false;
}

/** The server could not replay what was missed: refetch, live events follow. */
export interface RealtimeResync {
  type: "resync";
  topic: string;
  seq: number;
}

/** The server refused or ended the subscription (`code` as in docs/realtime.md). */
export interface RealtimeError {
  type: "error";
  topic: string;
  code: string;
  message: string;
}

/** What a subscription's handler receives. */
/**
 * The server holds the subscription: every change after `seq` comes as
 * an event. Told on every ack (a reconnect acks again), and at once to a
 * handler that joins a subscription already held. A query read after it
 * misses nothing.
 */
export interface RealtimeReady {
  type: "ready";
  topic: string;
  seq: number;
}

export type RealtimeNotice<R extends RecordData = RecordData> = RealtimeEvent<R> | RealtimeResync | RealtimeError | RealtimeReady;

/** A subscription's handler. */
export type RealtimeHandler<R extends RecordData = RecordData> = (notice: RealtimeNotice<R>) => void;

/** The part of the WebSocket API the client uses (browsers' and the `ws` package's). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  // The handlers take `never` so that every WebSocket's own event types fit;
  // the client reads `data` of message events only.
  onopen: ((ev: never) => void) | null;
  onmessage: ((ev: never) => void) | null;
  onclose: ((ev: never) => void) | null;
  onerror: ((ev: never) => void) | null;
}

/** A WebSocket constructor: `globalThis.WebSocket`, or `WebSocket` of the `ws` package in Node 20. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** The connection's state. */
export type RealtimeStatus = "idle" | "connecting" | "open" | "reconnecting" | "closed";

/** Options of {@link RealtimeClient}. */
export interface RealtimeOptions {
  /** The server's base URL (`https://api.example.com`) or the socket's URL (`wss://.../api/realtime`). */
  url: string;
  /** The WebSocket constructor; the global one by default. */
  WebSocket?: WebSocketConstructor;
  /** The current access token (null when signed out); called on every (re)connect and token change. */
  getToken?: () => string | null | Promise<string | null>;
  /** Registers a listener for token changes (refresh, sign-in, sign-out); returns its removal. */
  onTokenChange?: (listener: () => void) => () => void;
  /** How long the last unsubscribe of a topic waits before the server hears of it, in ms (default 10 000). */
  unsubscribeDelay?: number;
  /** Reconnection delays (default 500 ms doubling up to 30 s, with jitter). */
  backoff?: BackoffOptions;
  /** Random numbers in [0, 1) for jitter (Math.random by default). */
  random?: () => number;
  /** Called when the connection's state changes. */
  onStatus?: (status: RealtimeStatus) => void;
}

/** Options of one {@link RealtimeClient.subscribe}. */
export interface SubscribeOptions {
  /** A filter over the fields (collection topics only), like `done == false`. */
  filter?: string;
  /**
   * The last seq already seen (kept from an earlier page, another tab):
   * the server first replays what changed after it. A handler that joins
   * a subscription already held at a later position hears a `resync`
   * after `ready`: what fell in between must be fetched again.
   */
  since?: number;
}

/** The topic of every change of a collection. */
export function collectionTopic(collection: string): string {
  return `collection:${collection}`;
}

/** The topic of one record's changes. */
export function recordTopic(collection: string, id: string): string {
  return `record:${collection}:${id}`;
}

/** A subscriber of a shared subscription; `behind`: it joined asking for older changes than the subscription's position. */
interface Handler {
  h: RealtimeHandler;
  behind?: boolean;
}

interface Sub {
  key: string;
  sid: string;
  topic: string;
  filter: string | undefined;
  handlers: Set<Handler>;
  /** The last seq seen: the `since` of the next subscribe. */
  seq: number | undefined;
  /** Whether the server holds the subscription (or will, once it answers). */
  sent: boolean;
  /** Whether the server has acknowledged it on the current socket. */
  acked?: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
}

interface ServerMessage {
  type?: string;
  id?: string;
  sub?: string;
  seq?: number;
  code?: string;
  message?: string;
}

const AUTH_ID = "auth";
const TOKEN_CODES = new Set(["token_expired", "token_revoked", "invalid_token", "unauthorized"]);

/**
 * The realtime client. One WebSocket serves every subscription; it opens
 * with the first subscription and closes after the last one ends.
 *
 * ```ts
 * const rt = new RealtimeClient({ url, WebSocket, getToken, onTokenChange });
 * const off = rt.subscribe("collection:todos", (n) => { ... }, { filter: "done == false" });
 * off(); // the server hears of it 10 s later, unless someone subscribes again
 * ```
 */
export class RealtimeClient {
  private readonly opts: RealtimeOptions;
  private readonly WS: WebSocketConstructor;
  private readonly subs = new Map<string, Sub>();
  private readonly bySid = new Map<string, Sub>();
  private ws: WebSocketLike | undefined;
  private ready = false;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private nextId = 0;
  private state: RealtimeStatus = "idle";
  private lastToken: string | null = null;
  private readonly offToken: (() => void) | undefined;

  constructor(opts: RealtimeOptions) {
    this.opts = opts;
    const WS = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) throw new Error("abe: no WebSocket available; pass one (the `ws` package in Node 20) as the WebSocket option");
    this.WS = WS;
    this.offToken = opts.onTokenChange?.(() => void this.reauth());
  }

  /** The connection's state. */
  get status(): RealtimeStatus {
    return this.state;
  }

  /** How many server subscriptions the client holds (one per topic and filter). */
  get subscriptionCount(): number {
    return this.subs.size;
  }

  /**
   * Subscribes `handler` to a topic (`collection:<name>` or
   * `record:<collection>:<id>`). Subscribers of the same topic and filter
   * share one server subscription. Returns the unsubscribe function; when
   * the last subscriber leaves, the server subscription ends after
   * `unsubscribeDelay`, unless someone subscribes again before.
   */
  subscribe<R extends RecordData = RecordData>(topic: string, handler: RealtimeHandler<R>, opts: SubscribeOptions = {}): () => void {
    if (this.state === "closed") throw new Error("abe: the realtime client is closed");
    const key = topic + "\n" + (opts.filter ?? "");
    let sub = this.subs.get(key);
    let behind = false;
    if (!sub) {
      sub = { key, sid: "s" + ++this.nextId, topic, filter: opts.filter, handlers: new Set(), seq: opts.since, sent: false, timer: undefined };
      this.subs.set(key, sub);
      this.bySid.set(sub.sid, sub);
      this.sendSubscribe(sub);
      this.connect();
    }
    else if (opts.since !== undefined && !(sub.seq !== undefined && opts.since >= sub.seq)) {
      // Joined behind the shared subscription's position: what fell in
      // between is told as a resync (refetch) once it is ready.
      behind = true;
    }
    clearTimeout(sub.timer);
    sub.timer = undefined;
    const entry: Handler = { h: handler as RealtimeHandler, behind };
    sub.handlers.add(entry);
    const s = sub;
    if (s.acked) queueMicrotask(() => s.handlers.has(entry) && this.tellReady(s, entry));
    let done = false;
    return () => {
      if (done) return;
      done = true;
      s.handlers.delete(entry);
      if (s.handlers.size === 0 && this.subs.get(key) === s) {
        const delay = this.opts.unsubscribeDelay ?? 10_000;
        s.timer = setTimeout(() => this.end(s), delay);
      }
    };
  }

  /** Closes the socket and forgets every subscription. */
  close(): void {
    for (const s of this.subs.values()) clearTimeout(s.timer);
    this.subs.clear();
    this.bySid.clear();
    this.offToken?.();
    this.drop();
    this.setStatus("closed");
  }

  private end(s: Sub): void {
    if (s.handlers.size > 0 || this.subs.get(s.key) !== s) return;
    this.subs.delete(s.key);
    this.bySid.delete(s.sid);
    if (s.sent && this.ready) this.send({ type: "unsubscribe", id: s.sid });
    if (this.subs.size === 0) {
      this.drop();
      this.setStatus("idle");
    }
  }

  private drop(): void {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const ws = this.ws;
    this.ws = undefined;
    this.ready = false;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
      try {
        ws.close(1000);
      } catch {
        // already closing
      }
    }
  }

  private setStatus(s: RealtimeStatus): void {
    if (this.state === s) return;
    this.state = s;
    this.opts.onStatus?.(s);
  }

  private url(): string {
    const u = this.opts.url.replace(/\/+$/, "");
    if (/^wss?:/.test(u)) return u;
    return u.replace(/^http/, "ws") + "/api/realtime";
  }

  private connect(): void {
    if (this.ws || this.reconnectTimer || this.state === "closed") return;
    this.setStatus(this.attempt > 0 ? "reconnecting" : "connecting");
    let ws: WebSocketLike;
    try {
      ws = new this.WS(this.url());
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => void this.opened(ws);
    ws.onmessage = (ev: { data: unknown }) => this.receive(String(ev.data));
    ws.onerror = () => {};
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      this.ready = false;
      for (const s of this.subs.values()) s.sent = s.acked = false;
      this.scheduleReconnect();
    };
  }

  private scheduleReconnect(): void {
    if (this.subs.size === 0 || this.state === "closed") {
      this.setStatus(this.state === "closed" ? "closed" : "idle");
      return;
    }
    this.setStatus("reconnecting");
    const delay = backoffDelay(this.attempt++, this.opts.backoff, this.opts.random);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect();
    }, delay);
  }

  private async opened(ws: WebSocketLike): Promise<void> {
    const token = await this.token();
    if (this.ws !== ws) return;
    if (token) this.send({ type: "auth", id: AUTH_ID, token });
    else this.authed();
  }

  private async token(): Promise<string | null> {
    try {
      this.lastToken = (await this.opts.getToken?.()) ?? null;
    } catch {
      this.lastToken = null;
    }
    return this.lastToken;
  }

  /** Sends a refreshed token on the open socket; subscriptions the old token lost are made again. */
  private async reauth(): Promise<void> {
    const before = this.lastToken;
    const token = await this.token();
    if (!this.ws || this.ws.readyState !== 1 || token === before) return;
    if (token) this.send({ type: "auth", id: AUTH_ID, token });
    else {
      // Signed out: start over as anonymous.
      this.drop();
      for (const s of this.subs.values()) s.sent = s.acked = false;
      this.connect();
    }
  }

  private authed(): void {
    this.ready = true;
    this.attempt = 0;
    this.setStatus("open");
    for (const s of this.subs.values()) this.sendSubscribe(s);
  }

  private sendSubscribe(s: Sub): void {
    if (!this.ready || s.sent) return;
    s.sent = true;
    const m: Record<string, unknown> = { type: "subscribe", id: s.sid, topic: s.topic };
    if (s.filter !== undefined) m.filter = s.filter;
    if (s.seq !== undefined) m.since = s.seq;
    this.send(m);
  }

  private send(m: Record<string, unknown>): void {
    try {
      this.ws?.send(JSON.stringify(m));
    } catch {
      // the close handler reconnects
    }
  }

  private tellReady(s: Sub, e: Handler): void {
    this.dispatch(s, { type: "ready", topic: s.topic, seq: s.seq ?? 0 }, e);
    if (e.behind) {
      e.behind = false;
      this.dispatch(s, { type: "resync", topic: s.topic, seq: s.seq ?? 0 }, e);
    }
  }

  private dispatch(s: Sub, n: RealtimeNotice, only?: Handler): void {
    for (const e of only ? [only] : [...s.handlers]) {
      if (!s.handlers.has(e)) continue;
      try {
        e.h(n);
      } catch (err) {
        setTimeout(() => {
          throw err;
        });
      }
    }
  }

  private receive(text: string): void {
    let m: ServerMessage;
    try {
      m = JSON.parse(text) as ServerMessage;
    } catch {
      return;
    }
    const s = this.bySid.get(m.sub ?? m.id ?? "");
    switch (m.type) {
      case "ack":
        if (m.id === AUTH_ID) {
          if (this.ready) for (const x of this.subs.values()) this.sendSubscribe(x);
          else this.authed();
        } else if (s) {
          if (s.seq === undefined && typeof m.seq === "number" && m.seq >= 0) s.seq = m.seq;
          s.acked = true;
          for (const e of [...s.handlers]) this.tellReady(s, e);
        }
        return;
      case "event":
        if (!s || typeof m.seq !== "number") return;
        if (s.seq !== undefined && m.seq <= s.seq) return; // seen before a reconnect
        s.seq = m.seq;
        this.dispatch(s, { ...(m as RealtimeEvent), topic: s.topic });
        return;
      case "resync":
        if (!s) return;
        if (typeof m.seq === "number") s.seq = m.seq;
        this.dispatch(s, { type: "resync", topic: s.topic, seq: m.seq ?? 0 });
        return;
      case "error": {
        const code = m.code ?? "internal";
        if (m.id === AUTH_ID) {
          // A token the server refuses: subscribe as anonymous; a new token comes with onTokenChange.
          if (!this.ready) this.authed();
          return;
        }
        if (!s) return;
        s.sent = s.acked = false;
        // Subscriptions a token lost are made again when a valid token arrives.
        if (TOKEN_CODES.has(code)) void this.reauth();
        this.dispatch(s, { type: "error", topic: s.topic, code, message: m.message ?? "" });
      }
    }
  }
}

// A scripted WebSocket for unit tests of the realtime client.
import type { WebSocketLike } from "../src/realtime.js";

export type Sent = { type: string; id?: string; topic?: string; filter?: string; since?: number; token?: string };

export class FakeWebSocket implements WebSocketLike {
  static all: FakeWebSocket[] = [];
  static get last(): FakeWebSocket {
    const ws = FakeWebSocket.all[FakeWebSocket.all.length - 1];
    if (!ws) throw new Error("no socket was opened");
    return ws;
  }
  readyState = 0;
  sent: Sent[] = [];
  closedByClient = false;
  onopen: ((ev: object) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: object) => void) | null = null;
  constructor(readonly url: string) {
    FakeWebSocket.all.push(this);
  }
  send(data: string): void {
    this.sent.push(JSON.parse(data) as Sent);
  }
  close(): void {
    this.closedByClient = true;
    this.readyState = 3;
  }
  /** The server accepts the connection. */
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  /** The server sends a message. */
  msg(m: Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify(m) });
  }
  /** The connection breaks. */
  drop(code = 1006): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: "" });
  }
  ofType(t: string): Sent[] {
    return this.sent.filter((m) => m.type === t);
  }
}

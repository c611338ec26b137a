// The realtime inspector: a collection's realtime events as another
// principal would receive them over a WebSocket (GET
// /api/admin/realtime/inspect, read with fetch streaming since it needs
// the bearer token). Newest first; an update that leaves the filter shows
// as "match: false".
import { inspectStream, type InspectMessage } from "@abe-stack/sdk/admin";
import { useEffect, useRef, useState } from "preact/hooks";
import { useSession } from "../session";
import { ErrorBanner } from "../ui/banner";
import { Field, Select } from "../ui/field";
import { useLoad } from "../ui/hooks";

/** How many events the screen keeps. */
const KEEP = 200;

/** One line of the log, with when it arrived. */
interface Entry {
  n: number;
  at: Date;
  msg: InspectMessage;
}

/** The realtime inspector screen. */
export function Inspector() {
  const { api, client } = useSession();
  const schema = useLoad((signal) => api.schema({ signal }), []);
  const realtime = (schema.data?.collections ?? []).filter((c) => c.realtime).map((c) => c.name);
  const [collection, setCollection] = useState("");
  const [filter, setFilter] = useState("");
  const [kind, setKind] = useState("anonymous");
  const [who, setWho] = useState("");
  const [entries, setEntries] = useState<Entry[]>([]);
  const [error, setError] = useState<unknown>();
  const [state, setState] = useState<"stopped" | "connecting" | "live">("stopped");
  const ctl = useRef<AbortController | null>(null);
  const coll = collection || realtime[0] || "";
  useEffect(() => () => ctl.current?.abort(), []);

  const stop = () => {
    ctl.current?.abort();
    ctl.current = null;
    setState("stopped");
  };
  const start = async () => {
    stop();
    const c = new AbortController();
    ctl.current = c;
    setError(undefined);
    setEntries([]);
    setState("connecting");
    const as = kind === "anonymous" ? "anonymous" : `${kind}:${who.trim()}`;
    let n = 0;
    try {
      for await (const msg of inspectStream(client, { collection: coll, filter: filter.trim() || undefined, as }, c.signal)) {
        if (msg.type === "ack") setState("live");
        if (msg.type === "error") setError(new Error(`${msg.code ?? "error"}: ${msg.message ?? ""}`));
        const e = { n: n++, at: new Date(), msg };
        setEntries((all) => [e, ...all].slice(0, KEEP));
      }
    } catch (e) {
      if (!c.signal.aborted) setError(e);
    }
    if (ctl.current === c) {
      ctl.current = null;
      setState("stopped");
    }
  };

  return (
    <section>
      <h1>Realtime inspector</h1>
      <p class="muted">A collection's events as another principal receives them, with the same read rule, hidden fields and filter. Every use is recorded in the security events.</p>
      <ErrorBanner error={schema.error} />
      <form
        class="panel inspect-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (state === "stopped") void start();
          else stop();
        }}
      >
        <div class="row">
          <Select label="Collection" value={coll} onValue={setCollection} options={realtime.length ? realtime : [["", "no realtime collection"]]} />
          <Select
            label="As"
            value={kind}
            onValue={setKind}
            options={[
              ["anonymous", "anonymous"],
              ["user", "a user (id)"],
              ["roles", "roles (a,b)"],
            ]}
          />
          {kind !== "anonymous" && <Field label={kind === "user" ? "User id" : "Roles"} value={who} onValue={setWho} placeholder={kind === "user" ? "0193…" : "editor,viewer"} />}
        </div>
        <Field label="Filter (optional)" value={filter} onValue={setFilter} placeholder="e.g. done == false" hint="A subscribe filter: CEL, as in a list's filter." />
        <div class="actions">
          <button type="submit" class={state === "stopped" ? "primary" : "danger"} disabled={!coll}>
            {state === "stopped" ? "Start" : "Stop"}
          </button>
          <span class={`status ${state === "live" ? "up" : state === "connecting" ? "degraded" : "off"}`} role="status" data-testid="inspect-state">
            {state}
          </span>
          {entries.length > 0 && (
            <button type="button" class="ghost" onClick={() => setEntries([])}>
              Clear
            </button>
          )}
        </div>
      </form>
      <ErrorBanner error={error} />
      {entries.length === 0 ? (
        <p class="empty">{state === "stopped" ? "Press Start to listen." : "Waiting for events…"}</p>
      ) : (
        <ol class="events-log" aria-label="Events, newest first" aria-live="polite">
          {entries.map((e) => (
            <EventRow key={e.n} e={e} />
          ))}
        </ol>
      )}
    </section>
  );
}

function EventRow({ e }: { e: Entry }) {
  const m = e.msg;
  return (
    <li class={`ev ev-${m.type} ${m.match === false ? "ev-unmatch" : ""}`}>
      <div class="ev-head">
        <span class="muted">{e.at.toLocaleTimeString()}</span>
        {m.seq !== undefined && <span class="badge">seq {m.seq}</span>}
        <strong>{m.type === "event" ? m.op : m.type}</strong>
        {m.id && m.type === "event" && <code>{m.id}</code>}
        {m.version !== undefined && <span class="muted">v{m.version}</span>}
        {m.match === false && <span class="badge warn">match: false (left the filter)</span>}
        {m.type === "error" && <span class="bad">{m.code}: {m.message}</span>}
      </div>
      {m.record && <pre class="json-block">{JSON.stringify(m.record, null, 2)}</pre>}
    </li>
  );
}

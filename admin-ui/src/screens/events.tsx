// Security events: the audit log, filtered by user, type and time.
import { useState } from "preact/hooks";
import { link, navigate, useRoute } from "../router";
import { useSession } from "../session";
import { ErrorBanner } from "../ui/banner";
import { Field } from "../ui/field";
import { useLoad } from "../ui/hooks";
import { Pager, Table, Time } from "../ui/table";

// datetime-local has no zone: the admin's local time, sent as RFC 3339.
const rfc3339 = (local: string) => (local ? new Date(local).toISOString() : undefined);

/** The Security events screen; its filter lives in the URL (/_/events?user_id=…). */
export function Events() {
  const { api } = useSession();
  const q = useRoute().query;
  const filter = { user_id: q.get("user_id") ?? "", type: q.get("type") ?? "", since: q.get("since") ?? "", until: q.get("until") ?? "" };
  const [form, setForm] = useState(filter);
  const [cursor, setCursor] = useState<string | null>(null);
  const key = JSON.stringify(filter);
  const events = useLoad(
    (signal) =>
      api.events.list(
        { user_id: filter.user_id || undefined, type: filter.type || undefined, since: rfc3339(filter.since), until: rfc3339(filter.until), cursor, limit: 50 },
        { signal },
      ),
    [key, cursor],
  );
  const set = (k: keyof typeof form) => (v: string) => setForm({ ...form, [k]: v });
  return (
    <section>
      <h1>Security events</h1>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          setCursor(null);
          const p = new URLSearchParams(Object.entries(form).filter(([, v]) => v));
          navigate(`events${p.size ? "?" + p : ""}`, true);
        }}
      >
        <Field label="User id" value={form.user_id} onValue={set("user_id")} />
        <Field label="Type" value={form.type} onValue={set("type")} placeholder="login_failed or role_*" />
        <Field label="Since" type="datetime-local" value={form.since} onValue={set("since")} />
        <Field label="Until" type="datetime-local" value={form.until} onValue={set("until")} />
        <button>Filter</button>
        {Object.values(filter).some(Boolean) && (
          <button
            type="button"
            class="ghost"
            onClick={() => {
              setForm({ user_id: "", type: "", since: "", until: "" });
              setCursor(null);
              navigate("events", true);
            }}
          >
            Clear
          </button>
        )}
      </form>
      <ErrorBanner error={events.error} />
      {events.data && (
        <>
          <Table
            stack
            label="Security events"
            rows={events.data.items}
            rowKey={(e) => e.id}
            empty="No events match."
            columns={[
              { title: "At", cell: (e) => <Time at={e.at} /> },
              { title: "Type", cell: (e) => <code>{e.type}</code> },
              // The tail of the id: ids are UUIDv7, whose head is the time they were made, so accounts made together share it.
              { title: "User", cell: (e) => (e.user_id ? <a {...link(`users/${e.user_id}`)} title={e.user_id}><code class="id-tail">…{e.user_id.slice(-12)}</code></a> : <span class="muted">—</span>) },
              { title: "IP", cell: (e) => e.ip },
              { title: "User agent", cell: (e) => e.user_agent, class: "wrap" },
              { title: "Details", cell: (e) => (e.details && Object.keys(e.details).length ? <code class="details">{JSON.stringify(e.details)}</code> : ""), class: "wrap" },
            ]}
          />
          <Pager cursor={cursor} next={events.data.next_cursor} onPage={setCursor} />
        </>
      )}
    </section>
  );
}

// Jobs: River's queue by state and kind, with each attempt's error; retry
// and cancel.
import { useState } from "preact/hooks";
import { describe } from "../api";
import { useSession } from "../session";
import { ErrorBanner, useToast } from "../ui/banner";
import { Field, Select } from "../ui/field";
import { useLoad } from "../ui/hooks";
import { Pager, Table, Time } from "../ui/table";

const STATES = ["", "available", "running", "retryable", "scheduled", "discarded", "cancelled", "completed"];

/** The Jobs screen. */
export function Jobs() {
  const { api } = useSession();
  const toast = useToast();
  const [state, setState] = useState("");
  const [kind, setKind] = useState("");
  const [applied, setApplied] = useState({ state: "", kind: "" });
  const [cursor, setCursor] = useState<string | null>(null);
  const jobs = useLoad((signal) => api.jobs.list({ state: applied.state || undefined, kind: applied.kind || undefined, cursor }, { signal }), [applied, cursor]);
  async function act(what: string, fn: () => Promise<unknown>) {
    try {
      await fn();
      toast(what);
      jobs.reload();
    } catch (err) {
      toast(describe(err), "error");
    }
  }
  return (
    <section>
      <h1>Jobs</h1>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          setCursor(null);
          setApplied({ state, kind });
        }}
      >
        <Select label="State" value={state} onValue={setState} options={STATES.map((s) => [s, s || "any"] as [string, string])} />
        <Field label="Kind" value={kind} onValue={setKind} placeholder="send_email" />
        <button>Filter</button>
      </form>
      <ErrorBanner error={jobs.error} />
      {jobs.data && (
        <>
          <Table
            stack
            label="Jobs"
            rows={jobs.data.items}
            rowKey={(j) => j.id}
            empty="No jobs match."
            columns={[
              { title: "Id", cell: (j) => j.id },
              { title: "Kind", cell: (j) => <code>{j.kind}</code> },
              { title: "State", cell: (j) => <span class={`badge ${j.state === "discarded" || j.state === "retryable" ? "bad" : j.state === "completed" ? "ok" : ""}`}>{j.state}</span> },
              { title: "Attempts", cell: (j) => `${j.attempt} of ${j.max_attempts}` },
              { title: "Scheduled", cell: (j) => <Time at={j.scheduled_at} /> },
              {
                title: "Errors",
                class: "wrap",
                cell: (j) =>
                  j.errors?.length ? (
                    <ol class="errors">
                      {j.errors.map((e) => (
                        <li key={e.attempt}>
                          <span class="muted">#{e.attempt}</span> {e.error}
                        </li>
                      ))}
                    </ol>
                  ) : (
                    ""
                  ),
              },
              {
                title: "",
                cell: (j) => (
                  <div class="actions tight">
                    {["discarded", "cancelled", "retryable", "completed"].includes(j.state) && <button onClick={() => act(`Job ${j.id} queued again`, () => api.jobs.retry(j.id))}>Retry</button>}
                    {["available", "scheduled", "retryable", "running"].includes(j.state) && (
                      <button class="danger" onClick={() => act(`Job ${j.id} cancelled`, () => api.jobs.cancel(j.id))}>
                        Cancel
                      </button>
                    )}
                  </div>
                ),
              },
            ]}
          />
          <Pager cursor={cursor} next={jobs.data.next_cursor} onPage={setCursor} />
        </>
      )}
    </section>
  );
}

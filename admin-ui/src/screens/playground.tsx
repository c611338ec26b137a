// The rules playground: pick a collection, an operation, a principal and a
// record or draft body; see the decision, every subexpression's value, the
// records get() loaded, the field rules, the list's SQL and the real API's
// answer for that principal (POST /api/admin/rules/explain, docs/rules.md).
import type { ExplainNode, ExplainPrincipal, ExplainRequest, Explanation, RuleExplanation } from "@abe-stack/sdk/admin";
import { useState } from "preact/hooks";
import { useSession } from "../session";
import { ErrorBanner } from "../ui/banner";
import { Field, Select, TextArea } from "../ui/field";
import { useLoad } from "../ui/hooks";

type Op = ExplainRequest["operation"];
const OPS: Op[] = ["list", "read", "create", "update", "delete"];

/** The Rules playground screen. */
export function Playground() {
  const { api, can } = useSession();
  const schema = useLoad((signal) => (can("admin:console") ? api.schema({ signal }) : Promise.reject(new Error("no schema"))), []);
  const names = schema.data?.collections.map((c) => c.name) ?? [];
  const [collection, setCollection] = useState("");
  const [operation, setOperation] = useState<Op>("read");
  const [who, setWho] = useState<"anonymous" | "email" | "roles">("email");
  const [email, setEmail] = useState("");
  const [roles, setRoles] = useState("");
  const [recordId, setRecordId] = useState("");
  const [body, setBody] = useState("{\n}");
  const [query, setQuery] = useState("");
  const [answer, setAnswer] = useState<Explanation>();
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const coll = collection || names[0] || "";
  const needsRecord = operation === "read" || operation === "update" || operation === "delete" || operation === "list";
  const needsBody = operation === "create" || operation === "update";

  async function run(e: Event) {
    e.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      const principal: ExplainPrincipal =
        who === "anonymous" ? { anonymous: true } : who === "email" ? { email: email.trim() } : { roles: roles.split(/[\s,]+/).filter(Boolean) };
      const req: ExplainRequest = { collection: coll, operation, principal };
      if (needsRecord && recordId.trim()) req.record_id = recordId.trim();
      if (needsBody) {
        try {
          req.body = JSON.parse(body);
        } catch (err) {
          throw new Error(`The body is not JSON: ${(err as Error).message}`);
        }
      }
      if ((operation === "list" || operation === "read") && query.trim()) req.query = query.trim();
      setAnswer(await api.rules.explain(req));
    } catch (err) {
      setAnswer(undefined);
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section>
      <h1>Rules playground</h1>
      <form class="panel" onSubmit={run}>
        <div class="row">
          {!schema.error ? (
            <Select label="Collection" value={coll} onValue={setCollection} options={names} />
          ) : (
            <Field label="Collection" required value={collection} onValue={setCollection} />
          )}
          <Select label="Operation" value={operation} onValue={(v) => setOperation(v as Op)} options={OPS} />
          <Select
            label="As"
            value={who}
            onValue={(v) => setWho(v as typeof who)}
            options={[
              ["email", "a user, by email"],
              ["roles", "a set of roles"],
              ["anonymous", "anonymous"],
            ]}
          />
          {who === "email" && <Field label="User's email" type="email" required value={email} onValue={setEmail} />}
          {who === "roles" && <Field label="Roles" value={roles} onValue={setRoles} placeholder="editor, member" />}
        </div>
        <div class="row">
          {needsRecord && <Field label={operation === "list" ? "Record id (optional)" : "Record id"} required={operation !== "list"} value={recordId} onValue={setRecordId} />}
          {(operation === "list" || operation === "read") && <Field label="Query" value={query} onValue={setQuery} placeholder="filter=done == false&fields=title" />}
        </div>
        {needsBody && <TextArea label={operation === "create" ? "Draft record (JSON)" : "Change (JSON)"} value={body} onValue={setBody} rows={5} />}
        <div class="actions">
          <button class="primary" disabled={busy || !coll}>
            Explain
          </button>
        </div>
      </form>
      <ErrorBanner error={error} />
      {answer && <Answer a={answer} />}
    </section>
  );
}

function Verdict({ e, what }: { e: RuleExplanation; what: string }) {
  return (
    <div class={`verdict ${e.allowed ? "ok" : "bad"}`} role="status">
      <strong>{e.allowed ? "Allowed" : "Refused"}</strong> <span>{what}</span>
      {e.reason && <span class="muted"> — {e.reason}</span>}
    </div>
  );
}

function Answer({ a }: { a: Explanation }) {
  const p = a.principal;
  return (
    <div class="explanation">
      <Verdict e={a} what="by the rule" />
      <p class="muted">
        As {p.anonymous ? "anonymous" : p.email || p.id || "a session"}
        {p.roles.length > 0 && ` with roles ${p.roles.join(", ")}`}
        {p.mfa && ", after MFA"}.
      </p>
      <h2>Rule</h2>
      {a.rule ? <Tree rule={a.rule} node={a.tree} /> : <p class="muted">No rule: only holders of * pass.</p>}
      {a.read_rule && (
        <>
          <h2>Read rule (the record must pass it first)</h2>
          <Verdict e={a.read_rule} what="read" />
          {a.read_rule.rule && <Tree rule={a.read_rule.rule} node={a.read_rule.tree} />}
        </>
      )}
      {a.loads && a.loads.length > 0 && (
        <>
          <h2>Records get() loaded</h2>
          <ul class="loads">
            {a.loads.map((l) => (
              <li key={`${l.collection}/${l.id}`}>
                <code>
                  {l.collection}/{l.id}
                </code>{" "}
                {l.found ? <pre>{JSON.stringify(l.record, null, 2)}</pre> : <span class="badge bad">not found</span>}
              </li>
            ))}
          </ul>
        </>
      )}
      {a.fields && a.fields.length > 0 && (
        <>
          <h2>Field rules</h2>
          {a.hidden && a.hidden.length > 0 && <p>Hidden: {a.hidden.map((f) => <code key={f} class="badge">{f}</code>)}</p>}
          {a.refused && a.refused.length > 0 && <p>Refused: {a.refused.map((f) => <code key={f} class="badge bad">{f}</code>)}</p>}
          {a.fields.map((f) => (
            <div key={`${f.field}-${f.kind}`} class="field-rule">
              <Verdict e={f} what={`${f.kind ?? ""} of ${f.field ?? ""}`} />
              {f.rule && <Tree rule={f.rule} node={f.tree} />}
            </div>
          ))}
        </>
      )}
      {a.sql && (
        <>
          <h2>The list's SQL</h2>
          <pre>{a.sql.text}</pre>
          {a.sql.args.length > 0 && <pre>{a.sql.args.map((v, i) => `$${i + 1} = ${JSON.stringify(v)}`).join("\n")}</pre>}
        </>
      )}
      {a.api && (
        <>
          <h2>The real API's answer</h2>
          <p>
            <code>
              {a.api.method} {a.api.path}
            </code>{" "}
            <span class={`badge ${a.api.status < 400 ? "ok" : "bad"}`}>{a.api.status}</span>
          </p>
          <pre>{JSON.stringify(a.api.body, null, 2)}</pre>
        </>
      )}
      {a.notes && a.notes.length > 0 && (
        <>
          <h2>Notes</h2>
          <ul>
            {a.notes.map((n) => (
              <li key={n}>{n}</li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}

function show(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : v === undefined ? "—" : JSON.stringify(v);
}

/** The rule, then each subexpression with its value, nested as the rule is. */
function Tree({ rule, node }: { rule: string; node: ExplainNode | null | undefined }) {
  return (
    <div class="tree">
      <pre class="rule">{rule}</pre>
      {node && (
        <ul class="nodes">
          <Node n={node} />
        </ul>
      )}
    </div>
  );
}

function Node({ n }: { n: ExplainNode }) {
  const cls = n.error ? "bad" : n.value === true ? "ok" : n.value === false ? "bad" : "";
  return (
    <li>
      <code>{n.expr}</code> <span class="arrow">→</span> {n.error ? <span class="badge bad">error: {n.error}</span> : <span class={`badge ${cls}`}>{show(n.value)}</span>}
      {!n.evaluated && <span class="muted"> (skipped by the real evaluation)</span>}
      {n.children && n.children.length > 0 && (
        <ul>
          {n.children.map((c) => (
            <Node key={c.id} n={c} />
          ))}
        </ul>
      )}
    </li>
  );
}

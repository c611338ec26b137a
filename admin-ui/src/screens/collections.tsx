// The Collections screen: the collections abe.yaml declares (GET
// /api/admin/schema) with their fields, indexes, rules and the migration
// plan, and a records browser over the admin records API (no rules apply
// there; records:admin). Routes: collections, collections/<name>.
import { ConflictError, type AnyRecord } from "@abe-stack/sdk";
import type { Schema, SchemaCollection } from "@abe-stack/sdk/admin";
import { useEffect, useState } from "preact/hooks";
import { describe } from "../api";
import { link, useRoute } from "../router";
import { useSession } from "../session";
import { ErrorBanner, useToast } from "../ui/banner";
import { Dialog } from "../ui/dialog";
import { TextArea } from "../ui/field";
import { useLoad } from "../ui/hooks";

/** The Collections screen. */
export function Collections() {
  const { api } = useSession();
  const route = useRoute();
  const name = decodeURIComponent(route.path.split("/")[1] ?? "");
  const s = useLoad((signal) => api.schema({ signal }), []);
  const coll = s.data?.collections.find((c) => c.name === name);
  return (
    <section>
      <h1>{name ? <>Collection {name}</> : "Collections"}</h1>
      <ErrorBanner error={s.error} />
      {s.data && <PlanBanner schema={s.data} />}
      {s.data && !name && <CollectionList schema={s.data} />}
      {s.data && name && !coll && <p class="banner error">abe.yaml declares no collection {name}.</p>}
      {coll && (
        <>
          <p>
            <a {...link("collections")}>← All collections</a>
          </p>
          <RecordsBrowser coll={coll} key={coll.name} />
          <SchemaDetail coll={coll} path={s.data!.config_path} />
        </>
      )}
    </section>
  );
}

function PlanBanner({ schema }: { schema: Schema }) {
  const p = schema.plan;
  if (p.in_sync && !p.error) return null;
  return (
    <div class="banner error" role="alert">
      <strong>{p.error ? "The migration plan could not be made: " + p.error : "The database is not in sync with abe.yaml."}</strong>
      {p.text && <pre class="plan">{p.text}</pre>}
    </div>
  );
}

function CollectionList({ schema }: { schema: Schema }) {
  return (
    <>
      <p class="muted">
        As declared in <code>{schema.config_path}</code>.
      </p>
      <ul class="coll-list">
        {schema.collections.map((c) => (
          <li key={c.name}>
            <a {...link("collections/" + encodeURIComponent(c.name))}>{c.name}</a>
            <span class="muted">
              {" "}
              {c.fields.length} fields{c.realtime ? ", realtime" : ""}
              {c.files.length ? `, ${c.files.length} file field${c.files.length > 1 ? "s" : ""}` : ""}
            </span>
          </li>
        ))}
      </ul>
    </>
  );
}

/** The options of a field: everything but its name and type. */
function options(f: Record<string, unknown>): string {
  return Object.entries(f)
    .filter(([k]) => k !== "name" && k !== "type")
    .map(([k, v]) => (v === true ? k : `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`))
    .join(", ");
}

function SchemaDetail({ coll, path }: { coll: SchemaCollection; path: string }) {
  return (
    <details class="panel schema" open>
      <summary>
        <h2>Schema</h2>
        <span class="muted">
          {path}:{coll.line}
        </span>
      </summary>
      <h3>Fields</h3>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Type</th>
              <th scope="col">Options</th>
            </tr>
          </thead>
          <tbody>
            {coll.fields.map((f) => (
              <tr key={f.name}>
                <td data-title="Name">
                  <code>{f.name}</code>
                </td>
                <td data-title="Type">{f.type}</td>
                <td data-title="Options" class="muted">
                  {options(f) || "—"}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h3>Indexes</h3>
      {coll.indexes.length === 0 ? (
        <p class="muted">None.</p>
      ) : (
        <ul>
          {coll.indexes.map((ix, i) => (
            <li key={i}>
              <code>({ix.fields.join(", ")})</code> {ix.unique && <span class="badge">unique</span>}
            </li>
          ))}
        </ul>
      )}
      <h3>Rules</h3>
      <RuleList rules={coll.rules} />
      {Object.keys(coll.field_rules ?? {}).length > 0 && (
        <>
          <h3>Field rules</h3>
          {Object.entries(coll.field_rules).map(([field, rules]) => (
            <div key={field} class="field-rule">
              <code>{field}</code>
              <RuleList rules={rules} />
            </div>
          ))}
        </>
      )}
    </details>
  );
}

function RuleList({ rules }: { rules: Record<string, string | null> }) {
  return (
    <dl class="facts rules">
      {Object.entries(rules).map(([op, r]) => (
        <>
          <dt key={op + "t"}>{op}</dt>
          <dd key={op}>{r === null || r === undefined ? <span class="muted">none (denied)</span> : <code>{r}</code>}</dd>
        </>
      ))}
    </dl>
  );
}

const SYSTEM = ["id", "created_at", "updated_at", "version"];

/** The body an edit sends: the record without its system fields and file fields. */
function editable(rec: AnyRecord, coll: SchemaCollection): Record<string, unknown> {
  const files = new Set(coll.files.map((f) => f.field));
  return Object.fromEntries(Object.entries(rec).filter(([k]) => !SYSTEM.includes(k) && !files.has(k)));
}

type Editing = { mode: "create" } | { mode: "edit"; rec: AnyRecord };

function RecordsBrowser({ coll }: { coll: SchemaCollection }) {
  const { api, can } = useSession();
  const toast = useToast();
  const [filter, setFilter] = useState("");
  const [applied, setApplied] = useState("");
  const [sort, setSort] = useState("-created_at");
  // The cursors of the pages before this one, for "Previous".
  const [cursors, setCursors] = useState<(string | null)[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [editing, setEditing] = useState<Editing | null>(null);
  const [deleting, setDeleting] = useState<AnyRecord | null>(null);
  const allowed = can("records:admin");
  const list = useLoad(
    (signal) => (allowed ? api.records.list(coll.name, { filter: applied || undefined, sort, cursor, limit: 25, count: true }, { signal }) : Promise.resolve(undefined)),
    [coll.name, applied, sort, cursor, allowed],
  );
  if (!allowed) return <p class="banner info">Browsing records needs the permission records:admin.</p>;
  const restart = () => {
    setCursors([]);
    setCursor(null);
  };
  const cols = ["id", ...coll.fields.map((f) => f.name).slice(0, 6), "updated_at", "version"];
  const files = new Set(coll.files.map((f) => f.field));
  const sortBy = (c: string) => {
    setSort(sort === c ? "-" + c : c);
    restart();
  };
  return (
    <div class="panel records">
      <div class="screen-head">
        <h2>Records {list.data?.total !== undefined && <span class="muted">({list.data.total})</span>}</h2>
        <button type="button" class="primary" onClick={() => setEditing({ mode: "create" })}>
          New record
        </button>
      </div>
      <form
        class="row filter-row"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied(filter.trim());
          restart();
          // The same filter again still reads the records anew.
          list.reload();
        }}
      >
        <div class="field grow">
          <label for="rec-filter">Filter</label>
          <input id="rec-filter" type="search" value={filter} placeholder={`e.g. ${coll.fields[0]?.name ?? "title"} == 'x'`} onInput={(e) => setFilter(e.currentTarget.value)} spellcheck={false} />
        </div>
        <div class="field">
          <button type="submit">Apply</button>
        </div>
      </form>
      <ErrorBanner error={list.error} />
      {list.data && list.data.items.length === 0 && <p class="empty">No records{applied ? " match this filter" : ""}.</p>}
      {list.data && list.data.items.length > 0 && (
        <div class="table-wrap stack" role="region" aria-label={`Records of ${coll.name}`} tabIndex={0}>
          <table class="rec-table">
            <thead>
              <tr>
                {cols.map((c) => {
                  const dir = sort === c ? "ascending" : sort === "-" + c ? "descending" : undefined;
                  return (
                    <th key={c} scope="col" aria-sort={dir ?? "none"} class={narrowHidden(c)}>
                      {files.has(c) ? (
                        c
                      ) : (
                        <button type="button" class="sort" onClick={() => sortBy(c)} title={`Sort by ${c}`}>
                          {c} {dir === "ascending" ? "▲" : dir === "descending" ? "▼" : ""}
                        </button>
                      )}
                    </th>
                  );
                })}
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((r) => (
                <tr key={r.id}>
                  {cols.map((c) => (
                    <td key={c} data-title={c} class={narrowHidden(c)}>
                      {files.has(c) ? <FileCell coll={coll.name} rec={r} field={c} onChanged={list.reload} /> : <Value v={r[c]} />}
                    </td>
                  ))}
                  <td class="row-actions" data-title="">
                    <button type="button" onClick={() => setEditing({ mode: "edit", rec: r })} aria-label={`Edit ${r.id}`}>
                      Edit
                    </button>
                    <button type="button" class="danger" onClick={() => setDeleting(r)} aria-label={`Delete ${r.id}`}>
                      Delete
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <nav class="pager" aria-label="Pages">
        <button
          type="button"
          disabled={cursors.length === 0}
          onClick={() => {
            setCursor(cursors[cursors.length - 1] ?? null);
            setCursors(cursors.slice(0, -1));
          }}
        >
          Previous page
        </button>
        <span class="muted page-no" aria-live="polite">
          Page {cursors.length + 1}
        </span>
        <button
          type="button"
          disabled={!list.data?.next_cursor}
          onClick={() => {
            setCursors([...cursors, cursor]);
            setCursor(list.data!.next_cursor);
          }}
        >
          Next page
        </button>
      </nav>
      {editing && (
        <EditDialog
          coll={coll}
          editing={editing}
          onClose={() => setEditing(null)}
          onSaved={(r) => {
            toast(editing.mode === "create" ? `Created ${r.id}` : `Saved ${r.id} (version ${String(r.version)})`);
            setEditing(null);
            list.reload();
          }}
        />
      )}
      <Dialog open={!!deleting} title="Delete this record?" onClose={() => setDeleting(null)}>
        {deleting && (
          <>
            <p>
              Delete <code>{deleting.id}</code> of {coll.name}? Realtime subscribers hear of it; it cannot be undone.
            </p>
            <div class="actions">
              <button
                type="button"
                class="danger"
                onClick={() => {
                  api.records.remove(coll.name, deleting.id, { ifMatch: deleting.version as number }).then(
                    () => {
                      toast(`Deleted ${deleting.id}`);
                      setDeleting(null);
                      list.reload();
                    },
                    (err: unknown) => toast(describe(err), "error"),
                  );
                }}
              >
                Delete
              </button>
              <button type="button" onClick={() => setDeleting(null)}>
                Cancel
              </button>
            </div>
          </>
        )}
      </Dialog>
    </div>
  );
}

/** The columns a phone's record cards leave out, to keep a card short: the edit dialog shows them. */
const narrowHidden = (c: string) => (c === "updated_at" ? "wide-only" : undefined);

function Value({ v }: { v: unknown }) {
  if (v === null || v === undefined) return <span class="muted">—</span>;
  if (typeof v === "object") return <code class="json">{JSON.stringify(v)}</code>;
  const s = String(v);
  return <span title={s.length > 60 ? s : undefined}>{s.length > 60 ? s.slice(0, 60) + "…" : s}</span>;
}

/** The names of a file field's files: a single file or a list, as a record holds them. */
function fileNames(v: unknown): string[] {
  const one = (x: unknown) => (typeof x === "string" ? x : x && typeof x === "object" && "name" in x ? String((x as { name: unknown }).name) : null);
  const all = Array.isArray(v) ? v.map(one) : [one(v)];
  return all.filter((x): x is string => !!x);
}

/** Whether the browser can show a file of this type in the page. */
function previewable(type: string): "image" | "text" | null {
  if (/^image\/(png|jpeg|gif|webp|avif|bmp)$/.test(type)) return "image";
  if (/^text\/|^application\/json/.test(type)) return "text";
  return null;
}

/**
 * A file field's files, each opening a preview (an image, the start of a
 * text, or a download), and an upload. The files need the admin's token, so
 * they come through the SDK's adminFiles (fetch), shown from blob: URLs.
 */
function FileCell({ coll, rec, field, onChanged }: { coll: string; rec: AnyRecord; field: string; onChanged: () => void }) {
  const { files } = useSession();
  const toast = useToast();
  const [open, setOpen] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const upload = (f: File) => {
    setBusy(true);
    files
      .upload(coll, rec.id, field, f)
      .then((after) => {
        const names = fileNames(after[field]);
        toast(`Uploaded ${f.name} as ${names[names.length - 1] ?? "a file"}`);
        onChanged();
      })
      .catch((e: unknown) => toast(describe(e), "error"))
      .finally(() => setBusy(false));
  };
  return (
    <div class="files">
      {fileNames(rec[field]).map((n) => (
        <button key={n} type="button" class="link file-name" onClick={() => setOpen(n)} title={`Preview ${n}`} aria-label={`Preview ${n}`}>
          {n}
        </button>
      ))}
      <label class="upload button">
        {busy ? "Uploading…" : "Upload"}
        <span class="sr-only"> a file to {field} of {rec.id}</span>
        <input type="file" disabled={busy} onChange={(e) => e.currentTarget.files?.[0] && upload(e.currentTarget.files[0])} />
      </label>
      <Dialog open={open !== null} title={open ?? ""} onClose={() => setOpen(null)}>
        {open && (
          <FilePreview
            coll={coll}
            rec={rec}
            field={field}
            name={open}
            onRemoved={() => {
              setOpen(null);
              onChanged();
            }}
          />
        )}
      </Dialog>
    </div>
  );
}

/** One file: its preview, a download and a removal. */
function FilePreview({ coll, rec, field, name, onRemoved }: { coll: string; rec: AnyRecord; field: string; name: string; onRemoved: () => void }) {
  const { files } = useSession();
  const toast = useToast();
  const file = useLoad(async (signal) => {
    const f = await files.download(coll, rec.id, field, name, { signal });
    const kind = previewable(f.type.split(";")[0]!.trim());
    return { ...f, kind, text: kind === "text" ? (await f.blob.slice(0, 20_000).text()) : null };
  }, [coll, rec.id, field, name]);
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    if (!file.data) return;
    const u = URL.createObjectURL(file.data.blob);
    setUrl(u);
    return () => URL.revokeObjectURL(u);
  }, [file.data]);
  if (file.error) return <ErrorBanner error={file.error} />;
  if (!file.data || !url) return <p class="muted">Loading…</p>;
  const f = file.data;
  return (
    <div class="file-preview">
      <p class="muted">
        {f.type || "unknown type"}, {f.blob.size.toLocaleString()} bytes
      </p>
      {f.kind === "image" && <img src={url} alt={`Preview of ${name}`} data-testid="file-preview" />}
      {f.kind === "text" && (
        <pre class="json-block" data-testid="file-preview">
          {f.text}
        </pre>
      )}
      {!f.kind && <p>The browser cannot show this type here: download it.</p>}
      <div class="actions">
        <a class="button primary" href={url} download={name}>
          Download
        </a>
        <button
          type="button"
          class="danger"
          onClick={() => {
            if (!confirm(`Remove ${name} from ${field}?`)) return;
            files.remove(coll, rec.id, field, name).then(
              () => {
                toast(`Removed ${name}`);
                onRemoved();
              },
              (e: unknown) => toast(describe(e), "error"),
            );
          }}
        >
          Remove
        </button>
      </div>
    </div>
  );
}

function EditDialog({ coll, editing, onClose, onSaved }: { coll: SchemaCollection; editing: Editing; onClose: () => void; onSaved: (r: AnyRecord) => void }) {
  const { api } = useSession();
  const start = editing.mode === "edit" ? editable(editing.rec, coll) : Object.fromEntries(coll.fields.filter((f) => !coll.files.some((x) => x.field === f.name)).map((f) => [f.name, null]));
  const [text, setText] = useState(JSON.stringify(start, null, 2));
  const [version, setVersion] = useState(editing.mode === "edit" ? (editing.rec.version as number) : 0);
  const [error, setError] = useState<unknown>();
  const [conflict, setConflict] = useState<AnyRecord | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => setError(undefined), [text]);
  const save = async (ifMatch: number | undefined) => {
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      setError(new Error("Not valid JSON: " + (e as Error).message));
      return;
    }
    setBusy(true);
    try {
      // A create leaves out the fields left null, so they take their defaults.
      const r = editing.mode === "create" ? await api.records.create(coll.name, Object.fromEntries(Object.entries(body).filter(([, v]) => v !== null))) : await api.records.update(coll.name, editing.rec.id, body, { ifMatch });
      onSaved(r);
    } catch (e) {
      if (e instanceof ConflictError && e.current) setConflict(e.current as AnyRecord);
      else setError(e);
    } finally {
      setBusy(false);
    }
  };
  const title = editing.mode === "create" ? `New record in ${coll.name}` : `Edit ${editing.rec.id}`;
  return (
    <Dialog open title={title} onClose={onClose}>
      <form
        class={conflict ? "edit wide" : "edit"}
        onSubmit={(e) => {
          e.preventDefault();
          void save(editing.mode === "edit" ? version : undefined);
        }}
      >
        {conflict ? (
          <div class="conflict" role="alert">
            <p class="banner error">
              Someone changed this record since you opened it: the server has version {String(conflict.version)}, you edited version {version}.
            </p>
            <div class="side-by-side">
              <div>
                <h3>On the server now</h3>
                <pre class="json-block" data-testid="theirs">{JSON.stringify(editable(conflict, coll), null, 2)}</pre>
              </div>
              <div>
                <h3>Yours</h3>
                <pre class="json-block" data-testid="yours">{text}</pre>
              </div>
            </div>
            <div class="actions">
              <button
                type="button"
                onClick={() => {
                  setText(JSON.stringify(editable(conflict, coll), null, 2));
                  setVersion(conflict.version as number);
                  setConflict(null);
                }}
              >
                Use theirs
              </button>
              <button
                type="button"
                class="danger"
                disabled={busy}
                onClick={() => {
                  const v = conflict.version as number;
                  setVersion(v);
                  setConflict(null);
                  void save(v);
                }}
              >
                Overwrite with mine
              </button>
            </div>
          </div>
        ) : (
          <>
            <TextArea label="Record (JSON)" value={text} onValue={setText} rows={Math.min(18, text.split("\n").length + 2)} hint={editing.mode === "edit" ? `Saved only if the record is still at version ${version}.` : "Fields left null take their defaults."} />
            <ErrorBanner error={error} />
            <div class="actions">
              <button type="submit" class="primary" disabled={busy}>
                {editing.mode === "create" ? "Create" : "Save"}
              </button>
              <button type="button" onClick={onClose}>
                Cancel
              </button>
            </div>
          </>
        )}
      </form>
    </Dialog>
  );
}


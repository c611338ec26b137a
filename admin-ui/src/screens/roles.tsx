// Roles and permissions: every role with its source (abe.yaml: read-only;
// the API: editable), its permissions and who holds it.
import type { Role } from "@abe-stack/sdk/admin";
import { useState } from "preact/hooks";
import { link } from "../router";
import { useSession } from "../session";
import { ErrorBanner, useToast } from "../ui/banner";
import { Dialog } from "../ui/dialog";
import { Field, TextArea } from "../ui/field";
import { useLoad } from "../ui/hooks";
import { Pager, Table } from "../ui/table";

const editable = (r: Role) => r.source === "api" || (!r.source && !r.builtin);

/** The Roles screen. */
export function Roles() {
  const { api } = useSession();
  const roles = useLoad((signal) => api.roles.list({ signal }), []);
  const [editing, setEditing] = useState<Role | "new" | null>(null);
  const [holders, setHolders] = useState<string | null>(null);
  return (
    <section>
      <h1>Roles and permissions</h1>
      <p class="muted">Roles from abe.yaml change only with the file; the ones made here can be edited and deleted.</p>
      <div class="actions">
        <button class="primary" onClick={() => setEditing("new")}>
          New role
        </button>
      </div>
      <ErrorBanner error={roles.error} />
      {roles.data && (
        <Table
          stack
          label="Roles"
          rows={roles.data.items}
          rowKey={(r) => r.name}
          columns={[
            { title: "Name", cell: (r) => <strong>{r.name}</strong> },
            {
              title: "Source",
              cell: (r) =>
                editable(r) ? (
                  <span class="badge ok" title="Made through the API: editable here">console</span>
                ) : (
                  <span class="badge" title="Declared in abe.yaml: change the file to change it">abe.yaml</span>
                ),
            },
            {
              title: "Permissions",
              cell: (r) => (r.permissions.length ? r.permissions.map((p) => <code key={p} class="badge">{p}</code>) : <span class="muted">none</span>),
              class: "wrap",
            },
            { title: "Description", cell: (r) => r.description || <span class="muted">—</span>, class: "wrap" },
            {
              title: "",
              cell: (r) => (
                <div class="actions tight">
                  <button onClick={() => setHolders(r.name)} aria-label={`Holders of ${r.name}`}>
                    Holders
                  </button>
                  {editable(r) ? (
                    <button onClick={() => setEditing(r)} aria-label={`Edit ${r.name}`}>
                      Edit
                    </button>
                  ) : (
                    <span class="muted read-only">read-only</span>
                  )}
                </div>
              ),
            },
          ]}
        />
      )}
      <RoleDialog role={editing} onClose={() => setEditing(null)} onSaved={roles.reload} />
      <Dialog open={holders !== null} title={`Holders of ${holders ?? ""}`} onClose={() => setHolders(null)}>
        {holders && <Holders role={holders} />}
      </Dialog>
    </section>
  );
}

function Holders({ role }: { role: string }) {
  const { api } = useSession();
  const [cursor, setCursor] = useState<string | null>(null);
  const page = useLoad((signal) => api.roles.holders(role, cursor, { signal }), [role, cursor]);
  return (
    <>
      <ErrorBanner error={page.error} />
      {page.data && (
        <>
          <Table label="Holders" rows={page.data.items} rowKey={(u) => u.id} empty="Nobody holds this role." columns={[{ title: "Email", cell: (u) => <a {...link(`users/${u.id}`)}>{u.email}</a> }]} />
          <Pager cursor={cursor} next={page.data.next_cursor} onPage={setCursor} />
        </>
      )}
    </>
  );
}

function RoleDialog({ role, onClose, onSaved }: { role: Role | "new" | null; onClose: () => void; onSaved: () => void }) {
  const { api } = useSession();
  const toast = useToast();
  const isNew = role === "new";
  const r = role && role !== "new" ? role : null;
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [perms, setPerms] = useState("");
  const [error, setError] = useState<unknown>();
  const [shown, setShown] = useState<Role | "new" | null>(null);
  if (role !== shown) {
    // A new role to edit: start from its values.
    setShown(role);
    setName(r?.name ?? "");
    setDescription(r?.description ?? "");
    setPerms((r?.permissions ?? []).join("\n"));
    setError(undefined);
  }
  const permissions = perms.split(/[\s,]+/).filter(Boolean);
  return (
    <Dialog open={role !== null} title={isNew ? "New role" : `Edit ${r?.name ?? ""}`} onClose={onClose}>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          try {
            if (isNew) await api.roles.create({ name, description, permissions });
            else if (r) await api.roles.update(r.name, { description, permissions });
            toast(isNew ? `Created ${name}` : `Saved ${r?.name}`);
            onSaved();
            onClose();
          } catch (err) {
            setError(err);
          }
        }}
      >
        {isNew && <Field label="Name" required value={name} onValue={setName} autoFocus />}
        <Field label="Description" value={description} onValue={setDescription} />
        <TextArea label="Permissions" value={perms} onValue={setPerms} rows={5} hint="One a line, like records:admin or users:manage; * grants all." />
        <ErrorBanner error={error} />
        <div class="actions">
          <button class="primary">{isNew ? "Create" : "Save"}</button>
          {r && (
            <button
              type="button"
              class="danger"
              onClick={async () => {
                if (!confirm(`Delete the role ${r.name}? Its holders lose it.`)) return;
                try {
                  await api.roles.remove(r.name);
                  toast(`Deleted ${r.name}`);
                  onSaved();
                  onClose();
                } catch (err) {
                  setError(err);
                }
              }}
            >
              Delete
            </button>
          )}
          <button type="button" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}

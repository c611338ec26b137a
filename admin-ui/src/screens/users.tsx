// Users: search by email, create; one user's page: verify, unlock (with the
// failed sign-ins behind the lock), reset MFA, roles, sessions, log out
// everywhere, and a link to their security events.
import type { AdminUser, Role } from "@abe-stack/sdk/admin";
import { useState } from "preact/hooks";
import { describe } from "../api";
import { link, navigate, useRoute } from "../router";
import { useSession } from "../session";
import { ErrorBanner, useToast } from "../ui/banner";
import { Dialog } from "../ui/dialog";
import { Field, Select } from "../ui/field";
import { useLoad } from "../ui/hooks";
import { Pager, Table, Time } from "../ui/table";

/** The Users screen: the list, or one user at /_/users/{id}. */
export function Users() {
  const route = useRoute();
  const id = route.path.split("/")[1];
  return id ? <UserPage id={decodeURIComponent(id)} /> : <UserList />;
}

function locked(u: AdminUser): boolean {
  return !!u.locked_until && new Date(u.locked_until).getTime() > Date.now();
}

function UserList() {
  const { api } = useSession();
  const route = useRoute();
  const email = route.query.get("email") ?? "";
  const [search, setSearch] = useState(email);
  const [cursor, setCursor] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);
  const users = useLoad((signal) => api.users.list({ email: email || undefined, cursor, limit: 50 }, { signal }), [email, cursor]);
  return (
    <section>
      <h1>Users</h1>
      <form
        class="row"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setCursor(null);
          navigate(search ? `users?email=${encodeURIComponent(search)}` : "users", true);
        }}
      >
        <Field label="Email contains" type="search" value={search} onValue={setSearch} />
        <button>Search</button>
        <button type="button" class="primary" onClick={() => setCreating(true)}>
          New user
        </button>
      </form>
      <ErrorBanner error={users.error} />
      {users.data && (
        <>
          <h2 class="sr-only">Results</h2>
          <Table
            stack
            label="Users"
            rows={users.data.items}
            rowKey={(u) => u.id}
            empty={email ? `No user's email contains “${email}”.` : "No users yet."}
            columns={[
              { title: "Email", cell: (u) => <a {...link(`users/${u.id}`)}>{u.email}</a>, class: "wrap" },
              { title: "Name", cell: (u) => u.name || <span class="muted">—</span> },
              { title: "Roles", cell: (u) => u.roles.map((r) => <span key={r} class="badge">{r}</span>) },
              {
                title: "Status",
                cell: (u) => (
                  <>
                    {u.email_verified ? <span class="badge ok">verified</span> : <span class="badge">unverified</span>}
                    {u.mfa_enabled && <span class="badge ok">MFA</span>}
                    {locked(u) && <span class="badge bad">locked</span>}
                  </>
                ),
              },
              { title: "Created", cell: (u) => <Time at={u.created_at} /> },
            ]}
          />
          <Pager cursor={cursor} next={users.data.next_cursor} onPage={setCursor} />
        </>
      )}
      <CreateUser open={creating} onClose={() => setCreating(false)} />
    </section>
  );
}

function CreateUser({ open, onClose }: { open: boolean; onClose: () => void }) {
  const { api } = useSession();
  const toast = useToast();
  const [email, setEmail] = useState("");
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [verified, setVerified] = useState(false);
  const [error, setError] = useState<unknown>();
  return (
    <Dialog open={open} title="New user" onClose={onClose}>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setError(undefined);
          try {
            const u = await api.users.create({ email, name: name || undefined, password: password || undefined, email_verified: verified });
            toast(`Created ${u.email}`);
            onClose();
            navigate(`users/${u.id}`);
          } catch (err) {
            setError(err);
          }
        }}
      >
        <Field label="Email" type="email" required value={email} onValue={setEmail} autoFocus />
        <Field label="Name" value={name} onValue={setName} />
        <Field label="Password" type="password" autoComplete="new-password" value={password} onValue={setPassword} hint="Leave empty: the account signs in only after a password reset." />
        <label class="check">
          <input type="checkbox" checked={verified} onChange={(e) => setVerified(e.currentTarget.checked)} /> Email verified
        </label>
        <ErrorBanner error={error} />
        <div class="actions">
          <button class="primary">Create</button>
          <button type="button" onClick={onClose}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function UserPage({ id }: { id: string }) {
  const { api, can } = useSession();
  const toast = useToast();
  const user = useLoad((signal) => api.users.get(id, { signal }), [id]);
  const sessions = useLoad((signal) => api.users.sessions(id, { signal }), [id]);
  const roles = useLoad((signal) => (can("roles:manage") ? api.roles.list({ signal }) : Promise.resolve({ items: [] as Role[] })), []);
  const [role, setRole] = useState("");
  const [busy, setBusy] = useState(false);

  async function act(what: string, fn: () => Promise<unknown>, reload: () => void = user.reload) {
    setBusy(true);
    try {
      await fn();
      toast(what);
      reload();
    } catch (err) {
      toast(describe(err), "error");
    } finally {
      setBusy(false);
    }
  }

  if (user.error) return <ErrorBanner error={user.error} />;
  const u = user.data;
  if (!u) return <p class="muted">Loading…</p>;
  const roleList = roles.data?.items ?? [];
  const assignable = roleList.map((r) => r.name).filter((n) => !u.roles.includes(n));
  // Nothing is picked until the admin picks it: a stray Enter assigns no
  // role (admin least of all), and an assigned role leaves the list.
  const picked = assignable.includes(role) ? role : "";
  return (
    <>
      <section>
        <p>
          <a {...link("users")}>← Users</a>
        </p>
        <h1>{u.email}</h1>
        <dl class="facts">
          <dt>Name</dt>
          <dd>{u.name || "—"}</dd>
          <dt>Id</dt>
          <dd>
            <code>{u.id}</code>
          </dd>
          <dt>Email</dt>
          <dd>{u.email_verified ? "verified" : "not verified"}</dd>
          <dt>Two-factor</dt>
          <dd>{u.mfa_enabled ? "on" : "off"}</dd>
          <dt>Created</dt>
          <dd>
            <Time at={u.created_at} />
          </dd>
          <dt>Sign-in</dt>
          <dd>
            {locked(u) ? (
              <span class="badge bad">
                locked until <Time at={u.locked_until} />
              </span>
            ) : (
              "not locked"
            )}{" "}
            {u.failed_attempts > 0 && <span>({u.failed_attempts} failed attempts)</span>}
          </dd>
        </dl>
        <div class="actions">
          {!u.email_verified && (
            <button disabled={busy} onClick={() => act("Email marked verified", () => api.users.verify(id))}>
              Verify email
            </button>
          )}
          {(locked(u) || u.failed_attempts > 0) && (
            <button disabled={busy} onClick={() => act("Unlocked", () => api.users.unlock(id))}>
              Unlock
            </button>
          )}
          {u.mfa_enabled && (
            <button class="danger" disabled={busy} onClick={() => confirm(`Turn off two-factor authentication for ${u.email}?`) && act("Two-factor reset", () => api.users.resetMfa(id))}>
              Reset MFA
            </button>
          )}
          <button class="danger" disabled={busy} onClick={() => confirm(`End every session of ${u.email}?`) && act("Logged out everywhere", () => api.users.logoutAll(id), sessions.reload)}>
            Log out everywhere
          </button>
          {can("security:read") && <a class="button" {...link(`events?user_id=${encodeURIComponent(id)}`)}>Security events</a>}
        </div>
        {u.recent_failures?.length > 0 && (
          <>
            <h2>Failed sign-ins that count toward the lock</h2>
            <Table
              stack
              label="Failed sign-ins"
              rows={u.recent_failures}
              rowKey={(e) => e.id}
              columns={[
                { title: "At", cell: (e) => <Time at={e.at} /> },
                { title: "IP", cell: (e) => e.ip },
                { title: "User agent", cell: (e) => e.user_agent, class: "wrap" },
              ]}
            />
          </>
        )}
      </section>
      <section>
        <h2>Roles</h2>
        <p>
          {u.roles.length === 0 && <span class="muted">No roles.</span>}
          {u.roles.map((r) => (
            <span key={r} class="badge">
              {r}{" "}
              <button type="button" class="ghost tiny" aria-label={`Remove role ${r}`} disabled={busy} onClick={() => act(`Removed ${r}`, () => api.users.removeRole(id, r))}>
                ×
              </button>
            </span>
          ))}
        </p>
        <ErrorBanner error={roles.error} />
        {assignable.length > 0 && (
          <form
            class="row"
            onSubmit={(e) => {
              e.preventDefault();
              if (picked) act(`Assigned ${picked}`, () => api.users.assignRole(id, picked));
            }}
          >
            <Select label="Role" value={picked} onValue={setRole} options={[["", "Choose a role…"], ...assignable]} />
            <button disabled={busy || !picked}>Assign role</button>
          </form>
        )}
      </section>
      <section>
        <h2>Sessions</h2>
        <ErrorBanner error={sessions.error} />
        {sessions.data && (
          <Table
            stack
            label="Sessions"
            rows={sessions.data.items}
            rowKey={(s) => s.id}
            empty="No live sessions."
            columns={[
              { title: "Started", cell: (s) => <Time at={s.created_at} /> },
              { title: "Last used", cell: (s) => <Time at={s.last_used_at} /> },
              { title: "Expires", cell: (s) => <Time at={s.expires_at} /> },
              { title: "IP", cell: (s) => s.ip },
              { title: "User agent", cell: (s) => s.user_agent, class: "wrap" },
              { title: "MFA", cell: (s) => (s.mfa ? "yes" : "no") },
              {
                title: "",
                cell: (s) => (
                  <button
                    class="danger"
                    disabled={busy}
                    aria-label={`Revoke the session of ${s.user_agent || "an unknown agent"} from ${s.ip || "an unknown address"}`}
                    onClick={() => act("Session revoked", () => api.users.revokeSession(id, s.id), sessions.reload)}
                  >
                    Revoke
                  </button>
                ),
              },
            ]}
          />
        )}
      </section>
    </>
  );
}

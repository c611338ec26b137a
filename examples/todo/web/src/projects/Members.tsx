// The people of a project: its owner and members (names from `expand`,
// which shows an account's id and name only, never its email), the
// owner's invitations by email, and removing members (the owner only;
// anyone else is told so in plain words).
import { listRemove, type AuthUser } from "@abe-stack/sdk";
import { useWrites } from "@abe-stack/sdk/react";
import { useEffect, useState, type FormEvent } from "react";
import { abe } from "../abe.js";
import type { ProjectsRecord } from "../abe-types.js";
import { cancel, invite, normalEmail, useInvites } from "./invites.js";

function useNames(project: ProjectsRecord): Map<string, string> {
  const [names, setNames] = useState(new Map<string, string>());
  const key = [project.owner, ...(project.members ?? [])].join(",");
  useEffect(() => {
    let alive = true;
    abe
      .records("projects")
      .get(project.id, { expand: ["owner", "members"] })
      .then((p) => {
        if (!alive) return;
        const m = new Map<string, string>();
        for (const u of [p.expand?.owner, ...(p.expand?.members ?? [])]) if (u) m.set(u.id, u.name);
        setNames(m);
      })
      .catch(() => {}); // offline: the names come when it is back
    return () => {
      alive = false;
    };
  }, [project.id, key]);
  return names;
}

export function Members({ project, user }: { project: ProjectsRecord; user: AuthUser }) {
  const writes = useWrites();
  const names = useNames(project);
  const owner = project.owner === user.id;
  const invites = useInvites().filter((i) => i.project === project.id);
  const [email, setEmail] = useState("");
  const label = (id: string) => (id === user.id ? "You" : names.get(id) || "Someone");

  function send(e: FormEvent) {
    e.preventDefault();
    const m = normalEmail(email);
    if (!m) return;
    if (!invites.some((i) => normalEmail(i.email) === m)) invite(writes, project, m);
    setEmail("");
  }

  return (
    <aside className="members" aria-label="People">
      <h2>People</h2>
      <ul className="people">
        <li>
          <span className="avatar" aria-hidden="true">{label(project.owner).slice(0, 1)}</span>
          <span className="grow">{label(project.owner)}</span>
          <span className="badge">Owner</span>
        </li>
        {(project.members ?? []).map((m) => (
          <li key={m}>
            <span className="avatar" aria-hidden="true">{label(m).slice(0, 1)}</span>
            <span className="grow">{label(m)}</span>
            {m !== user.id && (
              <button className="link danger" onClick={() => writes.applyOps("projects", project.id, [listRemove("members", m)])} aria-label={`Remove ${label(m)}`}>
                Remove
              </button>
            )}
          </li>
        ))}
      </ul>
      {owner ? (
        <>
          <form className="add" onSubmit={send}>
            <input type="email" aria-label="Invite by email" placeholder="Invite by email" value={email} onChange={(e) => setEmail(e.target.value)} required />
            <button>Invite</button>
          </form>
          {invites.length > 0 && (
            <ul className="people invited" aria-label="Invited">
              {invites.map((i) => (
                <li key={i.id}>
                  <span className="grow muted">{i.email}</span>
                  <span className="muted small">invited</span>
                  <button className="link" onClick={() => cancel(writes, i)} aria-label={`Cancel the invitation of ${i.email}`}>
                    Cancel
                  </button>
                </li>
              ))}
            </ul>
          )}
        </>
      ) : (
        <p className="muted small">The owner invites people and deletes todos. Everyone here can add, edit, complete and reorder.</p>
      )}
    </aside>
  );
}

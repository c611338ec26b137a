// The user's projects (owned or shared), a form to start one, and the
// invitations waiting for this user.
import type { AuthUser } from "@abe-stack/sdk";
import { useLive, useWrites } from "@abe-stack/sdk/react";
import { useEffect, useState, type FormEvent } from "react";
import { abe, say } from "../abe.js";
import { go } from "../base/route.js";
import { accept, decline, normalEmail, useInvites } from "./invites.js";

export function ProjectList({ user }: { user: AuthUser }) {
  const { records: projects, source } = useLive("projects", { sort: ["name"] });
  const invites = useInvites().filter((i) => normalEmail(i.email) === normalEmail(user.email));
  // Joining changed what this user may list, which realtime does not
  // announce (the project was hidden before): ask again.
  useEffect(() => void abe.live("projects", { sort: ["name"] }).refetch(), [invites.length]);
  const writes = useWrites();
  const [name, setName] = useState("");
  const [error, setError] = useState("");

  function create(e: FormEvent) {
    e.preventDefault();
    const n = name.trim();
    if (!n) return;
    writes.create("projects", { name: n, owner: user.id, members: [], order: [] });
    setName("");
  }

  return (
    <section className="projects">
      <h1>Projects</h1>
      {invites.length > 0 && (
        <div className="invitations" aria-label="Invitations">
          {invites.map((inv) => (
            <div className="invitation" key={inv.id}>
              <span>
                You are invited to <strong>{inv.project_name || "a project"}</strong>.
              </span>
              <span className="actions">
                <button className="primary" onClick={() => accept(inv, user).catch((e: unknown) => setError(say(e)))}>Accept</button>
                <button onClick={() => decline(inv).catch((e: unknown) => setError(say(e)))}>Decline</button>
              </span>
            </div>
          ))}
          {error && <p className="error" role="alert">{error}</p>}
        </div>
      )}
      <form className="add" onSubmit={create}>
        <input aria-label="New project name" placeholder="New project" value={name} onChange={(e) => setName(e.target.value)} maxLength={200} />
        <button className="primary" disabled={!name.trim()}>Create</button>
      </form>
      {projects.length === 0 ? (
        <p className="empty">{source === "cache" ? "Loading…" : "No projects yet. Create one, or ask someone to invite you."}</p>
      ) : (
        <ul className="list">
          {projects.map((p) => (
            <li key={p.id}>
              <a
                className="row project"
                href={`/p/${p.id}`}
                onClick={(e) => {
                  e.preventDefault();
                  go(`/p/${p.id}`);
                }}
              >
                <span className="grow">{p.name}</span>
                <span className="badge">{p.owner === user.id ? "Owner" : "Member"}</span>
                <span className="muted small">{(p.members ?? []).length + 1} people</span>
              </a>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

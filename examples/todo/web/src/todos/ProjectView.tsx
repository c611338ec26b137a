// One project: its todos in the project's order (a list field moved with
// listInsert), a form to add one, and the people in it.
import { listInsert, type AuthUser } from "@abe-stack/sdk";
import { useLive, useLiveRecord, useWrites } from "@abe-stack/sdk/react";
import { useMemo, useState, type FormEvent } from "react";
import type { TodosRecord } from "../abe-types.js";
import { go } from "../base/route.js";
import { Members } from "../projects/Members.js";
import { TodoItem } from "./TodoItem.js";

/** The todos in the project's order; any it does not list yet come last, oldest first. */
export function ordered(todos: TodosRecord[], order: unknown): TodosRecord[] {
  const ids = Array.isArray(order) ? (order as string[]) : [];
  const at = new Map(ids.map((id, i) => [id, i]));
  return [...todos].sort((a, b) => (at.get(a.id) ?? Infinity) - (at.get(b.id) ?? Infinity) || a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
}

export function ProjectView({ id, user }: { id: string; user: AuthUser }) {
  const { record: project, source } = useLiveRecord("projects", id);
  const { records } = useLive("todos", { filter: `project == '${id}'`, match: (t) => t.project === id });
  const writes = useWrites();
  const [title, setTitle] = useState("");
  const todos = useMemo(() => ordered(records, project?.order), [records, project?.order]);

  if (!project) {
    return (
      <section>
        <button className="link" onClick={() => go("/")}>← Projects</button>
        <p className="empty">{source === "cache" ? "Loading…" : "This project does not exist, or you are not a member of it."}</p>
      </section>
    );
  }
  const owner = project.owner === user.id;

  function add(e: FormEvent) {
    e.preventDefault();
    const t = title.trim();
    if (!t) return;
    const tid = crypto.randomUUID();
    // The todo and its place in the order: one step for undo.
    writes.apply([
      { collection: "todos", id: tid, ops: [], create: { project: id, title: t, done: false } },
      { collection: "projects", id, ops: [listInsert("order", tid)] },
    ]);
    setTitle("");
  }

  function move(i: number, by: -1 | 1) {
    const t = todos[i];
    const other = todos[i + by];
    if (!t || !other) return;
    writes.applyOps("projects", id, [listInsert("order", t.id, by < 0 ? { before: other.id } : { after: other.id })]);
  }

  const open = todos.filter((t) => !t.done).length;
  return (
    <div className="project-page">
      <section className="todos">
        <button className="link back" onClick={() => go("/")}>← Projects</button>
        <h1>{project.name}</h1>
        <p className="muted small">{todos.length === 0 ? "Nothing to do yet." : `${open} of ${todos.length} open`}</p>
        <form className="add" onSubmit={add}>
          <input aria-label="New todo" placeholder="Add a todo" value={title} onChange={(e) => setTitle(e.target.value)} maxLength={500} />
          <button className="primary" disabled={!title.trim()}>Add</button>
        </form>
        <ul className="list" aria-label="Todos">
          {todos.map((t, i) => (
            <TodoItem key={t.id} todo={t} owner={owner} first={i === 0} last={i === todos.length - 1} onMove={(by) => move(i, by)} />
          ))}
        </ul>
      </section>
      <Members project={project} user={user} />
    </div>
  );
}

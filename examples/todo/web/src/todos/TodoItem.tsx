// One todo: complete it, edit its title in place (Enter saves, Escape
// cancels), move it, delete it; the owner also sees and edits its note.
// Edits are conditional on the version shown, so an edit made offline
// that meets someone else's opens the merge view instead of overwriting.
import { useWrites } from "@abe-stack/sdk/react";
import { useState, type KeyboardEvent } from "react";
import type { TodosRecord } from "../abe-types.js";

interface Props {
  todo: TodosRecord;
  owner: boolean;
  first: boolean;
  last: boolean;
  onMove(by: -1 | 1): void;
}

export function TodoItem({ todo, owner, first, last, onMove }: Props) {
  const writes = useWrites();
  const [editing, setEditing] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);

  function save() {
    const t = editing?.trim();
    setEditing(null);
    if (t && t !== todo.title) writes.update("todos", todo.id, { title: t }, { ifMatch: true });
  }
  function keys(e: KeyboardEvent<HTMLInputElement>) {
    if (e.key === "Enter") e.currentTarget.blur();
    if (e.key === "Escape") {
      setEditing(null);
    }
  }
  function saveNote() {
    const n = note?.trim() ?? "";
    setNote(null);
    if (n !== (todo.note ?? "")) writes.update("todos", todo.id, { note: n || null }, { ifMatch: true });
  }

  return (
    <li className={`row todo${todo.done ? " done" : ""}`} data-id={todo.id}>
      <input
        type="checkbox"
        checked={todo.done}
        aria-label={`Done: ${todo.title}`}
        onChange={(e) => writes.update("todos", todo.id, { done: e.target.checked }, { ifMatch: true })}
      />
      <div className="grow">
        {editing !== null ? (
          <input
            className="inline"
            aria-label="Title"
            value={editing}
            autoFocus
            maxLength={500}
            onChange={(e) => setEditing(e.target.value)}
            onBlur={save}
            onKeyDown={keys}
          />
        ) : (
          <button className="title" onClick={() => setEditing(todo.title)} title="Click to edit">
            {todo.title}
          </button>
        )}
        {owner && note !== null && (
          <input
            className="inline note"
            aria-label="Note"
            value={note}
            autoFocus
            placeholder="A note only you can see"
            onChange={(e) => setNote(e.target.value)}
            onBlur={saveNote}
            onKeyDown={(e) => (e.key === "Enter" ? e.currentTarget.blur() : e.key === "Escape" ? setNote(null) : undefined)}
          />
        )}
        {owner && note === null && todo.note && (
          <button className="note-text" onClick={() => setNote(todo.note ?? "")} title="Only you see notes">
            {todo.note}
          </button>
        )}
      </div>
      <span className="actions">
        {owner && (
          <button onClick={() => setNote(todo.note ?? "")} aria-label={`${todo.note ? "Edit the note" : "Add a note"}: ${todo.title}`} title="Note (only you see notes)">✎</button>
        )}
        <button onClick={() => onMove(-1)} disabled={first} aria-label={`Move up: ${todo.title}`} title="Move up">↑</button>
        <button onClick={() => onMove(1)} disabled={last} aria-label={`Move down: ${todo.title}`} title="Move down">↓</button>
        <button className="danger" onClick={() => writes.delete("todos", todo.id)} aria-label={`Delete: ${todo.title}`} title="Delete">×</button>
      </span>
    </li>
  );
}

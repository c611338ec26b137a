// The merge view: a todo this window changed offline was changed by
// someone else meanwhile. For each field both changed: what it was, what
// you wrote and what they wrote; keep one or write a third. Saving writes
// the choice conditional on their version: if it moved again, the view
// comes back with the newer values.
import { useWrites } from "@abe-stack/sdk/react";
import { useEffect, useState } from "react";
import { conflicts, type Conflict } from "../abe.js";
import { useStore } from "../base/store.js";

type Pick = "mine" | "theirs" | "edit";
const LABELS: Record<string, string> = { title: "Title", done: "Done", note: "Note", tags: "Tags" };

function show(v: unknown): string {
  if (v === undefined || v === null || v === "") return "(empty)";
  if (typeof v === "boolean") return v ? "done" : "not done";
  return typeof v === "string" ? v : JSON.stringify(v);
}

export function MergeView() {
  const list = useStore(conflicts);
  const c = list[0];
  return c ? <Merge key={c.key} c={c} /> : null;
}

function Merge({ c }: { c: Conflict }) {
  const writes = useWrites();
  const [picks, setPicks] = useState<Record<string, Pick>>(() => Object.fromEntries(c.fields.map((f) => [f, "mine"])));
  const [edits, setEdits] = useState<Record<string, string>>(() => Object.fromEntries(c.fields.map((f) => [f, show(c.mine[f]) === "(empty)" ? "" : String(c.mine[f])])));
  useEffect(() => {
    const esc = (e: KeyboardEvent) => e.key === "Escape" && keepTheirs();
    window.addEventListener("keydown", esc);
    return () => window.removeEventListener("keydown", esc);
  });

  function close() {
    conflicts.set(conflicts.get().filter((x) => x !== c));
  }
  function keepTheirs() {
    if (Object.keys(c.changes).length) writes.update("todos", c.id, c.changes, { ifMatch: c.theirs.version });
    close();
  }
  function save() {
    const out: Record<string, unknown> = { ...c.changes };
    for (const f of c.fields) {
      const p = picks[f];
      if (p === "mine") out[f] = c.mine[f] ?? null;
      else if (p === "edit") out[f] = typeof c.theirs[f] === "boolean" ? c.mine[f] : edits[f] ?? "";
    }
    // Only what differs from theirs is written; the version makes it conditional.
    const changed = Object.fromEntries(Object.entries(out).filter(([k, v]) => JSON.stringify(v) !== JSON.stringify(c.theirs[k as keyof typeof c.theirs] ?? null)));
    if (Object.keys(changed).length) writes.update("todos", c.id, changed, { ifMatch: c.theirs.version });
    close();
  }

  return (
    <div className="overlay">
      <div className="dialog merge" role="dialog" aria-modal="true" aria-labelledby="merge-title">
        <h2 id="merge-title">Someone else changed this todo while you were offline</h2>
        <p className="muted">Choose what to keep for each field you both changed. Nothing is saved until you choose.</p>
        {Object.keys(c.changes).length > 0 && (
          <p className="muted small kept">
            Your other changes ({Object.keys(c.changes).map((f) => LABELS[f] ?? f).join(", ")}) are kept either way.
          </p>
        )}
        {c.fields.map((f) => {
          const text = typeof c.theirs[f] !== "boolean";
          return (
            <fieldset key={f} className="field" aria-label={LABELS[f] ?? f}>
              <legend>{LABELS[f] ?? f}</legend>
              <div className="was">
                <span className="muted small">Before</span> <span>{show(c.base[f])}</span>
              </div>
              <label className={`choice${picks[f] === "mine" ? " on" : ""}`}>
                <input type="radio" name={f} checked={picks[f] === "mine"} onChange={() => setPicks({ ...picks, [f]: "mine" })} />
                <span className="muted small">Yours</span>
                <span className="value">{show(c.mine[f])}</span>
              </label>
              <label className={`choice${picks[f] === "theirs" ? " on" : ""}`}>
                <input type="radio" name={f} checked={picks[f] === "theirs"} onChange={() => setPicks({ ...picks, [f]: "theirs" })} />
                <span className="muted small">Theirs</span>
                <span className="value">{show(c.theirs[f])}</span>
              </label>
              {text && (
                <label className={`choice${picks[f] === "edit" ? " on" : ""}`}>
                  <input type="radio" name={f} checked={picks[f] === "edit"} onChange={() => setPicks({ ...picks, [f]: "edit" })} />
                  <span className="muted small">Write</span>
                  <input
                    className="value"
                    aria-label={`${LABELS[f] ?? f}: your own`}
                    value={edits[f] ?? ""}
                    onFocus={() => setPicks({ ...picks, [f]: "edit" })}
                    onChange={(e) => setEdits({ ...edits, [f]: e.target.value })}
                  />
                </label>
              )}
            </fieldset>
          );
        })}
        <div className="buttons">
          <button onClick={keepTheirs}>Keep theirs</button>
          <button className="primary" onClick={save}>Save</button>
        </div>
      </div>
    </div>
  );
}

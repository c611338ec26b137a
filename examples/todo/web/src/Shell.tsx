// What a signed-in user sees around every page: the header with the
// sync status, undo and redo (Ctrl+Z, Ctrl+Shift+Z), the last refusal in
// plain words, and the merge view when an offline edit met another's.
import type { AuthUser } from "@abe-stack/sdk";
import { useUndo } from "@abe-stack/sdk/react";
import { useEffect } from "react";
import { abe, notice } from "./abe.js";
import { go, useRoute } from "./base/route.js";
import { useStore } from "./base/store.js";
import { SyncStatus } from "./base/SyncStatus.js";
import { ProjectList } from "./projects/ProjectList.js";
import { MergeView } from "./todos/MergeView.js";
import { ProjectView } from "./todos/ProjectView.js";

export function Shell({ user }: { user: AuthUser }) {
  const route = useRoute();
  const { undo, redo, canUndo, canRedo } = useUndo();
  const last = useStore(notice);
  useEffect(() => {
    if (!last) return;
    const t = setTimeout(() => notice.get() === last && notice.set(null), 8000);
    return () => clearTimeout(t);
  }, [last]);

  return (
    <div className="app">
      <header className="top">
        <button className="brand link" onClick={() => go("/")}>Todo</button>
        <SyncStatus />
        <div className="spacer" />
        <div className="history" role="group" aria-label="History">
          <button onClick={() => void undo()} disabled={!canUndo} title="Undo (Ctrl+Z)" aria-label="Undo">↶</button>
          <button onClick={() => void redo()} disabled={!canRedo} title="Redo (Ctrl+Shift+Z)" aria-label="Redo">↷</button>
        </div>
        <span className="who" title={user.email}>{user.name || user.email}</span>
        <button className="link" onClick={() => void abe.auth.logout()}>Log out</button>
      </header>
      {last && (
        <div className="notice" role="alert">
          <span>{last.text}</span>
          <button className="link" onClick={() => notice.set(null)} aria-label="Dismiss">×</button>
        </div>
      )}
      <main className="page">{route.page === "project" ? <ProjectView id={route.id} user={user} /> : <ProjectList user={user} />}</main>
      <MergeView />
    </div>
  );
}

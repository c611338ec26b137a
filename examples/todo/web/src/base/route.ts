// The app's two places: the projects (/) and one project (/p/<id>).
// abe's hosting answers /p/<id> with index.html (spa: true in abe.yaml).
import { useSyncExternalStore } from "react";

export type Route = { page: "projects" } | { page: "project"; id: string };

function parse(path: string): Route {
  const m = /^\/p\/([0-9a-f-]{36})$/.exec(path);
  return m ? { page: "project", id: m[1]! } : { page: "projects" };
}

const listeners = new Set<() => void>();
window.addEventListener("popstate", () => listeners.forEach((l) => l()));

export function go(path: string): void {
  if (location.pathname === path) return;
  history.pushState(null, "", path);
  listeners.forEach((l) => l());
}

export function useRoute(): Route {
  const path = useSyncExternalStore(
    (l) => (listeners.add(l), () => listeners.delete(l)),
    () => location.pathname,
  );
  return parse(path);
}

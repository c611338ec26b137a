// The app's places: the posts (/), one post (/posts/<id>), the editor
// (/new, /posts/<id>/edit) and two-factor setup (/security). abe's hosting
// answers them all with index.html (spa: true in abe.yaml).
import { useSyncExternalStore } from "react";

export type Route =
  | { page: "posts" }
  | { page: "post"; id: string }
  | { page: "edit"; id: string | null }
  | { page: "security" };

function parse(path: string): Route {
  const m = /^\/posts\/([0-9a-f-]{36})(\/edit)?$/.exec(path);
  if (m) return m[2] ? { page: "edit", id: m[1]! } : { page: "post", id: m[1]! };
  if (path === "/new") return { page: "edit", id: null };
  if (path === "/security") return { page: "security" };
  return { page: "posts" };
}

const listeners = new Set<() => void>();
window.addEventListener("popstate", () => listeners.forEach((l) => l()));

export function go(path: string): void {
  if (location.pathname !== path) history.pushState(null, "", path);
  window.scrollTo(0, 0);
  listeners.forEach((l) => l());
}

export function useRoute(): Route {
  const path = useSyncExternalStore(
    (l) => (listeners.add(l), () => listeners.delete(l)),
    () => location.pathname,
  );
  return parse(path);
}

/** A link that navigates in the page. */
export function Link(props: { to: string; className?: string; children: React.ReactNode }) {
  return (
    <a
      href={props.to}
      className={props.className}
      onClick={(e) => {
        if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        go(props.to);
      }}
    >
      {props.children}
    </a>
  );
}

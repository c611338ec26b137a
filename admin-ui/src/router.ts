// Path routes under /_/ (abe answers index.html for any of them): the
// History API, and links that do not reload the page.
import { useEffect, useState } from "preact/hooks";

/** Where the console is mounted. */
export const BASE = "/_/";

/** The current route: the path below /_/ ("users/0193…") and the query. */
export interface Route {
  path: string;
  query: URLSearchParams;
}

function current(): Route {
  const p = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : "";
  return { path: p.replace(/\/+$/, ""), query: new URLSearchParams(location.search) };
}

/** Goes to a route below /_/ (like "users?email=ann"), adding a history entry. */
export function navigate(to: string, replace = false) {
  const url = BASE + to.replace(/^\/+/, "");
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  dispatchEvent(new PopStateEvent("popstate"));
}

/** The current route, updated on navigation and on Back/Forward. */
export function useRoute(): Route {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const on = () => setRoute(current());
    addEventListener("popstate", on);
    return () => removeEventListener("popstate", on);
  }, []);
  return route;
}

/** Props for an <a> that navigates in the page: a real href, so a middle click opens a tab. */
export function link(to: string) {
  return {
    href: BASE + to.replace(/^\/+/, ""),
    onClick: (e: MouseEvent) => {
      if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      navigate(to);
    },
  };
}

// The shell: sign-in until an admin is in, then the navigation (a left
// column at desktop width, a menu button on a phone) and the screen of the
// route. Each screen is its own module under screens/.
import type { ConsoleAccess } from "@abe-stack/sdk/admin";
import type { ComponentType } from "preact";
import { useMemo, useState } from "preact/hooks";
import { makeClient } from "./api";
import { link, useRoute } from "./router";
import { Collections } from "./screens/collections";
import { Events } from "./screens/events";
import { Inspector } from "./screens/inspector";
import { Jobs } from "./screens/jobs";
import { Overview } from "./screens/overview";
import { Playground } from "./screens/playground";
import { Roles } from "./screens/roles";
import { SignIn } from "./screens/signin";
import { Users } from "./screens/users";
import { canFrom, SessionContext, type Ctx } from "./session";
import { Toasts } from "./ui/banner";

/** One entry of the navigation: its path below /_/, its name, the permission it needs. */
interface Screen {
  path: string;
  title: string;
  perm: string;
  view: ComponentType;
}

const screens: Screen[] = [
  { path: "", title: "Overview", perm: "admin:console", view: Overview },
  { path: "collections", title: "Collections", perm: "admin:console", view: Collections },
  { path: "playground", title: "Rules playground", perm: "rules:explain", view: Playground },
  { path: "realtime", title: "Realtime inspector", perm: "rules:explain", view: Inspector },
  { path: "users", title: "Users", perm: "users:manage", view: Users },
  { path: "roles", title: "Roles", perm: "roles:manage", view: Roles },
  { path: "events", title: "Security events", perm: "security:read", view: Events },
  { path: "jobs", title: "Jobs", perm: "jobs:manage", view: Jobs },
];

/** The whole console. */
export function App() {
  const { client, api, files } = useMemo(() => makeClient(), []);
  const [access, setAccess] = useState<ConsoleAccess | null>(null);
  const ctx = useMemo<Ctx | null>(
    () =>
      access && {
        client,
        api,
        files,
        access,
        can: canFrom(access.permissions),
        signOut: () => {
          client.auth.logout().catch(() => {});
          setAccess(null);
        },
      },
    [access, client, api, files],
  );
  return <Toasts>{ctx ? <SessionContext.Provider value={ctx}><Shell ctx={ctx} /></SessionContext.Provider> : <SignIn client={client} api={api} onSignedIn={setAccess} />}</Toasts>;
}

function Shell({ ctx }: { ctx: Ctx }) {
  const route = useRoute();
  const [menu, setMenu] = useState(false);
  const allowed = screens.filter((s) => ctx.can(s.perm));
  const top = route.path.split("/")[0] ?? "";
  const screen = screens.find((s) => s.path === top);
  const View = screen?.view;
  return (
    <div class="shell">
      <header class="topbar">
        <button type="button" class="menu-button ghost" aria-expanded={menu} aria-controls="nav" onClick={() => setMenu(!menu)}>
          Menu
        </button>
        <a class="brand" {...link("")}>
          abe console
        </a>
        <span class="who" title={ctx.access.user.email}>
          {ctx.access.user.email}
        </span>
        <button type="button" class="ghost" onClick={ctx.signOut}>
          Sign out
        </button>
      </header>
      <nav id="nav" class={menu ? "nav open" : "nav"} aria-label="Screens" onClick={() => setMenu(false)}>
        <ul>
          {allowed.map((s) => (
            <li key={s.path}>
              <a {...link(s.path)} aria-current={s.path === top ? "page" : undefined}>
                {s.title}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main class="content" id="main">
        {!screen || !View ? (
          <p class="banner info">No such screen. Pick one from the menu.</p>
        ) : !ctx.can(screen.perm) ? (
          <p class="banner error">This account lacks the permission {screen.perm} that this screen needs.</p>
        ) : (
          <View />
        )}
      </main>
    </div>
  );
}

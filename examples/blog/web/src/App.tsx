// The app: the sign-in screen until there is a session, then the shell
// around the posts, one post, the editor or two-factor setup.
import { abe } from "./abe.js";
import { SignIn } from "./auth/SignIn.js";
import { Security } from "./auth/Security.js";
import { Link, go, useRoute } from "./base/route.js";
import { useSession, who, type Who } from "./base/session.js";
import { RolePanel } from "./RolePanel.js";
import { Editor } from "./posts/Editor.js";
import { PostList } from "./posts/PostList.js";
import { PostView } from "./posts/PostView.js";

export function App() {
  const session = useSession();
  if (session === undefined) return null;
  if (session === null) return <SignIn />;
  const w = who(session);
  // Keyed by account and session kind: a new sign-in starts every live query afresh.
  return <Shell key={`${w.user.id}:${w.mfa}`} w={w} />;
}

function Shell({ w }: { w: Who }) {
  const route = useRoute();
  return (
    <>
      <header className="top">
        <Link to="/" className="brand">
          abe blog
        </Link>
        <span className="me">
          {w.user.name || w.user.email}
          {w.user.roles.map((r) => (
            <span key={r} className={`role ${w.roles.includes(r) ? "" : "off"}`} title={w.roles.includes(r) ? "" : "needs a two-factor sign-in"}>
              {r}
            </span>
          ))}
        </span>
        <nav>
          <Link to="/new" className="button primary">
            Write a post
          </Link>
          <Link to="/security" className="button">
            Security
          </Link>
          <button onClick={() => void abe.auth.logout().then(() => go("/"))}>Sign out</button>
        </nav>
      </header>
      {w.waiting.length > 0 && route.page !== "security" && (
        <p className="banner" role="note">
          Your {w.waiting.join(" and ")} role counts only after a two-factor sign-in.{" "}
          <Link to="/security">{w.user.mfa_enabled ? "Sign in again with a code" : "Set up two-factor authentication"}</Link>
        </p>
      )}
      <main>
        {route.page === "posts" && (
          <>
            <RolePanel w={w} />
            <PostList w={w} />
          </>
        )}
        {route.page === "post" && <PostView w={w} id={route.id} />}
        {route.page === "edit" && <Editor w={w} id={route.id} />}
        {route.page === "security" && <Security w={w} />}
      </main>
    </>
  );
}

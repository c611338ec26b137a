// The app: the sign-in screen until there is a session, then the shell
// (status, undo, the merge view) around the projects or one project.
import type { AuthUser } from "@abe-stack/sdk";
import { useEffect, useState } from "react";
import { abe } from "./abe.js";
import { AuthScreen } from "./auth/AuthScreen.js";
import { Shell } from "./Shell.js";

export function App() {
  const [user, setUser] = useState<AuthUser | null | undefined>(undefined);
  useEffect(() => {
    let alive = true;
    void abe.auth.getSession().then((s) => alive && setUser(s?.user ?? null));
    const off = abe.onAuthChange((s) => setUser(s?.user ?? null));
    return () => {
      alive = false;
      off();
    };
  }, []);
  if (user === undefined) return null;
  if (user === null) return <AuthScreen />;
  return <Shell user={user} />;
}

// Who is signed in, and what their roles let them do in this session.
// The server decides every write by abe.yaml's rules; this only chooses
// what the screens offer and how they explain a refusal.
import type { AuthUser, Session } from "@abe-stack/sdk";
import { useEffect, useState } from "react";
import { abe } from "../abe.js";

/** abe.yaml's auth.require_mfa_for_roles: these count only after a two-factor sign-in. */
export const MFA_ROLES = ["admin", "moderator"];

export interface Who {
  user: AuthUser;
  /** The session passed a second factor (the access token's amr says otp). */
  mfa: boolean;
  /** The roles the server counts in this session. */
  roles: string[];
  /** Roles the account has that wait for a two-factor sign-in. */
  waiting: string[];
  /** Sees every draft, publishes, hides comments (blog:moderate, or admin's *). */
  moderates: boolean;
  /** Reads authors' emails. */
  admin: boolean;
}

function amr(token: string): string[] {
  try {
    const part = token.split(".")[1] ?? "";
    const claims = JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/"))) as { amr?: unknown };
    return Array.isArray(claims.amr) ? claims.amr.filter((x): x is string => typeof x === "string") : [];
  } catch {
    return [];
  }
}

export function who(s: Session): Who {
  const mfa = amr(s.accessToken).includes("otp");
  const roles = s.user.roles.filter((r) => mfa || !MFA_ROLES.includes(r));
  const waiting = s.user.roles.filter((r) => !roles.includes(r));
  return { user: s.user, mfa, roles, waiting, moderates: roles.includes("moderator") || roles.includes("admin"), admin: roles.includes("admin") };
}

/** The session: undefined while it loads, null when signed out. */
export function useSession(): Session | null | undefined {
  const [s, setS] = useState<Session | null | undefined>(undefined);
  useEffect(() => {
    let alive = true;
    void abe.auth.getSession().then((x) => alive && setS(x));
    const off = abe.onAuthChange((x) => setS(x));
    return () => {
      alive = false;
      off();
    };
  }, []);
  return s;
}

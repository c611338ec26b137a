// The signed-in admin, for every screen: the client, the admin API and what
// the admin may do (GET /api/admin/console).
import type { AbeClient } from "@abe-stack/sdk";
import type { AdminApi, AdminFiles, ConsoleAccess } from "@abe-stack/sdk/admin";
import { createContext } from "preact";
import { useContext } from "preact/hooks";

/** What a screen needs. */
export interface Ctx {
  client: AbeClient;
  api: AdminApi;
  /** The file fields of the admin records API. */
  files: AdminFiles;
  access: ConsoleAccess;
  /** Whether the admin holds a permission (or `*`). */
  can: (perm: string) => boolean;
  signOut: () => void;
}

export const SessionContext = createContext<Ctx | null>(null);

/** The session of a signed-in screen. */
export function useSession(): Ctx {
  const s = useContext(SessionContext);
  if (!s) throw new Error("useSession outside a signed-in console");
  return s;
}

/** A `can` over a list of permissions, `*` and `prefix:*` included. */
export function canFrom(perms: string[]): (perm: string) => boolean {
  return (perm) => perms.some((p) => p === "*" || p === perm || (p.endsWith(":*") && perm.startsWith(p.slice(0, -1))));
}

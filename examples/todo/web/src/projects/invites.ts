// Invitations by email (the invites collection of abe.yaml). abe has no
// way for a user to look another up by email, and should not: it would
// tell who has an account. So the owner writes an invitation for an
// email; only the owner and that account can read it. The invitee
// accepts by putting their id on it, and the owner's app, seeing that,
// adds the id to the project's members (only the owner may) and deletes
// the invitation. Neither step goes through the undo history.
import { listInsert, type AuthUser } from "@abe-stack/sdk";
import { useLive } from "@abe-stack/sdk/react";
import { useEffect, useRef } from "react";
import { abe } from "../abe.js";
import type { InvitesRecord } from "../abe-types.js";

export const normalEmail = (e: string) => e.trim().toLowerCase();

/** The invitations this user has sent or received. */
export function useInvites(): InvitesRecord[] {
  return useLive("invites", { sort: ["created_at"] }).records;
}

/** Adds the accepting users of this owner's invitations to the projects. */
export function useAcceptedInvites(user: AuthUser): void {
  const invites = useInvites();
  const { records: projects } = useLive("projects", { sort: ["name"] });
  const busy = useRef(new Set<string>());
  useEffect(() => {
    for (const inv of invites) {
      const who = inv.user;
      if (!who || busy.current.has(inv.id)) continue;
      const p = projects.find((x) => x.id === inv.project && x.owner === user.id);
      if (!p) continue;
      busy.current.add(inv.id);
      void (async () => {
        try {
          if (!(p.members ?? []).includes(who)) await abe.records("projects").applyOps(p.id, [listInsert("members", who)]);
          await abe.records("invites").delete(inv.id);
        } catch {
          busy.current.delete(inv.id); // offline or refused: tried again on the next change
        }
      })();
    }
  }, [invites, projects, user.id]);
}

export async function accept(inv: InvitesRecord, user: AuthUser): Promise<void> {
  await abe.records("invites").update(inv.id, { user: user.id });
}

export async function decline(inv: InvitesRecord): Promise<void> {
  await abe.records("invites").delete(inv.id);
}

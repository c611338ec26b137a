// Invitations by email. abe has no way for a user to look another up by
// email, and should not: it would tell who has an account. So the owner
// writes the email into the project's invited list (which only the owner
// reads) and an invitation record that tells the invited account where
// it is invited. The invitee then joins or declines by itself, in one
// batch: its own id onto members, its own email off the list, and the
// invitation deleted. abe.yaml's rules allow exactly that, so nothing
// waits for the owner's app. Joining and declining are not undo steps.
import { listInsert, listRemove, type AuthUser, type Operation, type Writes } from "@abe-stack/sdk";
import { useLive } from "@abe-stack/sdk/react";
import { abe } from "../abe.js";
import type { InvitesRecord, ProjectsRecord } from "../abe-types.js";

export const normalEmail = (e: string) => e.trim().toLowerCase();

/** The invitations this user has sent or received. */
export function useInvites(): InvitesRecord[] {
  return useLive("invites", { sort: ["created_at"] }).records;
}

/** The owner invites an email: one undo step, queued (it works offline). */
export function invite(writes: Pick<Writes, "apply">, project: ProjectsRecord, email: string): void {
  writes.apply([
    { collection: "invites", id: crypto.randomUUID(), ops: [], create: { project: project.id, project_name: project.name, email } },
    { collection: "projects", id: project.id, ops: [listInsert("invited", email)] },
  ]);
}

/** The owner takes an invitation back. */
export function cancel(writes: Pick<Writes, "apply">, inv: InvitesRecord): void {
  writes.apply([
    { collection: "invites", id: inv.id, ops: [], remove: true },
    { collection: "projects", id: inv.project, ops: [listRemove("invited", inv.email)] },
  ]);
}

export async function accept(inv: InvitesRecord, user: AuthUser): Promise<void> {
  await answer(inv, [listInsert("members", user.id), listRemove("invited", inv.email)]);
}

export async function decline(inv: InvitesRecord): Promise<void> {
  await answer(inv, [listRemove("invited", inv.email)]);
}

async function answer(inv: InvitesRecord, ops: Operation[]): Promise<void> {
  await abe.batch([
    { collection: "projects", action: "update", id: inv.project, ops },
    { collection: "invites", action: "delete", id: inv.id },
  ]);
}

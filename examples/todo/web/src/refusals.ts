// The server's refusals of queued writes, in the words of this app's
// rules (abe.yaml): who may do what to a project and its todos.
import type { AbeError, QueuedWrite } from "@abe-stack/sdk";

function touches(w: QueuedWrite, field: string): boolean {
  return (w.data !== undefined && field in w.data) || (w.ops ?? []).some((o) => o.path[0] === field);
}

/** One sentence for a write the server refused. */
export function refusal(w: QueuedWrite, e: AbeError): string {
  if (e.status === 403) {
    if (w.collection === "todos" && w.action === "delete") return "Only the project's owner can delete todos.";
    if (w.collection === "projects" && touches(w, "members")) return "Only the project's owner can remove members.";
    if (w.collection === "projects" && w.action === "delete") return "Only the project's owner can delete the project.";
    if (w.collection === "projects") return "Only the project's owner can rename the project.";
    if (w.collection === "invites") return "Only the project's owner can invite people.";
    return "You are no longer a member of this project, so this change was not saved.";
  }
  if (e.status === 404) return "That was deleted by someone else in the meantime.";
  if (e.status === 422 || e.status === 400) {
    const f = e.fieldErrors[0];
    return f ? `Not saved: ${f.field} ${f.message}.` : `Not saved: ${e.problem?.detail ?? e.message}`;
  }
  return `Not saved: ${e.problem?.detail ?? e.message}`;
}

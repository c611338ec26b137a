// The API's refusals in plain words. The server's rules are abe.yaml's;
// these sentences say what each refusal means in this blog.
import { AbeError, NetworkError, RateLimitedError } from "@abe-stack/sdk";
import type { Who } from "./session.js";

export type Action = "create-published" | "publish" | "unpublish" | "create" | "edit" | "delete" | "comment" | "hide" | "show";

function mfaHint(w: Who): string {
  return w.waiting.length > 0 ? ` Your ${w.waiting.join(" and ")} role counts only after you sign in with a two-factor code.` : "";
}

/** One or two sentences for a refused action. */
export function inWords(e: unknown, action: Action, w: Who): string {
  if (e instanceof NetworkError) return "The server cannot be reached. Check your connection and try again.";
  if (e instanceof RateLimitedError) return `Too many requests: try again in ${e.retryAfter ?? 1} s.`;
  if (!(e instanceof AbeError)) return e instanceof Error ? e.message : String(e);
  const fields = e.fieldErrors.map((f) => f.field);
  if (e.status === 403) {
    if (action === "create-published")
      return `Only moderators can publish, so nothing was saved. Untick “Publish now” to save a draft; a moderator can publish it.${mfaHint(w)}`;
    if (fields.includes("status") || action === "publish" || action === "unpublish")
      return `Only moderators can publish posts or take them back to draft; yours stays a draft until one does.${mfaHint(w)}`;
    if (fields.includes("hidden") || action === "hide" || action === "show") return `Only moderators can hide or show comments.${mfaHint(w)}`;
    if (action === "delete") return `Only the author or a moderator can delete this.${mfaHint(w)}`;
    if (action === "edit") return "Only the author can edit this.";
    if (action === "comment") return "Comments open once the post is published.";
    return `You may not do that.${mfaHint(w)}`;
  }
  if (e.status === 404) return "This post is gone, or it is a draft you may not see.";
  if (e.status === 401) return "Your session ended: sign in again.";
  if (e.status === 400 || e.status === 422) {
    const f = e.fieldErrors[0];
    if (f) return `Not saved: ${f.field} ${f.message}.`;
  }
  return `Not saved: ${e.problem?.detail ?? e.message}`;
}

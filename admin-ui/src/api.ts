// The console's one client of abe: the SDK, with its tokens in memory only.
// No localStorage and no cookie the console relies on: a reload signs the
// admin out, and a script that is not ours finds no token to steal.
// Coordination is off, so no token crosses to another tab either.
import { AbeError, MemoryTokenStore, createClient, type AbeClient } from "@abe-stack/sdk";
import { admin, adminFiles, type AdminApi, type AdminFiles } from "@abe-stack/sdk/admin";

/** A client of the server that served the console. */
export function makeClient(url: string = location.origin): { client: AbeClient; api: AdminApi; files: AdminFiles } {
  const client = createClient({ url, tokenStore: new MemoryTokenStore(), coordination: "none" });
  return { client, api: admin(client), files: adminFiles(client) };
}

/** A one-line message for an error, with the server's detail when it gave one. */
export function describe(err: unknown): string {
  if (err instanceof AbeError) {
    const p = err.problem;
    const fields = err.fieldErrors.map((f) => `${f.field}: ${f.message}`).join("; ");
    const text = p?.detail || p?.title || err.message;
    return fields ? `${text} (${fields})` : text;
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * Whether the server lacks this endpoint (an older abe): the screen says so.
 * The problem type tells it: a path no route has is no_such_endpoint, a
 * missing record, user or role is not_found, and a route without this
 * method is method_not_allowed.
 */
export function isMissing(err: unknown): boolean {
  return err instanceof AbeError && (err.code === "no_such_endpoint" || err.code === "method_not_allowed");
}

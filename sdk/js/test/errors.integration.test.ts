// error.code against a real `abe serve`: every answer's problem type
// becomes the code docs/errors.md names.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isMfaChallenge } from "../src/auth.js";
import { createClient, type AbeClient } from "../src/client.js";
import { AbeError, ConflictError, NotFoundError, UnauthorizedError, ValidationError } from "../src/errors.js";
import { createProject, registerUser, startServer, type AbeServer } from "./harness.js";

let srv: AbeServer;
const clients: AbeClient[] = [];

beforeAll(async () => {
  srv = await startServer();
});
afterAll(async () => {
  for (const c of clients) c.close();
  await srv?.stop();
});

function client(): AbeClient {
  const c = createClient({ url: srv.url, autoRefresh: false, coordination: "none" });
  clients.push(c);
  return c;
}

async function fails(p: Promise<unknown>): Promise<AbeError> {
  const e = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(e).toBeInstanceOf(AbeError);
  return e as AbeError;
}

describe("error.code from a real server", () => {
  it("names the class of each answer", async () => {
    const u = await registerUser(srv);
    const c = client();

    const anon = await fails(c.auth.me());
    expect(anon).toBeInstanceOf(UnauthorizedError);
    expect(anon.code).toBe("unauthorized");

    const s = await c.auth.login({ email: u.email, password: u.password });
    expect(isMfaChallenge(s)).toBe(false);
    const p = await createProject(srv, u);

    const stale = await fails(c.records("projects").update(p.id, { name: "Moved" }, { ifMatch: p.version + 5 }));
    expect(stale).toBeInstanceOf(ConflictError);
    expect(stale.code).toBe("version_conflict");
    expect((stale as ConflictError<{ version: number }>).current?.version).toBe(p.version);

    const missing = await fails(c.records("projects").get("018f0000-0000-7000-8000-000000000000"));
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(missing.code).toBe("not_found");

    const invalid = await fails(c.records("projects").create({ name: "x".repeat(201), owner: u.id }));
    expect(invalid).toBeInstanceOf(ValidationError);
    expect(invalid.code).toBe("validation");

    const refused = await fails(c.records("projects").create({ name: "Not mine", owner: "018f0000-0000-7000-8000-000000000000" }));
    expect(refused.code).toBe("forbidden");

    // Last: a failed login delays the account's next one.
    const wrong = await fails(client().auth.login({ email: u.email, password: "not the password 123" }));
    expect(wrong.code).toBe("invalid_credentials");
  });
});

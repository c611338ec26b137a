import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createProject, registerUser, startServer, type AbeServer } from "./harness.js";

describe("harness", () => {
  let srv: AbeServer;
  beforeAll(async () => {
    srv = await startServer();
  });
  afterAll(async () => {
    await srv?.stop();
  });

  it("serves, registers users, survives kill -9 and restart on the same database", async () => {
    const u = await registerUser(srv);
    const p = await createProject(srv, u);
    await srv.kill();
    expect(srv.running).toBe(false);
    await expect(fetch(srv.url + "/readyz")).rejects.toThrow();
    await srv.restart();
    const a = await srv.api<{ id: string }>("GET", `/api/collections/projects/records/${p.id}`, undefined, u.accessToken);
    expect(a.status).toBe(200);
    expect(a.body.id).toBe(p.id);
    const rows = await srv.sql<{ n: string }>("SELECT count(*) AS n FROM abe.changes WHERE record_id = $1", [p.id]);
    expect(Number(rows[0]?.n)).toBe(1);
  });
});

// Vitest global setup for the integration tests: builds abe once and
// finds a PostgreSQL server, then hands both to the test files through
// vitest's provide/inject (see test/harness.ts).
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pg from "pg";
import type { TestProject } from "vitest/node";

const run = promisify(execFile);

declare module "vitest" {
  export interface ProvidedContext {
    /** The abe binary built for this test run. */
    abeBinary: string;
    /** A PostgreSQL URL whose user may CREATE DATABASE. */
    abeAdminDatabaseUrl: string;
    /** The repository root. */
    abeRepoRoot: string;
    /** Why the integration tests cannot run (no PostgreSQL, abe does not build); empty when they can. */
    abeSetupError: string;
  }
}

const repoRoot = resolve(fileURLToPath(new URL(".", import.meta.url)), "../../..");
const DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/postgres";

async function answers(url: string): Promise<string | undefined> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    await c.query("SELECT 1");
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    await c.end().catch(() => {});
  }
}

let dir: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  // Unit tests run without PostgreSQL or Go: a failure here is reported by
  // the integration tests (startServer throws it), not by the whole run.
  project.provide("abeRepoRoot", repoRoot);
  project.provide("abeBinary", "");
  project.provide("abeAdminDatabaseUrl", "");
  try {
    const [dbUrl, bin] = await Promise.all([findPostgres(), build()]);
    project.provide("abeBinary", bin);
    project.provide("abeAdminDatabaseUrl", dbUrl);
    project.provide("abeSetupError", "");
  } catch (err) {
    project.provide("abeSetupError", err instanceof Error ? err.message : String(err));
  }
}

async function findPostgres(): Promise<string> {
  const dbUrl = process.env.ABE_TEST_DATABASE_URL ?? "";
  if (dbUrl !== "") {
    const why = await answers(dbUrl);
    if (why) throw new Error(`ABE_TEST_DATABASE_URL (${dbUrl}) does not answer: ${why}`);
    return dbUrl;
  }
  const why = await answers(DEFAULT_PG);
  if (why)
    throw new Error(
      `the SDK's integration tests need PostgreSQL (15 or newer): none answers at ${DEFAULT_PG} (${why}). ` +
        `Install and start it (Debian/Ubuntu: apt-get install postgresql, with trust auth for 127.0.0.1), ` +
        `or set ABE_TEST_DATABASE_URL to a server whose user may CREATE DATABASE.`,
    );
  return DEFAULT_PG;
}

async function build(): Promise<string> {
  // A binary built elsewhere (another checkout, while this one's Go code is half-edited).
  if (process.env.ABE_TEST_BIN) return process.env.ABE_TEST_BIN;
  dir = await mkdtemp(join(tmpdir(), "abe-sdk-bin-"));
  const bin = join(dir, "abe");
  try {
    await run("go", ["build", "-o", bin, "./cmd/abe"], { cwd: repoRoot, maxBuffer: 16 << 20 });
  } catch (err) {
    const e = err as { stderr?: string; code?: string; message?: string };
    if (e.code === "ENOENT") throw new Error("the SDK's integration tests build abe: install Go 1.26 (https://go.dev/dl/)");
    throw new Error(`go build ./cmd/abe failed: ${e.stderr ?? e.message}`);
  }
  return bin;
}

export async function teardown(): Promise<void> {
  if (dir) await rm(dir, { recursive: true, force: true });
}

// The integration harness: a real `abe serve` on a throwaway database.
//
//   const srv = await startServer();          // migrate + serve + /readyz
//   const alice = await registerUser(srv);    // {id, email, accessToken, ...}
//   await srv.kill();  await srv.restart();   // kill -9, same db and port
//   await srv.stop();                         // kill, drop the database
//
// The abe binary and the PostgreSQL server come from test/global-setup.ts
// (ABE_TEST_DATABASE_URL, or postgres://postgres@127.0.0.1:5432/postgres).
import { spawn, type ChildProcess } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { inject } from "vitest";

/** Options of {@link startServer}. */
export interface ServerOptions {
  /** YAML appended to the config (top-level sections the todo example lacks: realtime, jobs, storage). */
  extraConfig?: string;
  /** The abe.yaml to start from; examples/todo/abe.yaml by default. */
  baseConfig?: string;
}

/** A JSON answer of the server. */
export interface Answer<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      s.close(() => res(port));
    });
  });
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = "/" + db;
  return u.toString();
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>, url = inject("abeAdminDatabaseUrl")): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

/** A running (or killed) `abe serve` with its own database, port and directory. */
export class AbeServer {
  /** The base URL, like http://127.0.0.1:41234. */
  readonly url: string;
  /** The database the server uses (dropped by stop()). */
  readonly databaseUrl: string;
  private proc: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private output = "";
  private readonly env: NodeJS.ProcessEnv;

  private constructor(
    readonly port: number,
    readonly database: string,
    readonly dir: string,
    readonly configPath: string,
    private readonly bin: string,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.databaseUrl = withDatabase(inject("abeAdminDatabaseUrl"), database);
    this.env = {
      ...process.env,
      DATABASE_URL: this.databaseUrl,
      ABE_DATABASE_URL: this.databaseUrl,
      ABE_AUTH_SECRET: randomBytes(30).toString("base64").slice(0, 40),
      ABE_SERVER_LISTEN: `127.0.0.1:${port}`,
      ABE_SERVER_PUBLIC_URL: this.url,
    };
  }

  /** The WebSocket URL of the realtime endpoint. */
  get wsUrl(): string {
    return this.url.replace(/^http/, "ws") + "/api/realtime";
  }

  /** Whether the server process is running. */
  get running(): boolean {
    return this.proc !== undefined;
  }

  /** The last output of the server (stdout and stderr), for failure messages. */
  get log(): string {
    return this.output;
  }

  /** Creates the database, writes the config, migrates and serves. */
  static async start(opts: ServerOptions = {}): Promise<AbeServer> {
    const why = inject("abeSetupError");
    if (why) throw new Error(`the integration tests cannot run: ${why}`);
    const root = inject("abeRepoRoot");
    const base = opts.baseConfig ?? (await readFile(join(root, "examples/todo/abe.yaml"), "utf8"));
    const dir = await mkdtemp(join(tmpdir(), "abe-sdk-srv-"));
    const database = "abe_sdk_" + randomBytes(6).toString("hex");
    await admin((c) => c.query(`CREATE DATABASE ${database}`));
    const config = [
      base.replace(/^server:\n(?:[ \t]+.*\n)*/m, ""),
      "server:",
      "  listen: 127.0.0.1:8090",
      "  shutdown_timeout: 1s",
      "  rate_limit: { disabled: true }",
      "mail:",
      "  providers:",
      "    - type: console",
      "storage:",
      "  backend: local",
      `  local: { root: ${join(dir, "files")} }`,
      opts.extraConfig ?? "",
    ].join("\n");
    const configPath = join(dir, "abe.yaml");
    await writeFile(configPath, config);
    const srv = new AbeServer(await freePort(), database, dir, configPath, inject("abeBinary"));
    try {
      await srv.cli(["migrate", "apply"]);
      await srv.restart();
    } catch (err) {
      await srv.stop();
      throw err;
    }
    return srv;
  }

  /** Runs an abe command against this server's config and database. */
  async cli(args: string[]): Promise<string> {
    return new Promise((res, rej) => {
      const p = spawn(this.bin, ["--config", this.configPath, ...args], { env: this.env, cwd: this.dir });
      let out = "";
      p.stdout.on("data", (d: Buffer) => (out += d.toString()));
      p.stderr.on("data", (d: Buffer) => (out += d.toString()));
      p.on("error", rej);
      p.on("exit", (code) => (code === 0 ? res(out) : rej(new Error(`abe ${args.join(" ")} exited ${code}: ${out}`))));
    });
  }

  /** Starts `abe serve` (after kill(), on the same database and port) and waits for /readyz. */
  async restart(): Promise<void> {
    if (this.proc) await this.kill();
    const p = spawn(this.bin, ["--config", this.configPath, "serve", "--log-level", "warn"], { env: this.env, cwd: this.dir });
    this.proc = p;
    live.add(p);
    const append = (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-20000);
    };
    p.stdout?.on("data", append);
    p.stderr?.on("data", append);
    let died: ((err: Error) => void) | undefined;
    const dead = new Promise<never>((_, rej) => (died = rej));
    dead.catch(() => {});
    this.exited = new Promise((res) =>
      p.on("exit", (code, sig) => {
        live.delete(p);
        if (this.proc === p) this.proc = undefined;
        died?.(new Error(`abe serve exited (${code ?? sig}) before it was ready:\n${this.output}`));
        res();
      }),
    );
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ok = await Promise.race([
        fetch(this.url + "/readyz").then(
          (r) => r.ok,
          () => false,
        ),
        dead,
      ]);
      if (ok) break;
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`abe serve was not ready within 30 s:\n${this.output}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    died = undefined;
  }

  /** kill -9 the server and wait until it is gone. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    p.kill("SIGKILL");
    await this.exited;
  }

  /** Kills the server, drops its database and removes its directory. */
  async stop(): Promise<void> {
    await this.kill();
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${this.database} WITH (FORCE)`)).catch(() => {});
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Runs SQL on the server's database (to read abe.changes, say). */
  async sql<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<R[]> {
    return admin(async (c) => (await c.query<R>(text, params)).rows, this.databaseUrl);
  }

  /** One JSON request; never throws for an error status. */
  async api<T = unknown>(method: string, path: string, body?: unknown, token?: string, headers: Record<string, string> = {}): Promise<Answer<T>> {
    const h: Record<string, string> = { ...headers };
    if (body !== undefined) h["Content-Type"] = "application/json";
    if (token) h.Authorization = `Bearer ${token}`;
    const r = await fetch(this.url + path, { method, headers: h, body: body === undefined ? null : JSON.stringify(body) });
    const text = await r.text();
    return { status: r.status, headers: r.headers, body: (text ? JSON.parse(text) : null) as T };
  }

  /** The sum of a Prometheus metric's samples on /metrics (0 when absent). */
  async metric(name: string): Promise<number> {
    const text = await (await fetch(this.url + "/metrics")).text();
    let sum = 0;
    for (const line of text.split("\n")) {
      if (line.startsWith(name + " ") || line.startsWith(name + "{")) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
    return sum;
  }
}

/** Starts a server on a throwaway database (see {@link AbeServer.start}). */
export function startServer(opts?: ServerOptions): Promise<AbeServer> {
  return AbeServer.start(opts);
}

/** An account made by {@link registerUser}, with its tokens. */
export interface TestUser {
  id: string;
  email: string;
  password: string;
  accessToken: string;
  refreshToken: string;
}

interface TokenAnswer {
  user: { id: string; email: string };
  access_token: string;
  refresh_token: string;
}

/** Registers an account (a random email and a strong password unless given) and returns its tokens. */
export async function registerUser(srv: AbeServer, opts: { email?: string; password?: string } = {}): Promise<TestUser> {
  const email = opts.email ?? `u${randomBytes(5).toString("hex")}@example.com`;
  const password = opts.password ?? `Tr0ub4dor-${randomBytes(8).toString("hex")}-horse`;
  const a = await srv.api<TokenAnswer>("POST", "/api/auth/register", { email, password });
  if (a.status !== 201) throw new Error(`register ${email}: ${a.status} ${JSON.stringify(a.body)}`);
  return { id: a.body.user.id, email, password, accessToken: a.body.access_token, refreshToken: a.body.refresh_token };
}

/** Logs an account in again: fresh tokens. */
export async function loginUser(srv: AbeServer, user: Pick<TestUser, "email" | "password">): Promise<TestUser> {
  const a = await srv.api<TokenAnswer>("POST", "/api/auth/login", { email: user.email, password: user.password });
  if (a.status !== 200) throw new Error(`login ${user.email}: ${a.status} ${JSON.stringify(a.body)}`);
  return { id: a.body.user.id, email: user.email, password: user.password, accessToken: a.body.access_token, refreshToken: a.body.refresh_token };
}

/** Creates a project of the todo example owned by the user (todos need one). */
export async function createProject(srv: AbeServer, user: TestUser, name = "Garden"): Promise<{ id: string; version: number }> {
  const a = await srv.api<{ id: string; version: number }>("POST", "/api/collections/projects/records", { name, owner: user.id }, user.accessToken);
  if (a.status !== 201) throw new Error(`create project: ${a.status} ${JSON.stringify(a.body)}`);
  return a.body;
}

/** The TOTP code of a step (RFC 6238: SHA-1, 30 s, 6 digits) of a base32 secret, as an authenticator app computes it. */
export function totp(secret: string, step: number): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const ch of secret.replace(/=+$/, "").toUpperCase()) bits += alphabet.indexOf(ch).toString(2).padStart(5, "0");
  const key = Buffer.from(Array.from({ length: Math.floor(bits.length / 8) }, (_, i) => parseInt(bits.slice(i * 8, i * 8 + 8), 2)));
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", key).update(msg).digest();
  const o = mac[mac.length - 1]! & 0xf;
  return String((mac.readUInt32BE(o) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

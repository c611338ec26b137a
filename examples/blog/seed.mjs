#!/usr/bin/env node
// @ts-check
// Seeds the blog with one account per role and a few posts, and prints
// the logins. Run it beside a running server (`abe dev` in this
// directory), with the same environment (DATABASE_URL, when set):
//
//   node seed.mjs [--url http://127.0.0.1:8090] [--abe ../../bin/abe] [--config abe.yaml] [--json]
//   node seed.mjs code SECRET     # the current two-factor code of a key
//
// Accounts are made with `abe users create` (a role can only be given by
// an admin, and the first admin comes from the command line); the rest
// goes through the HTTP API as the app would. The moderator and admin
// roles count only after a two-factor sign-in (abe.yaml), so the seed
// enrols both in TOTP and prints their keys and recovery codes.
import { spawn } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));

/** @param {string} secret base32 @param {number} step */
function totp(secret, step) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const ch of secret.replace(/=+$/, "").toUpperCase()) bits += alphabet.indexOf(ch).toString(2).padStart(5, "0");
  const key = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) key.push(parseInt(bits.slice(i, i + 8), 2));
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const h = createHmac("sha1", Buffer.from(key)).update(msg).digest();
  const o = /** @type {number} */ (h[h.length - 1]) & 0xf;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

const nowStep = () => Math.floor(Date.now() / 30_000);

/** @param {string[]} argv */
function options(argv) {
  const o = { url: "http://127.0.0.1:8090", abe: existsSync(`${here}../../bin/abe`) ? `${here}../../bin/abe` : "abe", config: `${here}abe.yaml`, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--json") o.json = true;
    else if (a === "--url" || a === "--abe" || a === "--config") o[/** @type {"url"|"abe"|"config"} */ (a.slice(2))] = argv[++i] ?? "";
    else throw new Error(`unknown argument ${a}: node seed.mjs [--url URL] [--abe PATH] [--config FILE] [--json], or node seed.mjs code SECRET`);
  }
  o.url = o.url.replace(/\/$/, "");
  return o;
}

/** Runs abe with the password on standard input. @param {string} bin @param {string[]} args @param {string} stdin */
function abe(bin, args, stdin) {
  return new Promise((res, rej) => {
    const p = spawn(bin, args, { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (out += d));
    p.on("error", (e) => rej(new Error(`cannot run ${bin} (${e.message}): build it with \`make build\` in the repository, or pass --abe`)));
    p.on("exit", (code) => (code === 0 ? res(out) : rej(new Error(`abe ${args.slice(2).join(" ")}: ${out.trim()}`))));
    p.stdin.end(stdin + "\n");
  });
}

/** @param {string} base */
function api(base) {
  /** @param {string} method @param {string} path @param {unknown} [body] @param {string} [token] @returns {Promise<any>} */
  return async (method, path, body, token) => {
    /** @type {Record<string, string>} */
    const headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    const r = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    const data = text ? JSON.parse(text) : null;
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${data?.detail ?? text}`);
    return data;
  };
}

async function seed() {
  const o = options(process.argv.slice(2));
  const call = api(o.url);
  try {
    await fetch(o.url + "/readyz");
  } catch {
    throw new Error(`no server answers at ${o.url}: start it first (\`abe dev\` in examples/blog, after building web/)`);
  }
  const people = [
    { role: "user", name: "Uma User", email: "user@blog.test" },
    { role: "moderator", name: "Mo Moderator", email: "moderator@blog.test" },
    { role: "admin", name: "Ada Admin", email: "admin@blog.test" },
  ].map((p) => ({ ...p, password: `blog-${p.role}-${randomBytes(6).toString("hex")}`, secret: "", lastStep: 0, recoveryCodes: /** @type {string[]} */ ([]) }));

  for (const p of people) {
    await abe(o.abe, ["--config", o.config, "users", "create", "--email", p.email, "--password", "-", "--name", p.name, "--role", p.role], p.password).catch((e) => {
      if (/exist/i.test(e.message)) throw new Error(`${p.email} exists already: the blog was seeded before (its logins were printed then). Start over with a fresh database, or reset a password with the API.`);
      throw e;
    });
    if (p.role === "user") continue;
    // Enrol in TOTP: a session with the password alone may do that.
    const s = await call("POST", "/api/auth/login", { email: p.email, password: p.password });
    const setup = await call("POST", "/api/auth/mfa/totp/setup", {}, s.access_token);
    p.secret = setup.secret;
    p.lastStep = nowStep();
    p.recoveryCodes = (await call("POST", "/api/auth/mfa/totp/enable", { code: totp(p.secret, p.lastStep) }, s.access_token)).recovery_codes;
    await call("POST", "/api/auth/logout", { refresh_token: s.refresh_token }, s.access_token);
  }

  /** @param {(typeof people)[number]} p */
  async function signIn(p) {
    const r = await call("POST", "/api/auth/login", { email: p.email, password: p.password });
    if (!r.mfa_required) return r;
    p.lastStep += 1; // each code is taken once: the next step (one step of drift is allowed)
    return call("POST", "/api/auth/mfa/verify", { mfa_token: r.mfa_token, code: totp(p.secret, p.lastStep) });
  }
  const [user, mod] = /** @type {[(typeof people)[number], (typeof people)[number]]} */ ([people[0], people[1]]);
  const u = await signIn(user);
  const m = await signIn(mod);
  const post = (/** @type {any} */ who, /** @type {string} */ title, /** @type {string} */ body) =>
    call("POST", "/api/collections/posts/records", { title, body, author: who.user.id, author_email: who.user.email }, who.access_token);
  const draft = await post(u, "Notes for a second post", "Only I and the moderators can read this draft.");
  const hello = await post(u, "Hello from Uma", "My first post. A moderator published it.\n\nUsers write drafts; only moderators publish.");
  const rules = await post(m, "House rules", "Be kind. Moderators hide comments that are not.");
  for (const p of [hello, rules]) await call("PATCH", `/api/collections/posts/records/${p.id}`, { status: "published" }, m.access_token);
  await call("POST", "/api/collections/comments/records", { post: rules.id, author: u.user.id, body: "Thanks, will do!" }, u.access_token);
  const spam = await call("POST", "/api/collections/comments/records", { post: hello.id, author: u.user.id, body: "Cheap watches at spam.example" }, u.access_token);
  await call("PATCH", `/api/collections/comments/records/${spam.id}`, { hidden: true }, m.access_token);
  await call("POST", "/api/collections/comments/records", { post: hello.id, author: m.user.id, body: "Welcome, Uma!" }, m.access_token);

  if (o.json) {
    console.log(JSON.stringify({ url: o.url, accounts: people, posts: { draft: draft.id, hello: hello.id, rules: rules.id } }));
    return;
  }
  const pad = (/** @type {string} */ s, /** @type {number} */ n) => s.padEnd(n);
  console.log(`Seeded the blog at ${o.url}/ with three accounts, three posts and a few comments:\n`);
  for (const p of people) console.log(`  ${pad(p.role, 10)} ${pad(p.email, 21)} password ${p.password}${p.secret ? `   two-factor key ${p.secret}` : ""}`);
  console.log(`
The moderator and admin roles count only after a sign-in with a two-factor
code. Add a key to an authenticator app (or open its otpauth URL), or print
the current code with:

  node seed.mjs code ${mod.secret}

Each code is taken once; the next comes within 30 seconds.
Recovery codes (each signs in once, instead of a code):`);
  for (const p of people.filter((x) => x.secret)) console.log(`  ${pad(p.role, 10)} ${p.recoveryCodes.join(" ")}`);
}

async function main() {
  if (process.argv[2] === "code") {
    const secret = process.argv[3];
    if (!secret) throw new Error("node seed.mjs code SECRET: the two-factor key the seed printed");
    console.log(totp(secret, nowStep()));
    return;
  }
  await seed();
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});

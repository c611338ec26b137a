// The README's install path and examples, as a user meets them: the
// package is packed with `npm pack`, installed from the tarball into a new
// project, and every ts block of README.md is type-checked there against
// the installed package, under NodeNext (what a Node project uses) and
// Bundler (what Vite uses), with the types `abe gen types` writes for the
// todo example.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";

const run = promisify(execFile);
const sdkDir = resolve(fileURLToPath(new URL(".", import.meta.url)), "..");

/** Names a block may use without declaring them, typed as the README means them. */
const known: Record<string, string> = {
  abe: 'import("@abe-stack/sdk").AbeClient<import("./abe-types.js").Collections>',
  todos:
    'import("@abe-stack/sdk").RecordsApi<import("./abe-types.js").TodosRecord, import("./abe-types.js").TodosCreate, import("./abe-types.js").TodosUpdate>',
  cache: 'import("@abe-stack/sdk").RecordCache',
  queue: 'import("@abe-stack/sdk").WriteQueue',
  rt: 'import("@abe-stack/sdk").RealtimeClient',
};

function tsBlocks(readme: string): { line: number; code: string }[] {
  const out: { line: number; code: string }[] = [];
  const lines = readme.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== "```ts") continue;
    const start = i + 1;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== "```"; i++) body.push(lines[i]!);
    out.push({ line: start, code: body.join("\n") });
  }
  return out;
}

let project = "";
let exported = new Set<string>();

beforeAll(async () => {
  const bin = inject("abeBinary");
  if (!bin) throw new Error(`abe did not build: ${inject("abeSetupError")}`);
  project = await mkdtemp(join(tmpdir(), "abe-sdk-readme-"));
  // npm pack runs prepack (the build), as `make sdk` does.
  const { stdout } = await run("npm", ["pack", "--silent", "--pack-destination", project], { cwd: sdkDir });
  const tarball = stdout.trim().split("\n").pop()!;
  await writeFile(join(project, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
  await run("npm", ["install", "--offline", "--no-audit", "--no-fund", "--loglevel=error", `./${tarball}`], { cwd: project });
  // The realtime example imports ws, as Node 20 needs.
  await mkdir(join(project, "node_modules", "@types"), { recursive: true });
  await symlink(join(sdkDir, "node_modules", "ws"), join(project, "node_modules", "ws"));
  await symlink(join(sdkDir, "node_modules", "@types", "ws"), join(project, "node_modules", "@types", "ws"));
  await symlink(join(sdkDir, "node_modules", "@types", "node"), join(project, "node_modules", "@types", "node"));
  await run(bin, ["gen", "types", "--lang", "ts", "-c", join(inject("abeRepoRoot"), "examples/todo/abe.yaml"), "-o", join(project, "abe-types.ts")]);
  const installed = await readFile(join(project, "node_modules/@abe-stack/sdk/package.json"), "utf8");
  expect(JSON.parse(installed).name).toBe("@abe-stack/sdk");
  exported = new Set(Object.keys(await import(join(project, "node_modules/@abe-stack/sdk/dist/index.js"))));
  // Types and interfaces are exported too: read them from the declarations.
  for (const f of await readdir(join(project, "node_modules/@abe-stack/sdk/dist"))) {
    if (!f.endsWith(".d.ts")) continue;
    const d = await readFile(join(project, "node_modules/@abe-stack/sdk/dist", f), "utf8");
    for (const m of d.matchAll(/export (?:declare )?(?:interface|type|class|function|const) (\w+)/g)) exported.add(m[1]!);
  }
}, 120_000);

afterAll(async () => {
  if (project) await rm(project, { recursive: true, force: true });
});

const programs: Partial<Record<"NodeNext" | "Bundler", ts.Program>> = {};

// check type-checks files; the program of the last call is reused, so
// the standard library and the package are read once.
function check(files: string[], moduleResolution: "NodeNext" | "Bundler"): ts.Diagnostic[] {
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: moduleResolution === "NodeNext" ? ts.ModuleKind.NodeNext : ts.ModuleKind.ESNext,
    moduleResolution: moduleResolution === "NodeNext" ? ts.ModuleResolutionKind.NodeNext : ts.ModuleResolutionKind.Bundler,
    lib: ["lib.es2022.d.ts", "lib.dom.d.ts", "lib.dom.iterable.d.ts"],
    types: ["node"],
    skipLibCheck: true,
  };
  const program = ts.createProgram(files, options, undefined, programs[moduleResolution]);
  programs[moduleResolution] = program;
  return [...ts.getPreEmitDiagnostics(program)];
}

const cannotFind = new Set([2304, 2552, 2582, 18004]);

describe("README.md", () => {
  it("installs from npm pack and its examples type-check against the package", async () => {
    const readme = await readFile(join(sdkDir, "README.md"), "utf8");
    const blocks = tsBlocks(readme);
    expect(blocks.length).toBeGreaterThan(5);
    const problems: string[] = [];
    const files = blocks.map((_, i) => join(project, `block${i}.ts`));
    const declared = blocks.map(() => new Set<string>());
    const headLines = blocks.map(() => 1);
    // A free name the package exports is imported (and reported), so the
    // rest of the block is checked as if the reader had imported it.
    const write = () =>
      Promise.all(
        blocks.map((b, i) => {
          const names = [...declared[i]!];
          const imports = names.filter((n) => exported.has(n));
          const head = [
            ...(imports.length ? [`import { ${imports.join(", ")} } from "@abe-stack/sdk";`] : []),
            ...names.filter((n) => !exported.has(n)).map((n) => `declare const ${n}: ${known[n] ?? "any"};`),
          ].join("\n");
          headLines[i] = head.split("\n").length;
          return writeFile(files[i]!, `${head}\n${b.code}\nexport {};\n`);
        }),
      );
    // Free names are declared until none is missing; a missing name the
    // package exports is a missing import, which a reader would hit.
    for (let round = 0; round < 10; round++) {
      await write();
      let fresh = 0;
      for (const d of check(files, "NodeNext")) {
        const i = files.indexOf(d.file?.fileName ?? "");
        if (i < 0 || !cannotFind.has(d.code)) continue;
        const n = ts.flattenDiagnosticMessageText(d.messageText, "\n").match(/'(\w+)'/)?.[1];
        if (!n || declared[i]!.has(n)) continue;
        if (exported.has(n)) problems.push(`README.md:${blocks[i]!.line}: ${n} is used but not imported from "@abe-stack/sdk"`);
        declared[i]!.add(n);
        fresh++;
      }
      if (fresh === 0) break;
    }
    for (const mode of ["NodeNext", "Bundler"] as const) {
      for (const d of check(files, mode)) {
        const i = files.indexOf(d.file?.fileName ?? "");
        if (i < 0 || cannotFind.has(d.code)) continue;
        const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
        const at = blocks[i]!.line + 1 + line - headLines[i]!;
        problems.push(`README.md:${at} (${mode}): ${ts.flattenDiagnosticMessageText(d.messageText, " ")}`);
      }
    }
    expect(problems).toEqual([]);
  }, 120_000);
});

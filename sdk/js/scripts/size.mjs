// size.mjs reports the size of the SDK as an app would ship it: bundled,
// minified and gzipped. The core (what createClient costs up front) must
// stay under 20 kB, with the offline layer a chunk of its own. The React
// entry (@abe-stack/sdk/react) is measured alone, React and the core
// left out (an app that uses it ships both anyway), and must stay under
// 2 kB: above that this script fails. The service worker entry
// (@abe-stack/sdk/sw) is bundled whole, with what it takes from the core,
// since an app's worker file ships nothing else, and must stay under 5 kB.
import { build } from "esbuild";
import { gzipSync } from "node:zlib";

const kb = (n) => (n / 1024).toFixed(1) + " kB";

async function measure(entry, external) {
  const out = await build({
    entryPoints: [entry],
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    write: false,
    plugins: external ? [external] : [],
  });
  const code = out.outputFiles[0].contents;
  return { min: code.length, gz: gzipSync(code, { level: 9 }).length };
}

// The core is what an app ships up front for createClient: the client,
// auth, the records API and errors. The offline layer (live queries, the
// write queue, IndexedDB, tabs, realtime, filters) is a chunk of its own
// that the client imports on first use (src/lazy.ts), so it is measured
// apart, as an app's bundler splits it; and the whole package, every
// building block bundled, for reference. Private members stay TypeScript
// `private`, not #fields: a #field throws through a Proxy (Vue's
// reactive() around a client or a live query), which 0.7 kB does not pay
// for.
async function app(contents) {
  const out = await build({
    stdin: { contents, resolveDir: ".", loader: "ts" },
    bundle: true,
    splitting: true,
    minify: true,
    format: "esm",
    platform: "browser",
    outdir: "out",
    write: false,
    metafile: true,
  });
  const gz = (f) => gzipSync(f.contents, { level: 9 }).length;
  const byPath = new Map(out.outputFiles.map((f) => [f.path.slice(f.path.lastIndexOf("/out/") + 1), f]));
  // Up front: the entry and the chunks it imports statically.
  const front = new Set();
  const visit = (p) => {
    if (front.has(p)) return;
    front.add(p);
    for (const i of out.metafile.outputs[p].imports) if (i.kind === "import-statement") visit(i.path);
  };
  visit(Object.keys(out.metafile.outputs).find((p) => out.metafile.outputs[p].entryPoint));
  let up = 0;
  let later = 0;
  for (const [p, f] of byPath) (front.has(p) ? (up += gz(f)) : (later += gz(f)));
  return { up, later };
}
const core = await app(`import { createClient } from "./src/index.ts"; globalThis.abe = createClient;`);
const all = await measure("src/index.ts");
const target = 20 * 1024;
console.log(`@abe-stack/sdk core (createClient, up front): ${kb(core.up)} min+gzip (limit 20 kB)`);
console.log(`@abe-stack/sdk offline layer (loaded on first live(), writes or history): ${kb(core.later)} min+gzip`);
console.log(`@abe-stack/sdk everything it exports, bundled whole: ${kb(all.min)} minified, ${kb(all.gz)} min+gzip`);
if (core.up > target) {
  console.error(`the core is ${kb(core.up)} min+gzip, over the limit of 20 kB`);
  process.exit(1);
}
if (core.later === 0) {
  console.error("the offline layer is no longer a chunk of its own: something imports it statically from the core");
  process.exit(1);
}

// Everything the entry imports is left out: react, and the core's modules.
const alone = {
  name: "alone",
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => (args.kind === "entry-point" ? undefined : { path: args.path, external: true }));
  },
};
const react = await measure("src/react.ts", alone);
const LIMIT = 2048;
console.log(`@abe-stack/sdk/react: ${kb(react.min)} minified, ${kb(react.gz)} min+gzip (React and the core left out; limit 2 kB)`);
if (react.gz > LIMIT) {
  console.error(`@abe-stack/sdk/react is ${kb(react.gz)} min+gzip, over the limit of 2 kB`);
  process.exit(1);
}

// The whole entry: the worker's part and the page's (an app's worker file ships a little less).
const sw = await measure("src/sw.ts");
const SW_LIMIT = 5 * 1024;
console.log(`@abe-stack/sdk/sw: ${kb(sw.min)} minified, ${kb(sw.gz)} min+gzip (bundled whole; limit 5 kB)`);
if (sw.gz > SW_LIMIT) {
  console.error(`@abe-stack/sdk/sw is ${kb(sw.gz)} min+gzip, over the limit of 5 kB`);
  process.exit(1);
}

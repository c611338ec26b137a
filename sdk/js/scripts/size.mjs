// size.mjs reports the size of the SDK as an app would ship it: bundled,
// minified and gzipped. The core's target is under 20 kB. The React
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

const core = await measure("src/index.ts");
// Issue 15 sets the core's target at 20 kB; it is over since the offline
// layer landed (25.8 kB; bench/README.md), so this reports it rather than
// fails. Private members stay TypeScript `private`, not #fields: a #field
// throws through a Proxy (Vue's reactive() around a client or a live
// query), which 0.7 kB does not pay for.
const target = 20 * 1024;
const over = core.gz > target ? `, over the 20 kB target by ${kb(core.gz - target)}` : " (target under 20 kB)";
console.log(`@abe-stack/sdk: ${kb(core.min)} minified, ${kb(core.gz)} min+gzip${over}`);

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

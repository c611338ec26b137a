// size.mjs reports the size of the whole SDK as an app would ship it:
// bundled, minified and gzipped. The target is under 25 kB.
import { build } from "esbuild";
import { gzipSync } from "node:zlib";

const out = await build({
  entryPoints: ["src/index.ts"],
  bundle: true,
  minify: true,
  format: "esm",
  platform: "browser",
  write: false,
});
const code = out.outputFiles[0].contents;
const gz = gzipSync(code, { level: 9 });
const kb = (n) => (n / 1024).toFixed(1) + " kB";
console.log(`@abe-stack/sdk: ${kb(code.length)} minified, ${kb(gz.length)} min+gzip (target under 25 kB)`);

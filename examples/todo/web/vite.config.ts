// Vite builds the app to dist/, which abe's hosting serves (abe.yaml).
// The SDK comes from its source in this repository (sdk/js/src): it has
// no runtime dependencies, so `npm ci` here is all a fresh machine needs.
// The service worker (src/sw.ts) is bundled separately by esbuild into
// dist/sw.js, a classic script with the list of built files to precache.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import { defineConfig, type Plugin } from "vite";

const sdk = fileURLToPath(new URL("../../../sdk/js/src/", import.meta.url));
const alias = {
  "@abe-stack/sdk/react": sdk + "react.ts",
  "@abe-stack/sdk/sw": sdk + "sw.ts",
  "@abe-stack/sdk": sdk + "index.ts",
};

function serviceWorker(): Plugin {
  let files: string[] = [];
  return {
    name: "abe-todo-sw",
    apply: "build",
    generateBundle(_, bundle) {
      files = Object.keys(bundle).filter((f) => !f.endsWith(".map"));
    },
    async closeBundle() {
      const precache = ["/", ...files.filter((f) => f !== "index.html").map((f) => "/" + f)];
      const version = String(precache.join(",").split("").reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7));
      await build({
        entryPoints: [fileURLToPath(new URL("src/sw.ts", import.meta.url))],
        outfile: fileURLToPath(new URL("dist/sw.js", import.meta.url)),
        bundle: true,
        format: "iife",
        minify: true,
        target: "es2022",
        alias,
        define: { __PRECACHE__: JSON.stringify(precache), __VERSION__: JSON.stringify(version) },
        logLevel: "warning",
      });
    },
  };
}

export default defineConfig({
  resolve: { alias, dedupe: ["react", "react-dom"] },
  esbuild: { jsx: "automatic" },
  build: { target: "es2022", sourcemap: false },
  // `npm run dev` (hot reload) beside `make dev`: the API and its socket stay abe's.
  server: { proxy: { "/api": { target: "http://127.0.0.1:8090", ws: true } } },
  plugins: [serviceWorker()],
});

// Vite builds the console to dist/, which embed.go puts in the abe binary
// and serves at /_/. The SDK comes from its source in this repository
// (sdk/js/src), so `npm ci` here is all a fresh machine needs. The build is
// deterministic (content-hashed names, no timestamps): scripts/test
// rebuilds it and fails when the committed dist/ differs.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const sdk = fileURLToPath(new URL("../sdk/js/src/", import.meta.url));

export default defineConfig({
  base: "/_/",
  resolve: {
    alias: {
      "@abe-stack/sdk/admin": sdk + "admin.ts",
      "@abe-stack/sdk": sdk + "index.ts",
    },
  },
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    target: "es2022",
    sourcemap: false,
    // The CSP has no 'unsafe-inline': no inline polyfill script, no inlined assets.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
  },
  // `npm run dev` beside `abe dev`: the API stays abe's.
  server: { proxy: { "/api": { target: "http://127.0.0.1:8090", ws: true } } },
});

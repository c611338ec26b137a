// Vite builds the app to dist/, which abe's hosting serves (abe.yaml).
// The SDK comes from its source in this repository (sdk/js/src): it has
// no runtime dependencies, so `npm ci` here is all a fresh machine needs.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const sdk = fileURLToPath(new URL("../../../sdk/js/src/", import.meta.url));

export default defineConfig({
  resolve: {
    alias: {
      "@abe-stack/sdk/react": sdk + "react.ts",
      "@abe-stack/sdk": sdk + "index.ts",
    },
    dedupe: ["react", "react-dom"],
  },
  esbuild: { jsx: "automatic" },
  build: { target: "es2022", sourcemap: false },
  // `npm run dev`: the app with hot reload on :5173, the API of `abe dev` behind it.
  server: { proxy: { "/api": { target: "http://127.0.0.1:8090", ws: true } } },
});

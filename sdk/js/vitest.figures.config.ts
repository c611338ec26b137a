import { defineConfig } from "vitest/config";

// The figures of bench/ (npm run figures): measured, printed, never asserted.
export default defineConfig({
  test: {
    include: ["bench/**/*.figures.ts"],
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 600_000,
    hookTimeout: 300_000,
  },
});

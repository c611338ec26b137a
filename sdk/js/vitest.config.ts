import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // The examples' browser tests too (examples/<name>/web/test), and the admin
    // console's (admin-ui/test), on the same harness.
    include: ["test/**/*.test.ts", "../../examples/*/web/test/**/*.test.ts", "../../admin-ui/test/**/*.test.ts"],
    // Builds abe once and finds PostgreSQL for the integration tests.
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});

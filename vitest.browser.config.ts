import { defineConfig } from "vitest/config";

// The browser suite (npm run test:browser): the live view in Debian's chromium, driven by
// playwright-core (no browser download). Screenshots go to test-artifacts/.
export default defineConfig({
  test: {
    include: ["test/browser/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: "forks",
    setupFiles: ["test/setup.ts"],
  },
});

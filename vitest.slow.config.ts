import { defineConfig } from "vitest/config";

// Long robustness suites kept out of `npm test`'s five minutes (npm run test:slow; .ci/run calls it).
export default defineConfig({
  test: {
    include: ["test/slow/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 30_000,
    pool: "forks",
    setupFiles: ["test/setup.ts"],
  },
});

import { defineConfig } from "vitest/config";

// The reference probe against every shipped profile (npm run test:probe; .ci/run calls it).
export default defineConfig({
  test: {
    include: ["test/probe/**/*.test.ts"],
    testTimeout: 240_000,
    hookTimeout: 30_000,
    pool: "forks",
    setupFiles: ["test/setup.ts"],
  },
});

import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // docs/examples/probe-*.test.ts: the probe authors' example, kept true by running it.
    include: ["test/unit/**/*.test.ts", "test/integration/**/*.test.ts", "docs/examples/probe-*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    setupFiles: ["test/setup.ts"],
  },
});

import { defineConfig } from "vitest/config";

// The root-only suite (npm run test:transparent): network namespaces, nftables, TPROXY.
export default defineConfig({
  test: {
    include: ["test/transparent/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    fileParallelism: false, // one set of chokepoint-* namespaces at a time
    sequence: { concurrent: false },
    setupFiles: ["test/setup.ts"],
  },
});

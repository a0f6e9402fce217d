import { existsSync } from "node:fs";
import { defineConfig } from "vitest/config";

// The docs' example is a user's test: it assumes an engine. Without one the suite's own
// files skip with a message, and the example is left out.
const engine = !!process.env.DOCKER_HOST || existsSync("/var/run/docker.sock");

// The container suite (npm run test:containers): builds the images, runs the compose
// topology and the testcontainers helper against a Docker-API engine (DOCKER_HOST).
export default defineConfig({
  test: {
    include: ["test/containers/**/*.test.ts", ...(engine ? ["docs/examples/*.test.ts"] : [])],
    globalSetup: ["test/containers/global-setup.ts"],
    testTimeout: 300_000,
    hookTimeout: 600_000,
    pool: "forks",
    fileParallelism: false, // the compose file publishes fixed host ports
    setupFiles: ["test/setup.ts"],
  },
  resolve: {
    // What a user writes; here it is this checkout's source.
    alias: { "chokepoint/testcontainers": new URL("./src/testcontainers/chokepoint-container.ts", import.meta.url).pathname },
  },
});

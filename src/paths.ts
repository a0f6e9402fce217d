// Where the package's own data lives (profiles, seeds), from src/ or dist/ alike.
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const PROFILES_DIR = join(PACKAGE_ROOT, "profiles");
export const EXAMPLES_DIR = join(PROFILES_DIR, "examples");
export const SEEDS_DIR = join(PACKAGE_ROOT, "seeds");

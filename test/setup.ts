// Every test run gets its own config directory: tests never touch the user's ~/.chokepoint.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

if (!process.env.CHOKEPOINT_TEST_CONFDIR) process.env.CHOKEPOINT_TEST_CONFDIR = mkdtempSync(join(tmpdir(), "chokepoint-conf-"));
process.env.CHOKEPOINT_CONFDIR = process.env.CHOKEPOINT_TEST_CONFDIR;

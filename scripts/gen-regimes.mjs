// Writes docs/regimes.md from seeds/ and profiles/ (npm run docs; needs a build).
import { writeFileSync } from "node:fs";
import { regimesDoc } from "../dist/record/regimes-doc.js";

writeFileSync(new URL("../docs/regimes.md", import.meta.url), regimesDoc("kz"));
console.log("docs/regimes.md written");

// Writes docs/regimes.md from seeds/ and profiles/, and docs/VERDICTS.md from the verdict table (npm run docs; needs a build).
import { writeFileSync } from "node:fs";
import { regimesDoc } from "../dist/record/regimes-doc.js";
import { verdictsDoc } from "../dist/probe/doc.js";

writeFileSync(new URL("../docs/regimes.md", import.meta.url), regimesDoc("kz"));
console.log("docs/regimes.md written");
writeFileSync(new URL("../docs/VERDICTS.md", import.meta.url), verdictsDoc());
console.log("docs/VERDICTS.md written");

// PKI: time to issue a new leaf (node-forge structure, node:crypto signature) against
// node-forge's own signing in the same run; TLS handshake cost to a cached vs a new name
// through the world's origin.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import forge from "node-forge";
import { Pki } from "../dist/pki/pki.js";
import { buildCertificateWithForgeSigning } from "../dist/pki/sign.js";
import { startLab } from "../dist/index.js";
import { goal, median, table } from "./lib.mjs";

const dir = mkdtempSync(join(tmpdir(), "chokepoint-bench-pki-"));
const pki = new Pki(dir);
const ca = pki.authority("lab");
pki.leaf({ names: ["warmup.example"] });

const RUNS = 5, N = 200, FORGE_N = 20;
const ours = [], forgeTimes = [];
const forgeKey = forge.pki.privateKeyFromPem(ca.key.export({ type: "pkcs8", format: "pem" }).toString());
const leafPub = pki.leaf({ names: ["pub.example"] });
const pubPem = forge.pki.publicKeyToPem(forge.pki.certificateFromPem(leafPub.certPem).publicKey);
let serial = 0;
for (let r = 0; r < RUNS; r++) {
  const t = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    pki.leaf({ names: [`new${serial++}.example`] });
    t.push(performance.now() - t0);
  }
  ours.push(median(t));
  const f = [];
  for (let i = 0; i < FORGE_N; i++) {
    const t0 = performance.now();
    buildCertificateWithForgeSigning({
      subject: { CN: `f${i}.example` }, issuer: ca.spec.subject, publicKeyPem: pubPem, signingKey: ca.key,
      notBefore: new Date(), notAfter: new Date(Date.now() + 86400e3), altNames: [{ dns: `f${i}.example` }],
    }, forgeKey);
    f.push(performance.now() - t0);
  }
  forgeTimes.push(median(f));
}
const oursMs = median(ours), forgeMs = median(forgeTimes);

// Handshakes through the origin: a cached name (context reused) vs a new name each time.
const lab = await startLab({ profiles: ["example-basics"], confdir: dir });
const { port } = lab.origin.address;
const caPem = ca.certPem;
const handshake = (name) => new Promise((resolve, reject) => {
  const t0 = performance.now();
  const s = tls.connect({ port, host: "127.0.0.1", servername: name, ca: caPem, ALPNProtocols: ["http/1.1"] }, () => {
    const ms = performance.now() - t0;
    s.destroy();
    resolve(ms);
  });
  s.on("error", reject);
});
await handshake("cached.example");
const cached = [], fresh = [];
for (let r = 0; r < RUNS; r++) {
  const c = [], n = [];
  for (let i = 0; i < 50; i++) c.push(await handshake("cached.example"));
  for (let i = 0; i < 50; i++) n.push(await handshake(`fresh${r}-${i}.example`));
  cached.push(median(c));
  fresh.push(median(n));
}
await lab.stop();
rmSync(dir, { recursive: true, force: true });

console.log(`leaf issuance: median of ${RUNS} runs (each the median of ${N} new names; forge: ${FORGE_N})`);
table([
  { what: "new leaf, forge structure + node:crypto signature", "median ms": oursMs.toFixed(3) },
  { what: "new leaf, node-forge signature (baseline)", "median ms": forgeMs.toFixed(3) },
  { what: "TLS handshake to the origin, cached name", "median ms": median(cached).toFixed(3) },
  { what: "TLS handshake to the origin, new name", "median ms": median(fresh).toFixed(3) },
]);
console.log(`ratios: forge/ours ${(forgeMs / oursMs).toFixed(1)}x; new/cached handshake ${(median(fresh) / median(cached)).toFixed(2)}x`);
goal("new leaf <= 2 ms", oursMs <= 2, `${oursMs.toFixed(3)} ms`);

// The lab CA's page on the control port (/ca), like mitmproxy's mitm.it: the certificates to
// download and the steps to trust them, for the browser that opens it. Certificates are
// public; the keys never leave the config directory.
import type { ServerResponse } from "node:http";
import type { Pki } from "../pki/pki.js";
import { AUTHORITIES } from "../pki/authorities.js";

const FORMATS = { pem: "application/x-pem-file", cer: "application/pkix-cert", p12: "application/x-pkcs12" } as const;

const STEPS: [string, string][] = [
  ["Debian, Ubuntu", "sudo cp lab.pem /usr/local/share/ca-certificates/chokepoint-lab.crt && sudo update-ca-certificates"],
  ["Fedora", "sudo cp lab.pem /etc/pki/ca-trust/source/anchors/ && sudo update-ca-trust"],
  ["macOS", "sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain lab.pem"],
  ["Windows", "certutil -addstore -f ROOT lab.cer (as administrator)"],
  ["Chromium on Linux (NSS)", 'certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n chokepoint-lab -i lab.pem'],
  ["Firefox", "Settings, Privacy & Security, Certificates, View Certificates, Authorities, Import lab.pem"],
  ["Node.js", "NODE_EXTRA_CA_CERTS=lab.pem node app.js"],
  ["Python", "REQUESTS_CA_BUNDLE=lab.pem (or SSL_CERT_FILE)"],
  ["curl", "curl --cacert lab.pem ..."],
  ["Java", "keytool -importcert -cacerts -storepass changeit -alias chokepoint-lab -file lab.pem -noprompt"],
];

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** Serves /ca and /ca/<id>.<pem|cer|p12>; false when the path is not one of them. */
export function serveCa(path: string, pki: Pki, res: ServerResponse): boolean {
  if (path === "/ca" || path === "/ca/") {
    const rows = AUTHORITIES.map((a) => `<tr><td>${esc(a.subject.CN)}</td><td>${esc(a.description)}</td><td>${Object.keys(FORMATS).map((f) => `<a href="/ca/${a.id}.${f}">${f}</a>`).join(" ")}</td></tr>`).join("");
    const steps = STEPS.map(([k, v]) => `<tr><th>${esc(k)}</th><td><code>${esc(v)}</code></td></tr>`).join("");
    const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>chokepoint: trust the lab CA</title><link rel="stylesheet" href="/style.css"></head><body><main><section class="panel wide">
<h1>Trust the lab CA</h1><p>Install <b>chokepoint lab CA</b> to see the lab world's sites as valid. Install a state root only to replay what users who installed it saw.
Do it in a browser profile or machine made for the lab. docs/CA.md has every step.</p>
<table><thead><tr><th>authority</th><th>what it is</th><th>download</th></tr></thead><tbody>${rows}</tbody></table>
<h2>Steps</h2><table>${steps}</table></section></main></body></html>`;
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store", "content-security-policy": "default-src 'self'; style-src 'self'" });
    res.end(html);
    return true;
  }
  const m = /^\/ca\/([a-z0-9-]+)\.(pem|cer|p12)$/.exec(path);
  if (!m || !AUTHORITIES.some((a) => a.id === m[1])) return false;
  const format = m[2] as keyof typeof FORMATS;
  const body = pki.export(m[1]!, format === "cer" ? "der" : format);
  res.writeHead(200, { "content-type": FORMATS[format], "content-disposition": `attachment; filename="chokepoint-${m[1]}.${format}"`, "content-length": body.length });
  res.end(body);
  return true;
}

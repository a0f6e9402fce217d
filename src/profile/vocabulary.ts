// The names rules may use besides actions (actions.ts): named fingerprints, application
// protocols and services. The schema, the loader's checks, the docs and the classifier
// (interceptor/classify.ts, whose results are typed by `Fingerprint`) all take them from here.

/** Named fingerprints the classifier reports, with what each stands for. */
export const FINGERPRINTS = {
  "tor-2012": "Tor's 2012 link-handshake ClientHello (its cipher list opening and 0xfeff; emulation, confidence S)",
  "tor-sni": "the random server name a Tor client sends (www.<4-25 base32>.com or .net, in a ClientHello without ALPN, with a label that reads as random or with tor's own cipher list)",
  openvpn: "OpenVPN over TCP (length-prefixed P_CONTROL_HARD_RESET_CLIENT)",
  ssh: "an SSH identification string",
  "fully-encrypted": "random-looking first bytes (Wu et al., USENIX Security 2023, the GFW's exemption rules)",
  http: "an HTTP request",
  tls: "a TLS ClientHello",
} as const;
export type FingerprintName = keyof typeof FINGERPRINTS;
export const FINGERPRINT_NAMES = Object.keys(FINGERPRINTS) as FingerprintName[];
/** A flow's fingerprint: a name above, or a JA3 hash or JA4 id of its ClientHello. */
export type Fingerprint = FingerprintName | `ja3:${string}` | `ja4:${string}`;

export function isFingerprint(f: string): boolean {
  return (FINGERPRINT_NAMES as string[]).includes(f) || /^ja3:[0-9a-f]{32}$/.test(f) || /^ja4:[a-z0-9_]+$/i.test(f);
}

/** Transport and application protocols a `protocol` matcher may name. */
export const PROTOCOLS = ["tcp", "udp", "dns", "http", "tls", "quic", "ssh", "openvpn", "encrypted", "unknown"] as const;
/** Services a `service` matcher may name (whatsapp, viber and sms have stand-ins in the relay). */
export const SERVICES = ["whatsapp", "viber", "sms", "telegram", "voice"] as const;

// The certificate authorities the lab can sign with: its own lab CA (origins) and stand-ins
// for the state roots of interception regimes, with the documented subject and validity of
// the real roots (regimes.md appendix A; OONI 2024) and keys of our own.

export interface AuthoritySpec {
  id: string;
  subject: { CN: string; O?: string; C?: string };
  /** Fixed validity (documented roots); absent = from creation for `years`. */
  notBefore?: string;
  notAfter?: string;
  years?: number;
  /** Leaves are issued by a short-lived intermediate of this many days (ISCA 2021-24: 75). */
  intermediateDays?: number;
  intermediateSubject?: { CN: string; O?: string; C?: string };
  /** Root key size (default 2048). */
  bits?: number;
  /**
   * How leaves that copy a real server's certificate are forged (the 2019 box: Raman et al.,
   * IMC 2020 §4.2.3 and App. A): validity shifted back by `shiftHours` (the last entry whose
   * `from` has passed at lab time), the server's serial with its last 4 bytes changed, no
   * extension but the SANs, and a key per host of `hostKey` bits (by lab time) and exponent.
   */
  forgery?: {
    shiftHours: { from?: string; hours: number }[];
    hostKey: { exponent: number; bits: { from?: string; bits: number }[] };
  };
  description: string;
  seed?: string;
}

export const AUTHORITIES: AuthoritySpec[] = [
  {
    id: "lab",
    subject: { CN: "chokepoint lab CA", O: "chokepoint" },
    years: 10,
    description: "the lab's own CA: signs the world's origin certificates (install it to trust the lab world)",
  },
  {
    id: "kz-2015-national",
    subject: { CN: "НЕГІЗГІ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ", C: "KZ" },
    notBefore: "2015-07-27T04:47:00Z",
    notAfter: "2020-07-27T04:47:00Z",
    description: "stand-in for the 2015-16 'national security certificate' root (no interception confirmed; expired)",
  },
  {
    // The chain and leaves as documented (IMC 2020 §4.2.3, App. A; the Censored Planet blog;
    // OONI 2024 for the root's dates): leaf <- "C=KZ, CN=Security Certificate" (RSA-2048,
    // 3 years; its start is not documented: periods of 3 years from the root's) <- "C=KZ,
    // CN=Qaznet Trust Network" (RSA-4096).
    id: "qaznet",
    subject: { C: "KZ", CN: "Qaznet Trust Network" },
    notBefore: "2016-02-02T05:41:00Z",
    notAfter: "2046-02-02T05:41:00Z",
    bits: 4096,
    intermediateDays: 3 * 365,
    intermediateSubject: { C: "KZ", CN: "Security Certificate" },
    forgery: {
      shiftHours: [{ hours: 6 }, { from: "2019-07-30T00:00:00+06:00", hours: 24 }],
      hostKey: { exponent: 3, bits: [{ bits: 1024 }, { from: "2019-07-19T00:00:00+06:00", bits: 2048 }] },
    },
    description: "stand-in for the root of the July-August 2019 interception (Kazakhtelecom, SNI-triggered); leaves forged as documented",
  },
  {
    id: "isca-2020",
    subject: { CN: "Information Security Certification Authority CA" },
    notBefore: "2020-02-28T04:08:03Z",
    notAfter: "2040-02-28T04:08:03Z",
    description: "stand-in for the root of the December 2020 Nur-Sultan exercise",
  },
  {
    id: "isca",
    subject: { CN: "Information Security Certification Authority" },
    notBefore: "2020-02-28T05:39:00Z",
    notAfter: "2050-02-28T05:39:00Z",
    intermediateDays: 75,
    intermediateSubject: { CN: "Information Security Certification Authority", O: "ISCA" },
    description: "stand-in for the 2021-24 ISCA roots; leaves come from 75-day intermediates (O=ISCA)",
  },
];

export function authoritySpec(id: string): AuthoritySpec | undefined {
  return AUTHORITIES.find((a) => a.id === id);
}

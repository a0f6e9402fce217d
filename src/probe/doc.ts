// docs/VERDICTS.md, rendered from the tables (verdicts.ts, messaging.ts): npm run docs writes
// it, and a test keeps the file equal to it.
import { AT_CONNECT, AT_DNS, AT_HTTP, AT_TLS, type Conclusion } from "./verdicts.js";
import { messagingDoc } from "./messaging.js";

/** docs/VERDICTS.md: the table above, for people (npm run docs writes it; a test keeps it equal). */
export function verdictsDoc(): string {
  const out = [
    "# What a probe should conclude",
    "",
    "Generated from `src/probe/verdicts.ts` by `npm run docs`: do not edit by hand.",
    "",
    "A web measurement meets the censor at three stages, in order: the DNS lookup, the TCP",
    "connection, and the first bytes (a TLS ClientHello or an HTTP request). The first stage",
    "whose enactment does not pass decides what a correct probe concludes: in the lab's words",
    "(`observe`, as profiles' `expect` rows and `chokepoint expect` write it) and in OONI's",
    "(web_connectivity's `blocking` and `accessible`, and the failure string of its network",
    "code). Which enactment an action has at each stage is the action table's",
    "(`src/profile/actions.ts`, docs/ARCHITECTURE.md). `chokepoint expect` applies this to any",
    "target; a rule with a `residual` also blocks the next connections to the server for its",
    "duration (`observe: residual` in an expect row).",
    "",
  ];
  const section = (title: string, stage: Record<string, Conclusion | "next">, note = ""): void => {
    out.push(`## ${title}`, "", ...(note ? [note, ""] : []), "| enactment | observe | blocking | accessible | failure | what the probe meets |", "|---|---|---|---|---|---|");
    for (const [k, v] of Object.entries(stage)) {
      out.push(v === "next" ? `| ${k} | (the next stage decides) | | | | |` : `| ${k} | \`${v.observe}\` | \`${String(v.blocking)}\` | ${v.accessible} | ${v.failure ? `\`${v.failure}\`` : ""} | ${v.why} |`);
    }
    out.push("");
  };
  section("DNS lookup", AT_DNS, "`rcode`: `dns_nxdomain_error` for NXDOMAIN, `dns_refused_error` for REFUSED, `dns_server_failure` for SERVFAIL.");
  section("TCP connection", AT_CONNECT);
  section("After a TLS ClientHello", AT_TLS);
  section("After an HTTP request", AT_HTTP);
  out.push(...messagingDoc());
  return out.join("\n");
}

// The live view's "try it": a request, a lookup or a message sent through the lab as a
// client on one of its networks, with what the client saw and the decisions it caused.
import type { Lab } from "../lab/lab.js";
import type { LabEvent } from "../events/types.js";
import { dnsEndpoint, dnsQuery, labCaName, measureService, measureUrl } from "../probe/measure.js";
import type { Service } from "../relay/protocol.js";
import { HttpError } from "./http-error.js";

const SERVICES = new Set(["whatsapp", "viber", "sms"]);

export interface TryResult { ok: true; network: string; what: string; observed: string; detail: string; events: LabEvent[] }

/** {"url": "https://..."} | {"dns": NAME} | {"service": "whatsapp"|"viber"|"sms"}, with an optional "network". */
export async function tryIt(lab: Lab, b: Record<string, unknown>): Promise<TryResult> {
  const networks = lab.status().networks;
  const network = b.network === undefined ? lab.network : String(b.network);
  if (!networks.includes(network)) throw new HttpError(400, `no network "${network}" in this lab (${networks.join(", ")})`);
  const events: LabEvent[] = [];
  const unsubscribe = lab.eventLog.subscribe((e) => { if (e.network === network && e.component !== "lab") events.push(e); });
  try {
    if (typeof b.url === "string") {
      let url: URL;
      try { url = new URL(b.url); } catch { throw new HttpError(400, `not a URL: ${JSON.stringify(b.url)}`); }
      if (url.protocol !== "http:" && url.protocol !== "https:") throw new HttpError(400, "url must be http:// or https://");
      const m = await measureUrl({ lab, network, labCaName: labCaName(lab) }, url);
      return { ok: true, network, what: url.href, ...m, events };
    }
    if (typeof b.dns === "string" && b.dns) {
      const r = await dnsQuery(dnsEndpoint(lab, network), b.dns);
      const observed = r === "timeout" ? "dns" : r.rcode !== 0 ? "dns" : "answered";
      const detail = r === "timeout" ? "no answer" : r.rcode !== 0 ? `rcode ${r.rcode}` : r.addresses.join(", ") || "no address";
      return { ok: true, network, what: b.dns, observed, detail, events };
    }
    if (typeof b.service === "string" && SERVICES.has(b.service)) {
      const m = await measureService({ lab, network, labCaName: "" }, b.service as Service);
      return { ok: true, network, what: `a ${b.service} message`, ...m, events };
    }
    throw new HttpError(400, 'expected {"url": "https://..."}, {"dns": NAME} or {"service": "whatsapp"|"viber"|"sms"}, with an optional "network"');
  } finally {
    unsubscribe();
  }
}

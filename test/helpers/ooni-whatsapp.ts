// OONI's WhatsApp test (ooni/spec ts-018-whatsapp), run through the lab's SOCKS5 proxy:
// an endpoint e1..e16.whatsapp.net is blocked when neither 443 nor 5222 connects, and the
// endpoints' status is "blocked" only when every endpoint is; the registration server and
// WhatsApp Web are blocked on any DNS, TCP, TLS or I/O error (the HTTP status is ignored).
import { connectThroughSocks } from "../../src/index.js";
import { run } from "./tools.js";

export interface WhatsappResult {
  whatsapp_endpoints_status: "ok" | "blocked";
  whatsapp_endpoints_blocked: string[];
  registration_server_status: "ok" | "blocked";
  whatsapp_web_status: "ok" | "blocked";
}

export async function whatsappCheck(socks: { host: string; port: number }, network: string, ca: string, timeoutMs = 2000): Promise<WhatsappResult> {
  const proxy = { ...socks, username: network };
  const connects = async (host: string, port: number): Promise<boolean> => {
    try {
      (await connectThroughSocks(proxy, host, port, timeoutMs)).destroy();
      return true;
    } catch {
      return false;
    }
  };
  const endpoints = Array.from({ length: 16 }, (_, i) => `e${i + 1}.whatsapp.net`);
  const reach = await Promise.all(endpoints.map(async (e) => (await Promise.all([connects(e, 443), connects(e, 5222)])).some(Boolean)));
  const blocked = endpoints.filter((_, i) => !reach[i]);
  const https = async (url: string): Promise<"ok" | "blocked"> => {
    const r = await run("curl", ["-sS", "-o", "/dev/null", "--max-time", String(timeoutMs / 1000), "--cacert", ca,
      "--proxy", `socks5h://${encodeURIComponent(network)}@${socks.host}:${socks.port}`, url]);
    return r.code === 0 ? "ok" : "blocked";
  };
  const [registration, web] = await Promise.all([https("https://v.whatsapp.net/v2/register"), https("https://web.whatsapp.com/")]);
  return {
    whatsapp_endpoints_status: blocked.length === endpoints.length ? "blocked" : "ok",
    whatsapp_endpoints_blocked: blocked,
    registration_server_status: registration,
    whatsapp_web_status: web,
  };
}

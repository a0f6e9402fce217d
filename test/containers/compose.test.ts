// docker/compose.yaml as a user runs it: the censor is the gateway of the `censored` network,
// a client container's curl and dig meet the regime, the explicit ports work from the host,
// and the event log says why.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer } from "node:net";
import { run } from "../helpers/tools.js";
import { composeCommand, engineProblem } from "./engine.js";

const why = await engineProblem();
const PROJECT = `cptest${process.pid}`;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe.skipIf(!!why)("docker/compose.yaml (kz-2011-wordpress at 2011-07-01)", () => {
  let compose: string[];
  let env: NodeJS.ProcessEnv;
  const dc = (...args: string[]) => run(compose[0]!, [...compose.slice(1), "-f", "docker/compose.yaml", "-p", PROJECT, ...args], { env, timeoutMs: 180_000 });

  beforeAll(async () => {
    compose = await composeCommand();
    env = {
      PROFILE: "kz-2011-wordpress", AT: "2011-07-01",
      DNS_PORT: String(await freePort()), HTTP_PROXY_PORT: String(await freePort()), SOCKS_PORT: String(await freePort()),
      RELAY_PORT: String(await freePort()), SMS_PORT: String(await freePort()),
      CONTROL_PORT: String(await freePort()), CONTROL_TOKEN: "compose-test-token",
    };
    const up = await dc("up", "-d");
    expect(up.code, up.stderr).toBe(0);
    // Ready when the lab has printed its listeners.
    for (let i = 0; i < 60; i++) {
      if ((await dc("logs", "chokepoint")).stdout.includes("Ctrl-C stops the lab")) return;
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(`the lab did not come up:\n${(await dc("logs", "chokepoint")).stdout}`);
  });
  afterAll(async () => { if (compose) await dc("down", "-v", "--remove-orphans"); });

  it("from the client container: a *.wordpress.com blog times out, www.wordpress.com loads, DNS is the censor's", async () => {
    const r = await dc("run", "--rm", "client", "sh", "-c", [
      "dig +short www.wordpress.com @9.9.9.9",
      "curl -s -o /dev/null -m 8 -w 'www %{http_code}\\n' https://www.wordpress.com/",
      "curl -s -o /dev/null -m 5 -w 'blog %{http_code} %{exitcode}\\n' https://someblog.wordpress.com/; true",
      "ip route show default",
    ].join("; "));
    expect(r.code, r.stderr).toBe(0);
    // Any resolver address is answered by the censor, from the lab world (no way out).
    expect(r.stdout).toMatch(/^198\.18\.51\.10$/m);
    expect(r.stdout).toContain("www 200");
    expect(r.stdout).toContain("blog 000 28");
    expect(r.stdout).toMatch(/default via 198\.18\.192\.2/);
  });

  it("the censor's event log shows why: the blog addresses dropped by the kernel rule, with its seed", async () => {
    let text = "";
    for (let i = 0; i < 20 && !text.includes('"enforcedBy":"kernel"'); i++) {
      text = (await dc("exec", "-T", "chokepoint", "cat", "/var/log/chokepoint/events.jsonl")).stdout;
      await new Promise((r) => setTimeout(r, 250));
    }
    const events = text.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
    const drop = events.find((e) => e.action === "drop" && e.rule === "blog-addresses");
    expect(drop).toMatchObject({ profile: "kz-2011-wordpress", seed: "kz-2011-06-wordpress", network: "kazakhtelecom-megaline", detail: { enforcedBy: "kernel" } });
    expect((drop!.observation as { ip: string }).ip).toMatch(/^198\.18\.50\./);
    expect(events.some((e) => e.component === "interceptor" && e.action === "allow" && (e.observation as { sni?: string }).sni === "www.wordpress.com")).toBe(true);
    // The feed in `docker compose logs` says the same, for people.
    expect((await dc("logs", "chokepoint")).stdout).toMatch(/drop\s+198\.18\.50\.\d+: by kz-2011-wordpress\/blog-addresses \(seed kz-2011-06-wordpress\)/);
  });

  it("the explicit-mode ports and the control API are published on the host's loopback", async () => {
    const page = await run("curl", ["-s", "-m", "8", "-x", `http://127.0.0.1:${env.HTTP_PROXY_PORT}`, "http://www.wordpress.com/"]);
    expect(page.stdout).toContain("<h1>www.wordpress.com</h1>");
    const dig = await run("dig", ["+short", "+tcp", "-p", env.DNS_PORT!, "@127.0.0.1", "www.wordpress.com"]);
    expect(dig.stdout.trim()).toBe("198.18.51.10");
    // The control API and live view, with the token.
    const status = await fetch(`http://127.0.0.1:${env.CONTROL_PORT}/v1/status`, { headers: { authorization: "Bearer compose-test-token" } });
    // An instant without an offset is in the regime's zone (Asia/Almaty, UTC+6 in 2011).
    expect(((await status.json()) as { labTime: string }).labTime).toBe("2011-06-30T18:00:00.000Z");
    expect((await fetch(`http://127.0.0.1:${env.CONTROL_PORT}/v1/status`)).status).toBe(401);
  });
});

// An example of a user's own test with the chokepoint testcontainers module (vitest here;
// any runner works). It needs a Docker-API engine and `npm i -D chokepoint testcontainers`.
// The first run builds the lab images from the package (about a minute); later runs reuse them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GenericContainer } from "testcontainers";
import { ChokepointContainer, type StartedChokepointContainer } from "chokepoint/testcontainers";

describe("my tool under the 2012 Kazakh Tor DPI", () => {
  let lab: StartedChokepointContainer;

  beforeAll(async () => {
    lab = await new ChokepointContainer()
      .withProfile("kz-2012-tor-dpi")
      .withAt("2012-03-15")
      .withNetwork("kaztranscom")
      .start();
  });
  afterAll(async () => { await lab?.stop(); });

  it("ordinary HTTPS passes, a Tor-looking TLS handshake is dropped, and the log says by which rule", async () => {
    // A client container behind the censor (curl, dig, openssl, tor; it trusts the lab CA).
    const ok = await lab.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "8", "https://www.example.kz/"]);
    expect(ok.output).toBe("200");
    // Tor's ClientHello carries a random www.<base32>.com name: the 2012 box drops the flow.
    const tor = await lab.run(["sh", "-c", "timeout 5 openssl s_client -connect 198.19.5.5:443 -servername www.q2kd7xw4ptbz.com </dev/null; echo exit=$?"]);
    expect(tor.output).toContain("exit=124"); // still waiting for the server's answer
    const drop = await lab.waitForEvent((e) => e.rule === "tor-random-sni");
    expect(drop).toMatchObject({ action: "drop", profile: "kz-2012-tor-dpi", seed: "kz-2012-03-tor-dpi", network: "kaztranscom" });
  });

  it("your own container, unmodified, attached behind the censor", async () => {
    const tool = await (await lab.attach(new GenericContainer("chokepoint-client:local").withCommand(["sleep", "infinity"]))).start();
    try {
      // Every resolver address is answered by the censor's resolver (lab world addresses).
      const dig = await tool.exec(["dig", "+short", "www.example.kz", "@1.1.1.1"]);
      expect(dig.output.trim()).toMatch(/^198\.(18|19)\.\d+\.\d+$/);
    } finally {
      await tool.stop();
    }
  });

  it("the explicit-mode endpoints are mapped on the host", async () => {
    expect(lab.endpoints.httpProxy.port).toBeGreaterThan(0);
    expect(lab.ca).toContain("BEGIN CERTIFICATE");
  });
});

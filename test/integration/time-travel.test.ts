import { describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/index.js";
import { measure } from "../../src/conformance/run.js";
import { exited, upJson } from "../helpers/cli.js";
import { run } from "../helpers/tools.js";

describe("time travel", () => {
  const measureAt = (lab: Lab, network: string, target: string) =>
    measure({ lab, network, labCaName: lab.pki.authority("lab").spec.subject.CN }, target);

  it("--country kz --at 2012-03-15: Tor's DPI and the second LiveJournal block, through a real `up` and curl", async () => {
    const { child, ready } = await upJson(["--country", "kz", "--at", "2012-03-15T12:00:00+06:00", "--ports", "auto"]);
    try {
      const socks = ready.endpoints.socks!;
      const curl = (network: string, url: string, ip: string) => run("curl", ["-sS", "-k", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3",
        "--resolve", `${new URL(url).hostname}:443:${ip}`, "-x", `socks5://${network}:x@${socks.host}:${socks.port}`, url]);
      // LiveJournal's addresses (world/kz.yaml) are dropped on Kazakhtelecom, not on a small ISP.
      expect((await curl("kazakhtelecom-megaline", "https://www.livejournal.com/", "198.18.40.10")).code).toBe(28);
      expect((await curl("small-isp", "https://www.livejournal.com/", "198.18.40.10")).stdout).toBe("200");
    } finally {
      child.kill("SIGTERM");
      await exited(child);
    }
    const lab = await startLab({ country: "kz", at: "2012-03-15T12:00:00+06:00", ports: "auto" });
    try {
      const ids = lab.profiles.map((p) => p.id);
      expect(ids).toEqual(expect.arrayContaining(["kz-2008-livejournal", "kz-2012-tor-dpi", "kz-2011-anonymizers", "kz-2012-google-partial"]));
      expect(ids).not.toContain("kz-2011-wordpress"); // lifted in July 2011
      expect(ids).not.toContain("kz-2012-bambuser"); // from April 2012
      expect(ids).not.toContain("kz-2014-shutdown-law"); // a procedure, not an event
      expect((await measureAt(lab, "kaztranscom", "tor://bridge.tor.example:443")).observed).toBe("tls-timeout");
      expect((await measureAt(lab, "kaztranscom", "obfs4://bridge.tor.example:443")).observed).toBe("false");
      expect((await measureAt(lab, "kazakhtelecom-megaline", "https://www.livejournal.com/")).observed).toBe("tcp_ip");
    } finally {
      await lab.stop();
    }
  }, 60_000);

  it("--country kz --at 2010-12-01: LiveJournal reachable between its two blocks", async () => {
    const lab = await startLab({ country: "kz", at: "2010-12-01T12:00:00+06:00", ports: "auto" });
    try {
      expect(lab.profiles.map((p) => p.id)).toContain("kz-2008-livejournal");
      expect((await measureAt(lab, "kazakhtelecom-megaline", "https://www.livejournal.com/")).observed).toBe("false");
    } finally {
      await lab.stop();
    }
  }, 30_000);

  it("--country kz --at 2014-02-13T17:30:00+06:00: the messaging outage on Almaty mobile networks only", async () => {
    const lab = await startLab({ country: "kz", at: "2014-02-13T17:30:00+06:00", ports: "auto" });
    try {
      expect(lab.profiles.map((p) => p.id)).toContain("kz-2014-02-13-almaty-messaging");
      for (const net of ["kcell-almaty-mobile", "tele2-almaty-mobile"]) {
        expect((await measureAt(lab, net, "service:whatsapp")).observed).toBe("service-unavailable");
        expect((await measureAt(lab, net, "service:sms")).observed).toBe("service-unavailable");
      }
      // A fixed line in Almaty and a mobile network elsewhere in the country keep messaging.
      expect((await measureAt(lab, "beeline-fixed", "service:whatsapp")).observed).toBe("false");
      expect((await measureAt(lab, "kcell-mobile", "service:sms")).observed).toBe("false");
    } finally {
      await lab.stop();
    }
  }, 60_000);

  it("--country kz --from plays on into the regimes that start later, not into procedures", async () => {
    const lab = await startLab({ country: "kz", from: "2008-01-01", speed: 1, ports: "auto" });
    try {
      const ids = lab.profiles.map((p) => p.id);
      expect(ids).toEqual(expect.arrayContaining(["kz-2008-livejournal", "kz-2014-02-13-almaty-messaging", "kz-2024-tls-timeout"]));
      expect(ids).not.toContain("kz-2014-shutdown-law");
      // Before any period starts nothing is blocked; a seek into 2024 finds the TLS timeouts.
      expect(lab.decide({ sni: "meduza.io", protocol: "tls" }, { network: "kazakhtelecom-megaline" }).action.type).toBe("allow");
      lab.clock.seek(Date.parse("2024-01-15T12:00:00+06:00"));
      expect(lab.decide({ sni: "meduza.io", protocol: "tls" }, { network: "kazakhtelecom-megaline" }).action.type).toBe("drop");
    } finally {
      await lab.stop();
    }
  }, 60_000);

  it("a replay crosses window edges exactly in lab time", async () => {
    let real = 0;
    const lab = await startLab({
      profiles: ["kz-2014-02-13-almaty-messaging"], from: "2014-02-13T16:58:00+06:00", speed: 60, timeSource: () => real,
    });
    const sms = () => lab.decide({ service: "sms" }, { network: "kcell-almaty-mobile" }).action.type;
    expect(sms()).toBe("allow");
    real = 119_999 / 60; // 16:59:59.999
    expect(sms()).toBe("allow");
    real = 120_000 / 60; // 17:00:00.000
    expect(sms()).toBe("reject");
    expect(lab.decide({ service: "sms" }, { network: "beeline-fixed" }).action.type).toBe("allow");
    lab.clock.seek(Date.parse("2014-02-13T18:30:00+06:00"));
    expect(sms()).toBe("allow");
    await lab.stop();
  });

  it("a regime in the past starts at its beginning when no instant is given", async () => {
    const lab = await startLab({ profiles: ["kz-2012-tor-dpi"] });
    expect(lab.clock.mode).toBe("replay");
    expect(Math.abs(lab.clock.now() - Date.parse("2012-03-01T00:00:00+06:00"))).toBeLessThan(5000);
    await lab.stop();
  });
});

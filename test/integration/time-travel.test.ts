import { describe, expect, it } from "vitest";
import { startLab } from "../../src/index.js";

describe("time travel", () => {
  it("--country kz --at loads the profiles in force then", async () => {
    const lab = await startLab({ country: "kz", at: "2012-03-15" });
    expect(lab.profiles.map((p) => p.id)).toContain("kz-2012-tor-dpi");
    expect(lab.profiles.map((p) => p.id)).not.toContain("kz-2008-livejournal");
    expect(lab.clock.mode).toBe("pinned");
    expect(lab.decide({ fingerprints: ["tor-2012"] }, { network: "kaztranscom" }).action.type).toBe("drop");
    await lab.stop();
    const old = await startLab({ country: "kz", at: "2009-06-01T12:00:00+06:00" });
    expect(old.profiles.map((p) => p.id)).toEqual(["kz-2008-livejournal"]);
    await old.stop();
  });

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

// chokepoint expect: the expected verdict for any target, from the policy, as a table, JSON
// or CSV; targets from the command line, a plain list or an OONI test-lists CSV.
import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { cli } from "../helpers/cli.js";
import { writeFiles } from "../helpers/profiles.js";

const P = ["expect", "--profile", "kz-2024-tls-timeout", "--at", "2024-05-14T20:00"];

describe("chokepoint expect", () => {
  it("computes OONI's blocking, the failure string and the lab's word for each target, with the rule", () => {
    const r = cli([...P, "--json", "meduza.io", "https://www.pinterest.com/", "http://www.example.kz/"]);
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.stdout) as Record<string, unknown>[];
    expect(rows).toMatchObject([
      { target: "meduza.io", blocking: "http-failure", failure: "generic_timeout_error", observe: "tls-timeout", rule: "blocked-news", profile: "kz-2024-tls-timeout", residual: { seconds: 120, key: "4-tuple" } },
      { target: "https://www.pinterest.com/", blocking: "http-failure", failure: "ssl_unknown_authority", observe: "mitm" },
      { target: "http://www.example.kz/", blocking: false, accessible: true, observe: "false" },
    ]);
    expect(rows[2]).not.toHaveProperty("rule");
  });

  it("per network and per instant, as the profile says", () => {
    const on = (network: string, at = "2024-05-14T20:00"): unknown => JSON.parse(cli(["expect", "--profile", "kz-2024-tls-timeout", "--at", at, "--network", network, "--json", "meduza.io"]).stdout)[0];
    expect(on("small-isp")).toMatchObject({ blocking: false });
    expect(on("beeline-fixed")).toMatchObject({ blocking: "http-failure" });
    expect(JSON.parse(cli(["expect", "--country", "kz", "--at", "2019-07-28T12:00", "--network", "kazakhtelecom-megaline", "--json", "www.facebook.com"]).stdout)[0])
      .toMatchObject({ blocking: false }); // the pause between the two 2019 spells
  });

  it("reads targets from a plain list and from an OONI test-lists CSV; writes CSV", () => {
    const dir = writeFiles({
      "list.txt": "# news\nmeduza.io\n\nhttps://www.example.kz/\n",
      "kz.csv": "url,category_code,category_description,date_added,source,notes\nhttps://meduza.io/,NEWS,\"News Media\",2017-04-12,,\"a note, with a comma\"\nhttps://www.example.kz/,MISC,Misc,2020-01-01,,\n",
    });
    const list = cli([...P, "--csv", "--targets", join(dir, "list.txt")]);
    expect(list.code).toBe(0);
    const lines = list.stdout.trim().split("\n");
    expect(lines[0]).toBe("target,network,at,blocking,accessible,failure,observe,stage,rule,profile,seed,error");
    expect(lines.slice(1).map((l) => l.split(",").slice(0, 4).join(","))).toEqual([
      "meduza.io,kazakhtelecom-megaline,2024-05-14T15:00:00.000Z,http-failure",
      "https://www.example.kz/,kazakhtelecom-megaline,2024-05-14T15:00:00.000Z,false",
    ]);
    const csv = JSON.parse(cli([...P, "--json", "--targets", join(dir, "kz.csv")]).stdout) as { target: string; blocking: unknown }[];
    expect(csv.map((r) => [r.target, r.blocking])).toEqual([["https://meduza.io/", "http-failure"], ["https://www.example.kz/", false]]);
  });

  it("says what is wrong: unknown network, no targets, a target it does not measure (exit 1, the others still answered)", () => {
    expect(cli([...P, "--network", "nowhere", "meduza.io"]).stderr).toMatch(/no network "nowhere" in the chosen profiles \(networks: kazakhtelecom-megaline, beeline-fixed, small-isp\)/);
    expect(cli(P).stderr).toMatch(/name targets \(URLs or names\) or --targets FILE/);
    expect(cli([...P, "--targets", "/nonexistent/list.txt"]).stderr).toMatch(/--targets \/nonexistent\/list.txt: no such file/);
    const r = cli([...P, "service:sms", "tor://bridge.example:443", "meduza.io"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/2 targets not measured: service:sms: not one of OONI's messaging tests \(service:whatsapp, .*\); tor:\/\/bridge\.example:443: messaging services and Tor bridges are not web targets/);
    expect(r.stdout).toMatch(/meduza\.io\s+http-failure\s+generic_timeout_error\s+tls-timeout/);
  });

  it("gives the keys of OONI's messaging tests for service:NAME", () => {
    const r = cli(["expect", "--profile", "kz-2014-02-13-almaty-messaging", "--at", "2014-02-13T17:30", "--network", "kcell-almaty-mobile", "--json", "service:whatsapp", "service:signal"]);
    expect(r.code).toBe(0);
    const [wa, signal] = JSON.parse(r.stdout) as { test: string; observe: string; keys: Record<string, unknown> }[];
    expect(wa).toMatchObject({ test: "whatsapp", observe: "service-unavailable", keys: { whatsapp_endpoints_status: "blocked", registration_server_status: "blocked" } });
    expect(signal).toMatchObject({ test: "signal", observe: "false", keys: { signal_backend_status: "ok", signal_backend_failure: null } });
  });
});

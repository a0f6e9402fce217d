import { describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadProfile } from "../../src/profile/load.js";
import { compilePolicy } from "../../src/policy/engine.js";
import { loadList } from "../../src/profile/lists.js";
import { formatError } from "../../src/util/yaml-source.js";
import { HEADER, profileFrom, tempDir, writeFiles } from "../helpers/profiles.js";
import { ROOT } from "../helpers/cli.js";

const EXAMPLE = join(ROOT, "profiles/examples/example-basics.yaml");

describe("the example profile from the docs", () => {
  it("validates and behaves exactly as written", () => {
    const r = loadProfile(EXAMPLE);
    expect(r.errors).toEqual([]);
    const p = compilePolicy([r.profile!]);
    const noon = Date.parse("2024-05-05T12:00:00Z");
    const d = (obs: object, t = noon) => p.decide(obs, t, "default");
    expect(d({ name: "nx.example.org" }).action).toEqual({ type: "nxdomain" });
    expect(d({ name: "spoof.example.org" }).action).toEqual({ type: "spoof", addresses: ["198.18.0.66"], ttl: 60 });
    expect(d({ name: "silent.example.org" }).action).toEqual({ type: "drop" });
    expect(d({ sni: "reset.example.org" }).action).toEqual({ type: "rst" });
    expect(d({ host: "page.example.org" }).action).toMatchObject({ type: "blockpage", status: 451, body: "Blocked by order" });
    expect(d({ sni: "social.example.org" }).action.type).toBe("allow");
    expect(d({ sni: "social.example.org" }, Date.parse("2024-05-05T20:15:00Z")).action.type).toBe("drop");
    expect(d({ name: "anything.example" }).action.type).toBe("allow");
  });
});

describe("validation errors", () => {
  it("reports five different mistakes as five file:line:col lines", () => {
    const text = readFileSync(EXAMPLE, "utf8")
      .replace("action: nxdomain", "action: nxdomian") // unknown action
      .replace('period: { start: "2020-01-01T00:00:00Z" }', 'period: { start: "2020-02-30" }') // bad date
      .replace("timezone: UTC", "timezone: Europe/Atlantis") // unknown time zone
      .replace("id: dns-silent", "id: dns-spoof") // duplicate rule id
      .replace("    action: rst", "    action: rst\n    seed: kz-1999-nothing"); // dangling seed
    const dir = tempDir();
    const file = join(dir, "bad.yaml");
    writeFileSync(file, text);
    const r = loadProfile(file, { seeds: { seeds: new Map(), errors: [] } });
    const lines = r.errors.map(formatError);
    expect(lines).toHaveLength(5);
    for (const l of lines) expect(l).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:\\d+:\\d+: `));
    expect(lines.join("\n")).toMatch(/:7:11: unknown time zone "Europe\/Atlantis"/);
    expect(lines.join("\n")).toMatch(/:8:18: not a date or date-time: "2020-02-30"/);
    expect(lines.join("\n")).toMatch(/:14:13: unknown action "nxdomian" \(did you mean "nxdomain"\?\)/);
    expect(lines.join("\n")).toMatch(/:18:9: duplicate rule id "dns-spoof"/);
    expect(lines.join("\n")).toMatch(/:24:11: no seed "kz-1999-nothing"/);
  });
  it("reports YAML syntax errors, unknown fields, missing fields and unreadable lists with positions", () => {
    const cases: [string, RegExp][] = [
      [`${HEADER}rules: [ {id: x`, /^.*:\d+:\d+: YAML: /],
      [`${HEADER}colour: red\nrules: []\n`, /:8:1: unknown field "colour"/],
      [HEADER.replace("title: test\n", "") + "rules: []\n", /:2:1: missing field "title"/],
      [`${HEADER}rules:\n  - { id: l, match: { domain: { file: nope.txt } }, action: drop }\n`, /:9:39: cannot read list file nope.txt: ENOENT/],
      [`${HEADER}rules:\n  - { id: w, match: { sni: x.example }, window: { daily: { from: "8pm", to: "22:00" } }, action: drop }\n`, /not a time of day/],
      [`${HEADER}rules:\n  - { id: n, match: { sni: x.example }, networks: [net-z], action: drop }\n`, /network "net-z" is not among the profile's networks/],
      [`${HEADER}rules:\n  - { id: f, match: { fingerprint: tor-2021 }, action: drop }\n`, /unknown fingerprint "tor-2021" \(did you mean "tor-2012"\?\)/],
      [`${HEADER}rules:\n  - { id: i, match: { ip: 300.1.1.1/8 }, action: drop }\n`, /not an address or CIDR/],
    ];
    for (const [yaml, re] of cases) {
      const dir = writeFiles({ "p.yaml": yaml });
      const r = loadProfile(join(dir, "p.yaml"));
      expect(r.errors.map(formatError).join("\n"), yaml).toMatch(re);
    }
  });
  it("requires seeds on every rule when asked (the project's regime profiles)", () => {
    const dir = writeFiles({ "p.yaml": `${HEADER}rules:\n  - { id: r, match: { domain: x.example }, action: drop }\n` });
    const r = loadProfile(join(dir, "p.yaml"), { requireSeeds: true });
    expect(r.errors.map(formatError).join()).toMatch(/:9:11: rule "r" cites no seed/);
  });
});

describe("list files", () => {
  it("loads plain, test-lists CSV and RPZ lists relative to the profile", () => {
    const p = profileFrom(`${HEADER}rules:
  - { id: plain, match: { domain: { file: lists/plain.txt } }, action: nxdomain }
  - { id: csv, match: { host: { file: lists/kz.csv } }, action: rst }
  - { id: rpz, match: { sni: { file: lists/block.rpz } }, action: drop }
  - { id: suffix, match: { domain: { file: lists/suffix.txt, mode: suffix } }, action: refused }
  - { id: ips, match: { ip: { file: lists/ips.txt } }, action: drop }
`, {}, {
      "lists/plain.txt": "# blocked names\nexact.example\n.platform.example  # with subdomains\n*.wild.example\n",
      "lists/kz.csv": "url,category_code,category_description,date_added,source,notes\nhttp://www.livejournal.example/,HUMR,Human Rights Issues,2014-04-15,,\nhttps://ratel.example/news,NEWS,News Media,2014-04-15,,\n",
      "lists/block.rpz": "$TTL 60\n@ SOA localhost. root.localhost. 1 3600 600 86400 60\n  NS localhost.\nbad.example CNAME .\n*.bad.example CNAME .\n",
      "lists/suffix.txt": "suffix.example\n",
      "lists/ips.txt": "203.0.113.0/24\n2001:db8:bad::1\n",
    });
    const pol = compilePolicy([p]);
    const d = (obs: object) => pol.decide(obs, Date.now(), "net-a").rule;
    expect(d({ name: "exact.example" })).toBe("plain");
    expect(d({ name: "x.platform.example" })).toBe("plain");
    expect(d({ name: "a.wild.example" })).toBe("plain");
    expect(d({ host: "www.livejournal.example" })).toBe("csv");
    expect(d({ host: "ratel.example" })).toBe("csv");
    expect(d({ sni: "bad.example" })).toBe("rpz");
    expect(d({ sni: "x.bad.example" })).toBe("rpz");
    expect(d({ name: "deep.suffix.example" })).toBe("suffix");
    expect(d({ ip: "203.0.113.200" })).toBe("ips");
    expect(d({ ip: "2001:db8:bad::1" })).toBe("ips");
  });
  it("reports bad lines with the list file's own line number", () => {
    const dir = writeFiles({ "p.yaml": `${HEADER}rules:\n  - { id: l, match: { domain: { file: l.txt } }, action: drop }\n`, "l.txt": "good.example\nbad name!\n" });
    const r = loadProfile(join(dir, "p.yaml"));
    expect(r.errors.map(formatError)).toEqual([`${join(dir, "l.txt")}:2:1: not a domain name: "bad name!"`]);
  });
  it("loads a 1,000,000-name list", () => {
    const dir = tempDir();
    const file = join(dir, "big.txt");
    const lines: string[] = [];
    for (let i = 0; i < 1_000_000; i++) lines.push(`site${i}.example${i % 10}.kz`);
    writeFileSync(file, lines.join("\n") + "\n");
    let progressCalls = 0;
    const r = loadList(file, { kind: "name", onProgress: () => progressCalls++ });
    expect(r.errors).toEqual([]);
    expect(r.entries).toHaveLength(1_000_000);
    expect(r.entries[999_999]).toBe("site999999.example9.kz");
    expect(progressCalls).toBeGreaterThan(1);
  });
});

describe("variants", () => {
  const yaml = `${HEADER}rules:
  - { id: block, match: { domain: lj.example }, action: nxdomain }
  - { id: other, match: { domain: o.example }, action: refused }
variants:
  ip:
    description: blocked by address instead of by name
    disable: [block]
    rules:
      - { id: block-ip, match: { ip: 203.0.113.0/24 }, action: drop }
  servfail:
    rules:
      - { id: block, match: { domain: lj.example }, action: servfail }
`;
  it("resolve to the base rules with replacements, additions and removals", () => {
    expect(profileFrom(yaml).rules.map((r) => r.id)).toEqual(["block", "other"]);
    expect(profileFrom(yaml, { variant: "ip" }).rules.map((r) => r.id)).toEqual(["other", "block-ip"]);
    const sf = profileFrom(yaml, { variant: "servfail" });
    expect(sf.rules[0]!.action).toEqual({ type: "servfail" });
    expect(sf.variant).toBe("servfail");
  });
  it("an unknown variant is an error", () => {
    expect(() => profileFrom(yaml, { variant: "dns" })).toThrow(/no variant "dns" \(it has: ip, servfail\)/);
  });
});

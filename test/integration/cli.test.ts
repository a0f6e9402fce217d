import { describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";
import { BIN, cli, exited, upJson, ROOT } from "../helpers/cli.js";

const require = createRequire(import.meta.url);
import { tempDir } from "../helpers/profiles.js";

describe("chokepoint CLI", () => {
  it("list --json lists the profiles", () => {
    const r = cli(["list", "--json"]);
    expect(r.code).toBe(0);
    const list = JSON.parse(r.stdout) as { id: string; country: string; kind: string }[];
    expect(list.map((p) => p.id)).toEqual(expect.arrayContaining(["example-basics", "kz-2012-tor-dpi", "kz-2014-02-13-almaty-messaging"]));
    expect(list.find((p) => p.id === "kz-2012-tor-dpi")).toMatchObject({ country: "KZ", kind: "regime" });
  });

  it("validate: exit 0 for the example, five file:line:col lines and exit 1 for five mistakes", () => {
    expect(cli(["validate", "profiles/examples/example-basics.yaml"]).code).toBe(0);
    const dir = tempDir();
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, readFileSync(join(ROOT, "profiles/examples/example-basics.yaml"), "utf8")
      .replace("action: nxdomain", "action: nxdomian")
      .replace('"2020-01-01T00:00:00Z"', '"2020-01-01T27:00:00Z"')
      .replace("timezone: UTC", "timezone: Asia/Nowhere")
      .replace("id: evening", "id: dns-nx")
      .replace("    action: rst", "    action: rst\n    seed: no-such-event"));
    const r = cli(["validate", bad]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(5);
    for (const l of lines) expect(l).toMatch(/^\S+bad\.yaml:\d+:\d+: \S/);
  });

  it("show prints the story, rules and sources; --json the resolved profile", () => {
    const r = cli(["show", "kz-2012-tor-dpi"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/tor-clienthello: fingerprint tor-2012 -> drop/);
    expect(r.stdout).toMatch(/kz-2012-03-tor-dpi: Tor's TLS handshake blocked/);
    const j = JSON.parse(cli(["show", "kz-2012-tor-dpi", "--variant", "rst", "--json"]).stdout);
    expect(j.variant).toBe("rst");
    expect(j.rules[0].action).toEqual({ type: "rst" });
    expect(j.period.start).toBe("2012-03-01T00:00:00+06:00");
  });

  it("suggests close ids for an unknown profile", () => {
    const r = cli(["show", "kz-2012-tor"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unknown profile "kz-2012-tor"; did you mean "kz-2012-tor-dpi"/);
    const u = cli(["up", "--profile", "example-basic", "--json"]);
    expect(u.code).toBe(1);
    expect(u.stderr).toMatch(/did you mean "example-basics"/);
  });

  it("up --json prints one ready line, and stops cleanly with exit 0 on SIGTERM", async () => {
    const { child, ready } = await upJson(["--profile", "example-basics", "--ports", "auto"]);
    expect(ready.ready).toBe(true);
    expect(typeof ready.endpoints).toBe("object");
    child.kill("SIGTERM");
    expect(await exited(child)).toBe(0);
  });

  it("up says which port is in use and how to choose another", async () => {
    const { createServer } = await import("node:net");
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
    const port = (blocker.address() as { port: number }).port;
    // The HTTP proxy is the second port after BASE: make BASE+1 the taken one.
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const { spawn } = require("node:child_process") as typeof import("node:child_process");
      const c = spawn(process.execPath, [BIN, "up", "--profile", "example-basics", "--ports", String(port - 1), "--json"], { env: { ...process.env, NO_COLOR: "1" } });
      let stderr = "";
      c.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      c.on("exit", (code) => resolve({ code, stderr }));
    });
    blocker.close();
    expect(r.code).toBe(1);
    // Usually BASE+1 (ours); on a busy machine another test may hold BASE itself first.
    expect(r.stderr).toMatch(/port \d+ on 127\.0\.0\.1 is in use by another program; choose other ports with --ports auto/);
  });

  it("up rejects bad options with a clear message", () => {
    expect(cli(["up", "--profile", "example-basics", "--at", "tomorrow"]).stderr).toMatch(/not a date or date-time: "tomorrow"/);
    expect(cli(["up", "--profile", "example-basics", "--ports", "99999"]).stderr).toMatch(/--ports takes "auto" or a base port/);
    expect(cli(["up"]).stderr).toMatch(/name a regime/);
    expect(cli(["up", "--country", "kz", "--at", "1990-01-01"]).stderr).toMatch(/no KZ profile covers/);
    expect(cli(["up", "--profile", "example-basics", "--datapath", "onpath"]).stderr).toMatch(/--datapath chooses how --transparent or --gateway crosses the censor: add one of them/);
    expect(cli(["up", "--profile", "example-basics", "--transparent", "--datapath", "kernel"]).stderr).toMatch(/--datapath takes proxy or onpath, got "kernel"/);
  });
});

describe("chokepoint ca", () => {
  it("path creates the CA under --confdir (key 0600) and reuses it; export writes pem, der and p12", async () => {
    const { statSync, readFileSync: read } = await import("node:fs");
    const dir = tempDir();
    const p = cli(["ca", "path", "--confdir", dir]);
    expect(p.code).toBe(0);
    const file = p.stdout.trim();
    expect(file).toBe(join(dir, "ca", "lab.pem"));
    expect(statSync(join(dir, "ca", "lab.key")).mode & 0o777).toBe(0o600);
    const first = read(file, "utf8");
    expect(cli(["ca", "path", "--confdir", dir]).stdout.trim()).toBe(file);
    expect(read(file, "utf8")).toBe(first);
    expect(cli(["ca", "export", "--confdir", dir]).stdout).toBe(first);
    const der = join(dir, "ca.cer");
    expect(cli(["ca", "export", "--confdir", dir, "--format", "der", "--out", der]).code).toBe(0);
    const { X509Certificate } = await import("node:crypto");
    expect(new X509Certificate(read(der)).subject).toContain("CN=chokepoint lab CA");
    expect(cli(["ca", "export", "--confdir", dir, "--format", "p12", "--out", join(dir, "ca.p12")]).code).toBe(0);
    expect(statSync(join(dir, "ca.p12")).size).toBeGreaterThan(500);
    const q = cli(["ca", "export", "--confdir", dir, "--ca", "qaznet"]);
    expect(new X509Certificate(q.stdout).subject).toBe("C=KZ\nCN=Qaznet Trust Network");
    expect(cli(["ca", "export", "--confdir", dir, "--format", "pdf"]).stderr).toMatch(/--format takes pem, der, cer or p12/);
    expect(cli(["ca", "path", "--confdir", dir, "--ca", "nope"]).stderr).toMatch(/unknown certificate authority "nope"/);
  });
});

// The control API as a service of a running lab (runtime/service.ts): it listens on the
// control port and steers the lab through its own operations; stopping the lab closes it.
import type { Lab } from "../lab/lab.js";
import type { LabService } from "../runtime/service.js";
import { listenTcp, portFor } from "../runtime/listen.js";
import { ControlServer } from "./server.js";

/** Attaches the control API to `lab` on `host` (a token is required beyond loopback). */
export async function attachControl(lab: Lab, o: { host: string; ports: "auto" | "default" | number; token?: string; hosts?: string[]; socketPath?: string }): Promise<ControlServer> {
  const control = new ControlServer(() => lab, { ...(o.token ? { token: o.token } : {}), ...(o.hosts ? { hosts: o.hosts } : {}), listen: o.host });
  lab.connections.guard(control.server, "control");
  const service: LabService = {
    name: "control",
    async start() {
      lab.endpoints.control = { host: o.host, port: await listenTcp(control.server, o.host, portFor("control", o.ports), "control API") };
      if (o.socketPath) lab.endpoints.controlSocket = await control.listenUnix(o.socketPath);
    },
    async stop() {
      control.close();
      await Promise.all(control.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
  await lab.attach(service);
  return control;
}

// The library's startLab(): the lab (lab/lab.ts) with the control API and live view attached
// from above, as `chokepoint up` runs it. The lab itself knows nothing of the control API.
import { startLab as startLabCore, type Lab } from "./lab/lab.js";
import type { LabOptions } from "./lab/options.js";
import { attachControl } from "./control/attach.js";
import { controlTokenFor } from "./lab/parts.js";

export async function startLab(opts: LabOptions = {}): Promise<Lab> {
  const lab = await startLabCore(opts);
  if (opts.control === false) return lab;
  const host = opts.listen ?? "127.0.0.1";
  const token = controlTokenFor(host, opts.controlToken);
  try {
    await attachControl(lab, { host, ports: opts.ports ?? "auto", ...(token ? { token } : {}), ...(opts.controlHosts ? { hosts: opts.controlHosts } : {}), ...(opts.controlSocket ? { socketPath: opts.controlSocket } : {}) });
  } catch (err) {
    await lab.stop();
    throw err;
  }
  if (token) lab.controlToken = token;
  return lab;
}

// The ground-truth record: one JSON object a line, versioned (see DESIGN.md "Events").
export type Component = "resolver" | "interceptor" | "relay" | "box" | "lab";

export interface LabEvent {
  v: 1;
  /** Wall clock, ISO. */
  ts: string;
  /** Lab clock, ISO. */
  labTime: string;
  component: Component;
  network?: string;
  client?: string;
  flow?: string;
  /** A probe's measurement id for this flow (the proxy username's "+TAG"): `chokepoint score` pairs by it. */
  tag?: string;
  observation?: Record<string, unknown>;
  action: string;
  rule?: string;
  profile?: string;
  seed?: string;
  detail?: Record<string, unknown>;
}

export type EventInput = Omit<LabEvent, "v" | "ts" | "labTime"> & { labTime: number | string };

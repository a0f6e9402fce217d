// The control API's OpenAPI document (GET /v1/openapi.json).
const json = (schema: object) => ({ content: { "application/json": { schema } } });
const ok = (description: string, schema: object = { type: "object" }) => ({ 200: { description, ...json(schema) }, 400: { description: "bad request: { ok: false, error }" }, 401: { description: "token required (bound beyond loopback)" } });
const instant = { type: "string", description: "ISO 8601 instant, e.g. 2014-02-13T17:30:00+06:00 (no offset: the first profile's time zone)" };

export const OPENAPI = {
  openapi: "3.1.0",
  info: {
    title: "chokepoint control API",
    version: "1",
    description: "Steers a running lab (after Toxiproxy's API): status, the decision stream, lab time, active profiles, reset. Loopback by default; bound elsewhere, every request needs the token (Authorization: Bearer TOKEN, or ?token=TOKEN).",
  },
  components: { securitySchemes: { token: { type: "http", scheme: "bearer" } } },
  paths: {
    "/v1/status": { get: { summary: "active profiles, lab time, clock, networks, counters per action and network, endpoints; in transparent and gateway modes the datapath (proxy or onpath), and on the on-path datapath the box's counters (box)", responses: ok("status") } },
    "/v1/events": {
      get: {
        summary: "Server-Sent Events: one `decision` event per decision (the event log's JSON)",
        parameters: ["component", "action", "network"].map((name) => ({ name, in: "query", required: false, description: "comma-separated values to keep", schema: { type: "string" } })),
        responses: { 200: { description: "text/event-stream", content: { "text/event-stream": { schema: { type: "string" } } } } },
      },
    },
    "/v1/clock": {
      post: {
        summary: "seek, change speed, pause or resume lab time (seeking clears the residual table)",
        requestBody: json({ type: "object", properties: { seek: instant, speed: { type: "number", exclusiveMinimum: 0 }, pause: { type: "boolean" } } }),
        responses: ok("the clock now", { type: "object", properties: { labTime: { type: "string" }, speed: { type: "number" }, paused: { type: "boolean" }, mode: { type: "string" } } }),
      },
    },
    "/v1/profiles": {
      get: { summary: "the active profiles' story: titles, dates, sources, rules, timeline; the profiles available", responses: ok("profiles") },
      post: {
        summary: "activate a profile (optionally with a variant), deactivate one, or choose a variant",
        requestBody: json({ oneOf: [
          { type: "object", required: ["activate"], properties: { activate: { type: "string" }, variant: { type: "string" } } },
          { type: "object", required: ["deactivate"], properties: { deactivate: { type: "string" } } },
          { type: "object", required: ["variant"], properties: { variant: { type: "string" }, profile: { type: "string" } } },
        ] }),
        responses: ok("the active profiles"),
      },
    },
    "/v1/reset": { post: { summary: "clear residual state, held messages and the counters", responses: ok("what was cleared") } },
    "/v1/try": {
      post: {
        summary: "send a request, a DNS lookup or a message through the lab as a client of a network (the live view's 'try it')",
        requestBody: json({ type: "object", properties: { url: { type: "string" }, dns: { type: "string" }, service: { enum: ["whatsapp", "viber", "sms"] }, network: { type: "string" } } }),
        responses: ok("what the client observed (OONI's words and the lab's) and the decisions it caused"),
      },
    },
    "/v1/tag": {
      post: {
        summary: "tag the events about a client's next flows with a measurement id (a probe in transparent mode, which has no proxy username to carry it)",
        requestBody: json({ type: "object", required: ["client", "tag"], properties: { client: { type: "string" }, tag: { type: ["string", "null"] }, ttl: { type: "number", minimum: 1, maximum: 86400 } } }),
        responses: ok("{ ok, client, tag, until }"),
      },
    },
    "/v1/th": {
      post: {
        summary: "the control vantage: what a client outside the censor sees of a URL (DNS, TCP, TLS, one HTTP GET), in OONI's web connectivity test-helper protocol (also at POST /)",
        requestBody: json({ type: "object", required: ["http_request"], properties: { http_request: { type: "string" }, http_request_headers: { type: "object" }, tcp_connect: { type: "array", items: { type: "string" }, maxItems: 16 } } }),
        responses: ok("OONI's THResponse: tcp_connect, tls_handshake, http_request, dns, ip_info"),
      },
    },
    "/v1/openapi.json": { get: { summary: "this document", responses: ok("OpenAPI 3.1") } },
  },
} as const;

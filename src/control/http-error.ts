// An error the control API answers with its own status (400 bad input, 401, 404, 405, 413, 503).
export class HttpError extends Error {
  constructor(readonly status: number, message: string) { super(message); }
}

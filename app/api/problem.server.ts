/**
 * API errors as RFC 9457 problem details: a machine-readable `type`, a `title`, and a `detail` that tells the
 * caller what to fix.
 */
export const PROBLEM_BASE = "https://sheetmeter.dev/problems";

export interface Problem {
  status: number;
  /** The fragment after PROBLEM_BASE + "#", e.g. "quota-exceeded". */
  type: string;
  title: string;
  detail: string;
  [extension: string]: unknown;
}

export function problem({ status, type, title, detail, ...extensions }: Problem, headers?: HeadersInit): Response {
  const responseHeaders = new Headers(headers);
  responseHeaders.set("Content-Type", "application/problem+json");
  return Response.json(
    { type: `${PROBLEM_BASE}#${type}`, title, status, detail, ...extensions },
    {
      status,
      headers: responseHeaders,
    },
  );
}

export function methodNotAllowed(allowed: string[]): Response {
  return problem(
    {
      status: 405,
      type: "method-not-allowed",
      title: "Method not allowed",
      detail: `Use ${allowed.join(" or ")} on this endpoint.`,
    },
    { Allow: allowed.join(", ") },
  );
}

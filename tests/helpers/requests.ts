/** Builders for calling Remix loaders and actions directly, as the server would after parsing HTTP. */
export const TEST_ORIGIN = "http://localhost:3000";

export function formRequest(path: string, fields: Record<string, string>, cookie?: string): Request {
  const headers = new Headers({ "Content-Type": "application/x-www-form-urlencoded" });
  if (cookie) headers.set("Cookie", cookie);
  return new Request(`${TEST_ORIGIN}${path}`, { method: "POST", headers, body: new URLSearchParams(fields) });
}

export function getRequest(path: string, headers: Record<string, string> = {}): Request {
  return new Request(`${TEST_ORIGIN}${path}`, { headers });
}

/** The `name=value` part of a response's Set-Cookie, ready to send back as a Cookie header. */
export function cookieFrom(response: Response): string {
  const setCookie = response.headers.get("Set-Cookie");
  if (!setCookie) throw new Error("response set no cookie");
  return setCookie.split(";")[0];
}

type DataWithResponseInit = { type: "DataWithResponseInit"; data: unknown; init: ResponseInit | null };

function isDataWithResponseInit(value: unknown): value is DataWithResponseInit {
  return typeof value === "object" && value !== null && (value as { type?: unknown }).type === "DataWithResponseInit";
}

/**
 * With single fetch a loader or action returns a Response, `data(value, init)` or a plain value, and may throw a
 * Response (redirects) or `data()`. Tests want the HTTP answer either way: status and headers as Remix would send
 * them, the value as JSON (Remix encodes it with turbo-stream on the wire; the values are the same).
 */
export async function settle(result: Promise<unknown> | unknown): Promise<Response> {
  try {
    return asResponse(await result);
  } catch (thrown) {
    if (thrown instanceof Response || isDataWithResponseInit(thrown)) return asResponse(thrown);
    throw thrown;
  }
}

function asResponse(value: unknown): Response {
  if (value instanceof Response) return value;
  if (isDataWithResponseInit(value)) return Response.json(value.data, value.init ?? undefined);
  return Response.json(value);
}

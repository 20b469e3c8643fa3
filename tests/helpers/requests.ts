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

/** Remix loaders and actions either return or throw a Response (redirects are thrown); tests want it either way. */
export async function settle(result: Promise<unknown> | unknown): Promise<Response> {
  try {
    const value = await result;
    if (value instanceof Response) return value;
    throw new Error(`expected a Response, got ${JSON.stringify(value)}`);
  } catch (thrown) {
    if (thrown instanceof Response) return thrown;
    throw thrown;
  }
}

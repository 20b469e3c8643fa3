import http from "node:http";

/**
 * Plain HTTP from a chosen loopback source address. All of 127.0.0.0/8 is this machine, so a test that connects
 * from 127.0.0.N is, to the server's socket, a client of its own: its throttle buckets are its own, and the rest
 * of the suite (whose browser connects from 127.0.0.1) is never throttled by it.
 */
export interface LoopbackResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export function postForm(
  baseURL: string,
  path: string,
  fields: Record<string, string>,
  { from, headers = {} }: { from: string; headers?: Record<string, string> },
): Promise<LoopbackResponse> {
  const url = new URL(path, baseURL);
  const body = new URLSearchParams(fields).toString();
  return new Promise((resolve, reject) => {
    const request = http.request(url, {
      method: "POST",
      localAddress: from,
      // A connection per request, so each one really comes from `from`.
      agent: false,
      headers: {
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Length": String(Buffer.byteLength(body)),
        // A plain form post from our own page, as a browser sends it.
        Origin: url.origin,
        "Sec-Fetch-Site": "same-origin",
        ...headers,
      },
    });
    request.on("response", (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () =>
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
      response.on("error", reject);
    });
    request.on("error", reject);
    request.setTimeout(30_000, () => request.destroy(new Error(`POST ${path} got no answer in 30 s`)));
    request.end(body);
  });
}

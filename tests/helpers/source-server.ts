import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import selfsigned from "selfsigned";

/**
 * A local server standing in for a sheet's source (a published Google Sheet): each test sets what a path answers.
 * Plain http on loopback, or https with a self-signed certificate for `hostname` (the fetcher trusts its `ca` and
 * a test lookup maps the name to 127.0.0.1).
 */
export type SourceHandler = (request: http.IncomingMessage, response: http.ServerResponse) => void;

export interface SourceServer {
  /** e.g. http://127.0.0.1:5432 or https://sheets.test:5432 */
  origin: string;
  port: number;
  /** PEM of the self-signed certificate (https only). */
  ca?: string;
  /** Requests seen, in order: path and the headers the fetcher sent. */
  requests: { path: string; headers: http.IncomingHttpHeaders }[];
  handle(path: string, handler: SourceHandler): void;
  close(): Promise<void>;
}

export async function startSourceServer(options: { https?: { hostname: string } } = {}): Promise<SourceServer> {
  const handlers = new Map<string, SourceHandler>();
  const requests: SourceServer["requests"] = [];
  const listener = (request: http.IncomingMessage, response: http.ServerResponse) => {
    const path = request.url ?? "/";
    requests.push({ path, headers: request.headers });
    const handler = handlers.get(path.split("?")[0]);
    if (!handler) {
      response.writeHead(404, { "Content-Type": "text/plain" }).end("no such file");
      return;
    }
    handler(request, response);
  };
  let server: http.Server;
  let ca: string | undefined;
  if (options.https) {
    const { hostname } = options.https;
    const pems = await selfsigned.generate([{ name: "commonName", value: hostname }], {
      keyType: "ec",
      curve: "P-256",
      extensions: [{ name: "subjectAltName", altNames: [{ type: 2, value: hostname }] }],
    });
    ca = pems.cert;
    server = https.createServer({ key: pems.private, cert: pems.cert }, listener);
  } else {
    server = http.createServer(listener);
  }
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const host = options.https ? options.https.hostname : "127.0.0.1";
  return {
    origin: `${options.https ? "https" : "http"}://${host}:${port}`,
    port,
    ca,
    requests,
    handle: (path, handler) => handlers.set(path, handler),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Answers with `body` as CSV, and 304 when the request's validators match `etag`. */
export function csvHandler(body: string, options: { etag?: string; lastModified?: string } = {}): SourceHandler {
  return (request, response) => {
    if (options.etag && request.headers["if-none-match"] === options.etag) {
      response.writeHead(304, { ETag: options.etag }).end();
      return;
    }
    response
      .writeHead(200, {
        "Content-Type": "text/csv; charset=utf-8",
        ...(options.etag && { ETag: options.etag }),
        ...(options.lastModified && { "Last-Modified": options.lastModified }),
      })
      .end(body);
  };
}

import http from "node:http";
import type { AddressInfo } from "node:net";
import type { ActionFunctionArgs, LoaderFunctionArgs } from "@remix-run/node";

/**
 * Serves one Remix route's action (and loader) over real HTTP, so something outside the test — the QStash
 * stand-in — can deliver to it: each request becomes a Fetch `Request`, the returned (or thrown) `Response` is
 * written back as is. No Remix server, no build.
 */
type Handler<Args> = (args: Args) => Promise<Response> | Response;

export interface ServedRoute {
  /** Origin of the server, e.g. http://127.0.0.1:54321 */
  origin: string;
  close(): Promise<void>;
}

export async function serveRoute(route: {
  action: Handler<ActionFunctionArgs>;
  loader?: Handler<LoaderFunctionArgs>;
}): Promise<ServedRoute> {
  const server = http.createServer(async (req, res) => {
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
      }
      const method = req.method ?? "GET";
      const hasBody = method !== "GET" && method !== "HEAD";
      const request = new Request(`http://${req.headers.host}${req.url}`, {
        method,
        headers,
        body: hasBody ? Buffer.concat(chunks) : undefined,
      });
      const args = { request, params: {}, context: {} };
      let response: Response;
      try {
        response = hasBody || !route.loader ? await route.action(args) : await route.loader(args);
      } catch (thrown) {
        if (!(thrown instanceof Response)) throw thrown;
        response = thrown;
      }
      res.writeHead(response.status, Object.fromEntries(response.headers));
      res.end(Buffer.from(await response.arrayBuffer()));
    } catch (error) {
      res.writeHead(500, { "Content-Type": "text/plain" });
      res.end(String((error as Error).stack ?? error));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

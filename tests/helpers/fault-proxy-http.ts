import http from "node:http";
import { endToEndHeaders, readBody, type UpstreamReply } from "./fault-proxy-http-messages";
import { closeServer, listenOnLoopback, type ProxyTarget, resetSocket } from "./fault-proxy-sockets";

/**
 * What the HTTP fault proxy does with one request. Every fault but "pass" and a delay ends the client's
 * connection with a TCP RST, as a lost connection would; what differs is how far the request got:
 * - `reset`: nothing reaches the upstream;
 * - `reset-after-forward`: the whole request is written upstream, then the client is reset without waiting for
 *   the answer — the client's error races the upstream's work, as with a connection lost mid-flight;
 * - `drop-reply`: the upstream answers in full (its work is done), then the client is reset instead of answered;
 * - `hang`: the request is held at the proxy, unseen by the upstream, until `release()`;
 * - `hang-reply`: the upstream answers, and the answer is held until `release()`;
 * - `{ delayMs }`: the request waits that long, then passes.
 */
export type HttpFaultKind = "pass" | "hang" | "hang-reply" | "reset" | "reset-after-forward" | "drop-reply";
export type HttpFault = HttpFaultKind | { delayMs: number };

export interface ProxiedRequest {
  /** 1-based position of the request among all this proxy has seen, in arrival order. */
  n: number;
  /** 1-based id of the client connection it came on, and its position on that connection (keep-alive). */
  connection: number;
  indexOnConnection: number;
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** The whole request body, read before the rule is asked, so a rule can pick a command (e.g. only EVALSHA). */
  body: Buffer;
}

/** Decides each request's fault; called once per request, in arrival order per connection. */
export type HttpFaultRule = (n: number, request: ProxiedRequest) => HttpFault;

export interface HttpFaultProxyStats {
  connections: number;
  requests: number;
  /** Requests written to the upstream (faulted ones included), and answers read back from it. */
  forwarded: number;
  answeredUpstream: number;
  /** Requests and replies currently held by `hang`/`hang-reply`. */
  held: number;
  faults: Record<Exclude<HttpFaultKind, "pass"> | "delay", number>;
}

export interface HttpFaultProxy {
  url: string;
  port: number;
  /** Applies one fault to every request from now on (requests already being handled keep theirs). */
  setMode(fault: HttpFault): void;
  setRule(rule: HttpFaultRule): void;
  /**
   * Lets every held request or reply go. Held items stay held across `setMode`/`setRule`, so the test decides
   * when the "hung" store comes back. `"pass"` (default) forwards held requests — even when their client has
   * given up, as a stopped server that resumes still reads what was already sent to it — and delivers held
   * replies to clients still connected; `"reset"` resets their clients and forwards nothing more.
   * Returns how many were released.
   */
  release(how?: "pass" | "reset"): number;
  /** Resolves when every request not held has been dealt with, upstream side included. */
  settled(): Promise<void>;
  readonly stats: HttpFaultProxyStats;
  /** Stops listening, resets held and in-flight clients, aborts upstream requests; leaves no sockets or timers. */
  close(): Promise<void>;
}

/**
 * An HTTP/1.1 proxy that acts per request, so faults land on chosen requests even when one keep-alive
 * connection carries them all (as with the app's Redis REST transport). Node's HTTP server finds the request
 * boundaries; the raw socket under each request is what gets reset.
 *
 * Bodies are buffered both ways (a fault such as `drop-reply` needs the whole answer first), so streaming
 * responses such as `/subscribe` are not supported.
 */
export async function startHttpFaultProxy(options: { target: ProxyTarget }): Promise<HttpFaultProxy> {
  const { target } = options;
  let rule: HttpFaultRule = () => "pass";
  let closed = false;
  const stats: HttpFaultProxyStats = {
    connections: 0,
    requests: 0,
    forwarded: 0,
    answeredUpstream: 0,
    held: 0,
    faults: { hang: 0, "hang-reply": 0, reset: 0, "reset-after-forward": 0, "drop-reply": 0, delay: 0 },
  };
  // The proxy's own keep-alive pool, so the upstream sees few connections, as it would behind a real client.
  const agent = new http.Agent({ keepAlive: true });
  const upstreamRequests = new Set<http.ClientRequest>();
  const handlers = new Set<Promise<void>>();
  const held = new Set<(how: "pass" | "reset") => void>();
  const delays = new Set<() => void>();
  const connectionIds = new WeakMap<object, { id: number; requests: number }>();

  function forward(request: ProxiedRequest, onWritten?: () => void): Promise<UpstreamReply> {
    return new Promise((resolve, reject) => {
      if (closed) return reject(new Error("fault proxy closed"));
      const upstream = http.request(
        {
          host: target.host,
          port: target.port,
          method: request.method,
          path: request.path,
          agent,
          headers: {
            ...endToEndHeaders(request.headers),
            host: `${target.host}:${target.port}`,
            "content-length": request.body.length,
          },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("error", reject);
          response.on("end", () => {
            stats.answeredUpstream++;
            resolve({ status: response.statusCode ?? 502, headers: response.headers, body: Buffer.concat(chunks) });
          });
        },
      );
      upstreamRequests.add(upstream);
      upstream.on("close", () => upstreamRequests.delete(upstream));
      upstream.on("error", reject);
      upstream.on("finish", () => onWritten?.());
      stats.forwarded++;
      upstream.end(request.body);
    });
  }

  function answer(res: http.ServerResponse, reply: UpstreamReply) {
    if (res.destroyed || res.socket?.destroyed) return;
    res.writeHead(reply.status, { ...endToEndHeaders(reply.headers), "content-length": reply.body.length });
    res.end(reply.body);
  }

  function hold(): Promise<"pass" | "reset"> {
    stats.held++;
    return new Promise((resolve) => {
      const letGo = (how: "pass" | "reset") => {
        held.delete(letGo);
        stats.held--;
        resolve(how);
      };
      held.add(letGo);
    });
  }

  /** Resolves true after `ms`, or false at once if the proxy closes meanwhile, so close() leaves no timer. */
  function sleep(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const cancel = () => {
        clearTimeout(timer);
        delays.delete(cancel);
        resolve(false);
      };
      const timer = setTimeout(() => {
        delays.delete(cancel);
        resolve(true);
      }, ms);
      delays.add(cancel);
    });
  }

  async function handle(n: number, req: http.IncomingMessage, res: http.ServerResponse) {
    const socket = req.socket;
    const connection = connectionIds.get(socket)!;
    const indexOnConnection = ++connection.requests;
    const body = await readBody(req);
    const request: ProxiedRequest = {
      n,
      connection: connection.id,
      indexOnConnection,
      method: req.method ?? "GET",
      path: req.url ?? "/",
      headers: req.headers,
      body,
    };
    const fault = closed ? "reset" : rule(n, request);
    if (typeof fault === "object") stats.faults.delay++;
    else if (fault !== "pass") stats.faults[fault]++;

    switch (typeof fault === "object" ? "delay" : fault) {
      case "pass":
        return answer(res, await forward(request));
      case "delay":
        if (!(await sleep((fault as { delayMs: number }).delayMs))) return resetSocket(socket);
        return answer(res, await forward(request));
      case "reset":
        return resetSocket(socket);
      case "reset-after-forward": {
        const reply = forward(request, () => resetSocket(socket));
        await reply;
        return;
      }
      case "drop-reply":
        await forward(request);
        return resetSocket(socket);
      case "hang":
        if ((await hold()) === "reset" || closed) return resetSocket(socket);
        return answer(res, await forward(request));
      case "hang-reply": {
        const reply = await forward(request);
        if ((await hold()) === "reset") return resetSocket(socket);
        return answer(res, reply);
      }
    }
  }

  const server = http.createServer();
  server.on("connection", (socket) => {
    connectionIds.set(socket, { id: ++stats.connections, requests: 0 });
  });
  server.on("request", (req, res) => {
    const n = ++stats.requests;
    // A failed upstream exchange (refused, reset, or aborted by close) reaches the client as a reset too, rather
    // than as a 502 the client could mistake for an answer from the upstream itself.
    const handling = handle(n, req, res).catch(() => resetSocket(req.socket));
    handlers.add(handling);
    void handling.finally(() => handlers.delete(handling));
  });
  const port = await listenOnLoopback(server);

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    setMode(fault) {
      rule = () => fault;
    },
    setRule(next) {
      rule = next;
    },
    release(how = "pass") {
      const releasing = [...held];
      for (const letGo of releasing) letGo(how);
      return releasing.length;
    },
    async settled() {
      // Handlers that are waiting in hold() would never settle, so only the others are awaited; new work may
      // start while we wait (a released request, a client's next one), hence the loop.
      for (;;) {
        const pending = [...handlers];
        if (pending.length <= stats.held) return;
        await Promise.race([Promise.allSettled(pending), new Promise((resolve) => setTimeout(resolve, 10))]);
      }
    },
    get stats() {
      return { ...stats, faults: { ...stats.faults } };
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const cancel of [...delays]) cancel();
      for (const letGo of [...held]) letGo("reset");
      for (const upstream of upstreamRequests) upstream.destroy();
      const stopped = closeServer(server);
      server.closeAllConnections();
      await Promise.allSettled([...handlers]);
      await stopped;
      agent.destroy();
    },
  };
}

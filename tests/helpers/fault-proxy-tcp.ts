import net from "node:net";
import { closeServer, listenOnLoopback, type ProxyTarget, resetSocket } from "./fault-proxy-sockets";

/**
 * What the TCP fault proxy does with a new connection (it does not parse the protocol, so faults are per
 * connection; `pause()` and `resetAll()` act on the open ones):
 * - `pass`: relays both ways;
 * - `{ delayMs }`: relays both ways, every chunk that late (order kept) — a slow network or a slow server;
 * - `hang`: accepts and reads, forwards nothing either way until `resume()`;
 * - `reset`: accepts, then resets at once; the target never sees the connection.
 */
export type TcpFaultKind = "pass" | "hang" | "reset";
export type TcpFault = TcpFaultKind | { delayMs: number };
/** Decides each new connection's fault; `n` is its 1-based position among all this proxy has accepted. */
export type TcpFaultRule = (n: number) => TcpFault;

export interface TcpFaultProxyStats {
  connections: number;
  open: number;
  bytesToTarget: number;
  bytesToClient: number;
  /** Connections cut by `resetAll()`. */
  resetByTest: number;
  faults: { delay: number; hang: number; reset: number };
}

export interface TcpFaultProxy {
  host: string;
  port: number;
  /** The same connection URL (e.g. a `postgresql://` one) with its host and port pointed at the proxy. */
  urlFor(url: string): string;
  /** Applies to connections accepted from now on. */
  setMode(fault: TcpFault): void;
  setRule(rule: TcpFaultRule): void;
  /**
   * Freezes every open connection and every new one, both directions, holding what arrives — the target "hung"
   * (a stopped process, a stalled network). `resume()` delivers what was held, in order, and unfreezes them all,
   * `hang` connections included; a hung connection stays hung across `setMode` until then.
   */
  pause(): void;
  resume(): void;
  /** Resets every open connection on both sides, as a crash or failover would. Returns how many. */
  resetAll(): number;
  readonly stats: TcpFaultProxyStats;
  /** Stops listening and resets every connection; leaves no sockets or timers. */
  close(): Promise<void>;
}

// `null` stands for the sender's FIN, queued behind its data so the end is passed on in order.
type Chunk = { data: Buffer | null; dueAt: number };

/** One direction of one connection: an ordered queue that is drained unless frozen, each chunk when due. */
class Lane {
  private queue: Chunk[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly to: net.Socket,
    private readonly latencyMs: number,
    private readonly isFrozen: () => boolean,
    private readonly onBytes: (count: number) => void,
  ) {}

  push(data: Buffer | null) {
    this.queue.push({ data, dueAt: Date.now() + this.latencyMs });
    this.drain();
  }

  drain() {
    if (this.timer || this.isFrozen()) return;
    while (this.queue.length > 0) {
      const head = this.queue[0];
      const wait = head.dueAt - Date.now();
      if (wait > 0) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.drain();
        }, wait);
        return;
      }
      this.queue.shift();
      if (this.to.destroyed) continue;
      if (head.data === null) {
        this.to.end();
      } else {
        this.onBytes(head.data.length);
        this.to.write(head.data);
      }
    }
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue = [];
  }
}

/**
 * A byte-level TCP proxy for protocols it does not parse (the Postgres wire protocol). Enough for "Postgres is
 * slow / hung / gone" tests; faults on a chosen query would need the protocol parsed.
 */
export async function startTcpFaultProxy(options: { target: ProxyTarget }): Promise<TcpFaultProxy> {
  const { target } = options;
  let rule: TcpFaultRule = () => "pass";
  let paused = false;
  const stats: TcpFaultProxyStats = {
    connections: 0,
    open: 0,
    bytesToTarget: 0,
    bytesToClient: 0,
    resetByTest: 0,
    faults: { delay: 0, hang: 0, reset: 0 },
  };
  const links = new Set<{
    client: net.Socket;
    upstream: net.Socket;
    lanes: Lane[];
    hung: boolean;
    gone: Promise<void>;
  }>();

  // allowHalfOpen: a client's FIN is passed on in order rather than closing the pair early, so a request sent
  // just before the client's end still reaches the target (late, if frozen) as it would through a real network.
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const n = ++stats.connections;
    const fault = rule(n);
    if (fault === "reset") {
      stats.faults.reset++;
      return resetSocket(client);
    }
    if (typeof fault === "object") stats.faults.delay++;
    if (fault === "hang") stats.faults.hang++;
    const latencyMs = typeof fault === "object" ? fault.delayMs : 0;

    stats.open++;
    const upstream = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
    let markGone = () => {};
    const gone = new Promise<void>((resolve) => (markGone = resolve));
    const link = { client, upstream, lanes: [] as Lane[], hung: fault === "hang", gone };
    const frozen = () => paused || link.hung;
    const toTarget = new Lane(upstream, latencyMs, frozen, (count) => (stats.bytesToTarget += count));
    const toClient = new Lane(client, latencyMs, frozen, (count) => (stats.bytesToClient += count));
    link.lanes = [toTarget, toClient];
    links.add(link);

    client.on("data", (data: Buffer) => toTarget.push(data));
    client.on("end", () => toTarget.push(null));
    upstream.on("data", (data: Buffer) => toClient.push(data));
    upstream.on("end", () => toClient.push(null));
    // An abrupt end on one side is passed on as abruptly, so neither peer mistakes it for an orderly close.
    client.on("error", () => resetSocket(upstream));
    upstream.on("error", () => resetSocket(client));
    let closedSides = 0;
    const onClose = () => {
      if (++closedSides < 2) return;
      toTarget.stop();
      toClient.stop();
      links.delete(link);
      stats.open--;
      markGone();
    };
    client.on("close", onClose);
    upstream.on("close", onClose);
  });
  const port = await listenOnLoopback(server);

  return {
    host: "127.0.0.1",
    port,
    urlFor(url) {
      const proxied = new URL(url);
      proxied.hostname = "127.0.0.1";
      proxied.port = String(port);
      return proxied.toString();
    },
    setMode(fault) {
      rule = () => fault;
    },
    setRule(next) {
      rule = next;
    },
    pause() {
      paused = true;
    },
    resume() {
      paused = false;
      for (const link of links) {
        link.hung = false;
        for (const lane of link.lanes) lane.drain();
      }
    },
    resetAll() {
      const cut = [...links];
      for (const { client, upstream } of cut) {
        resetSocket(client);
        resetSocket(upstream);
      }
      stats.resetByTest += cut.length;
      return cut.length;
    },
    get stats() {
      return { ...stats, faults: { ...stats.faults } };
    },
    async close() {
      const stopped = closeServer(server);
      const open = [...links];
      for (const { client, upstream, lanes } of open) {
        for (const lane of lanes) lane.stop();
        resetSocket(client);
        resetSocket(upstream);
      }
      // Both sockets of a pair close a tick after their reset; waiting for them lets a test assert `open === 0`
      // and lets Vitest exit without a handle left behind.
      await Promise.all([stopped, ...open.map((link) => link.gone)]);
    },
  };
}

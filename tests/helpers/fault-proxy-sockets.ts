import type { Server } from "node:net";
import type { AddressInfo, Socket } from "node:net";

/** Where a fault proxy forwards to. */
export interface ProxyTarget {
  host: string;
  port: number;
}

/**
 * Binds to 127.0.0.1 on a port the OS picks: the proxies are for tests and benches on one machine, and a fixed
 * port would collide between test files running in parallel.
 */
export function listenOnLoopback(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * Aborts a connection with a TCP RST rather than a FIN, so the peer sees ECONNRESET — what a crashed process or
 * a middlebox dropping state looks like — instead of an orderly end it might take for a complete answer.
 */
export function resetSocket(socket: Socket): void {
  // resetAndDestroy on an already destroyed socket emits an error instead of doing nothing.
  if (!socket.destroyed) socket.resetAndDestroy();
}

/** Resolves when the server has stopped listening; connections must already be gone or going. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

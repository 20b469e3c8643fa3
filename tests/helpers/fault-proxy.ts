/**
 * Fault-injecting proxies for tests and the fault soak: put one between the code under test and a store, then
 * make the store slow, hung, unreachable or forgetful of its answers on cue. docs/testing-faults.md shows how.
 *
 * - `startHttpFaultProxy` acts per HTTP request (the Upstash REST endpoint, keep-alive included);
 * - `startTcpFaultProxy` acts per TCP connection, for protocols it does not parse (Postgres).
 */
export type { ProxyTarget } from "./fault-proxy-sockets";
export {
  startHttpFaultProxy,
  type HttpFault,
  type HttpFaultKind,
  type HttpFaultProxy,
  type HttpFaultProxyStats,
  type HttpFaultRule,
  type ProxiedRequest,
} from "./fault-proxy-http";
export {
  startTcpFaultProxy,
  type TcpFault,
  type TcpFaultKind,
  type TcpFaultProxy,
  type TcpFaultProxyStats,
  type TcpFaultRule,
} from "./fault-proxy-tcp";

/** The host and port of a URL, as a proxy target (e.g. `targetOf(process.env.UPSTASH_REDIS_REST_URL!)`). */
export function targetOf(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  const defaultPort = parsed.protocol === "https:" ? 443 : parsed.protocol.startsWith("postgres") ? 5432 : 80;
  return { host: parsed.hostname, port: parsed.port ? Number(parsed.port) : defaultPort };
}

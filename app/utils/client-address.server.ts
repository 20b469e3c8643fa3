import { isIPv4, isIPv6 } from "node:net";
import type { AppLoadContext } from "@remix-run/node";
import { getEnv } from "./env.server";

/**
 * The key the throttles count a client under.
 *
 * - `TRUST_PROXY=0` (the default, nothing in front of the app): the TCP peer's address, which `server.js` passes in
 *   the load context. `X-Forwarded-For` is ignored, since the client writes it.
 * - `TRUST_PROXY=N`: each trusted proxy appends the address it was connected from, so the client is the Nth entry
 *   of `X-Forwarded-For` from the right; anything further left was written by the client and could be anything.
 *   The socket's peer is then the nearest proxy, the same for every client, so it is never used.
 *
 * With no address to trust — a header shorter than the proxy chain (a request that bypassed it), or a route called
 * without our server's load context (the Vitest route tests) — the result is UNKNOWN_CLIENT_ADDRESS, and the
 * throttles leave out their per-address limits rather than put every client in one bucket.
 */
export const UNKNOWN_CLIENT_ADDRESS = "unknown-client";

export function clientAddress(
  request: Request,
  context: Pick<AppLoadContext, "socketAddress">,
  trustedProxies: number = getEnv().TRUST_PROXY,
): string {
  if (trustedProxies < 1) return context.socketAddress ? throttleKeyFor(context.socketAddress) : UNKNOWN_CLIENT_ADDRESS;
  const hops = (request.headers.get("X-Forwarded-For") ?? "")
    .split(",")
    .map((hop) => hop.trim())
    .filter(Boolean);
  if (hops.length < trustedProxies) return UNKNOWN_CLIENT_ADDRESS;
  return throttleKeyFor(hops[hops.length - trustedProxies]);
}

/**
 * IPv4 addresses count one by one (Node reports an IPv4 peer of a dual-stack socket as `::ffff:a.b.c.d`). An IPv6
 * client usually holds a whole /64 and can rotate through it at will, so it counts by its /64. Something that is
 * not an address (a misconfigured proxy) gets the fallback key.
 */
function throttleKeyFor(hop: string): string {
  const mapped = hop.toLowerCase().replace(/^::ffff:/, "");
  if (isIPv4(mapped)) return mapped;
  if (!isIPv6(hop)) return UNKNOWN_CLIENT_ADDRESS;
  const [head, tail] = hop.toLowerCase().split("::");
  const headGroups = head ? head.split(":") : [];
  const tailGroups = tail ? tail.split(":") : [];
  const groups = [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill("0"), ...tailGroups];
  return `${groups
    .slice(0, 4)
    .map((group) => parseInt(group, 16).toString(16))
    .join(":")}::/64`;
}

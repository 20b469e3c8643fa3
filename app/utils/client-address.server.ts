import { isIPv4, isIPv6 } from "node:net";
import { getEnv } from "./env.server";

/**
 * The key the throttles count a client under. remix-serve hands the app a Fetch Request without the socket's
 * address (and no load context to carry it), so the address can only come from `X-Forwarded-For`, and only as far
 * as the operator says proxies are trusted (`TRUST_PROXY`): each trusted proxy appends the address it was
 * connected from, so with N of them the client is the Nth entry from the right; anything further left was written
 * by the client and could be anything.
 *
 * With `TRUST_PROXY=0` (or a header shorter than the proxy chain, i.e. a request that bypassed it) there is no
 * address to trust: the throttles then leave out their per-address limits rather than put every client in one
 * bucket (see the login and sign-up throttles). That is why production behind a proxy must set TRUST_PROXY.
 */
export const UNKNOWN_CLIENT_ADDRESS = "unknown-client";

export function clientAddress(request: Request, trustedProxies: number = getEnv().TRUST_PROXY): string {
  if (trustedProxies < 1) return UNKNOWN_CLIENT_ADDRESS;
  const hops = (request.headers.get("X-Forwarded-For") ?? "")
    .split(",")
    .map((hop) => hop.trim())
    .filter(Boolean);
  if (hops.length < trustedProxies) return UNKNOWN_CLIENT_ADDRESS;
  return throttleKeyFor(hops[hops.length - trustedProxies]);
}

/**
 * IPv4 addresses count one by one. An IPv6 client usually holds a whole /64 and can rotate through it at will, so
 * it counts by its /64. Something that is not an address (a misconfigured proxy) gets the fallback key.
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

import ipaddr from "ipaddr.js";

/**
 * Which IP addresses a sheet's source URL may reach. A customer names the URL and we fetch it from inside our
 * network, so anything but the public internet is refused: loopback, RFC 1918 and CGNAT space, link-local (the
 * cloud metadata service at 169.254.169.254 lives there), unique-local IPv6 (AWS's fd00:ec2::254 metadata),
 * multicast, broadcast, unspecified, documentation and other reserved ranges, and every IPv6 form that carries one
 * of those IPv4 addresses (IPv4-mapped, NAT64, 6to4, Teredo).
 *
 * It is an allow-list: only what ipaddr.js calls "unicast" passes, and for IPv6 only inside 2000::/3, the block
 * IANA hands out as global unicast. A range a future RFC carves out, or an odd legacy form such as the IPv4-compatible
 * `::7f00:1`, is therefore refused rather than let through.
 */
export interface SourceAddressPolicy {
  /** Loopback (127.0.0.0/8, ::1) is allowed: tests and `npm run dev` serve sources from this machine. */
  allowLoopback: boolean;
}

export type AddressVerdict = { allowed: true; address: string } | { allowed: false; address: string; reason: string };

const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR("2000::/3");

const RANGE_REASONS: Record<string, string> = {
  loopback: "a loopback address",
  private: "a private (RFC 1918) address",
  carrierGradeNat: "a carrier-grade NAT (100.64.0.0/10) address",
  linkLocal: "a link-local address (cloud metadata services live there)",
  uniqueLocal: "a private IPv6 (unique local, fc00::/7) address",
  unspecified: "the unspecified address",
  multicast: "a multicast address",
  broadcast: "the broadcast address",
  rfc6052: "a NAT64 address (it embeds an IPv4 address)",
  "6to4": "a 6to4 address (it embeds an IPv4 address)",
  teredo: "a Teredo address (it embeds an IPv4 address)",
};

/**
 * The verdict on one resolved address. IPv4-mapped IPv6 (`::ffff:10.0.0.1`) is judged as the IPv4 address it
 * carries, which is where the connection would go.
 */
export function checkSourceAddress(input: string, policy: SourceAddressPolicy): AddressVerdict {
  const literal = input.replace(/^\[|\]$/g, "");
  // Zone ids (fe80::1%eth0) name an interface: never a public address.
  if (literal.includes("%")) return { allowed: false, address: literal, reason: "a link-local address with a zone" };
  if (!ipaddr.isValid(literal)) return { allowed: false, address: literal, reason: "not an IP address" };
  const address = ipaddr.process(literal);
  const shown = address.toString();
  const range = address.range();
  if (range === "loopback" && policy.allowLoopback) return { allowed: true, address: shown };
  if (range !== "unicast") {
    return { allowed: false, address: shown, reason: RANGE_REASONS[range] ?? `a reserved address (${range})` };
  }
  if (address.kind() === "ipv6" && !(address as ipaddr.IPv6).match(GLOBAL_UNICAST_V6)) {
    return { allowed: false, address: shown, reason: "an IPv6 address outside the global unicast block (2000::/3)" };
  }
  return { allowed: true, address: shown };
}

/** Whether a URL's host is an IP address rather than a name (IPv6 in brackets, as URL.hostname gives it). */
export function isIpLiteral(hostname: string): boolean {
  return ipaddr.isValid(hostname.replace(/^\[|\]$/g, ""));
}

/** Loopback hosts as a URL names them: `localhost`, `127.x.y.z` or `[::1]`. */
export function isLoopbackHostname(hostname: string): boolean {
  if (hostname === "localhost") return true;
  const literal = hostname.replace(/^\[|\]$/g, "");
  return ipaddr.isValid(literal) && ipaddr.process(literal).range() === "loopback";
}

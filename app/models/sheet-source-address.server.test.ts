import { describe, expect, it } from "vitest";
import { checkSourceAddress, isIpLiteral, isLoopbackHostname } from "./sheet-source-address.server";

const strict = { allowLoopback: false };

describe("checkSourceAddress", () => {
  it.each(["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:93.184.216.34", "[2a00:1450::1]"])(
    "allows the public address %s",
    (address) => {
      expect(checkSourceAddress(address, strict).allowed).toBe(true);
    },
  );

  it.each([
    ["127.0.0.1", "loopback"],
    ["::1", "loopback"],
    ["10.0.0.1", "private (RFC 1918)"],
    ["172.31.255.255", "private (RFC 1918)"],
    ["192.168.0.1", "private (RFC 1918)"],
    ["100.64.0.1", "carrier-grade NAT"],
    ["100.127.255.255", "carrier-grade NAT"],
    ["169.254.169.254", "link-local"],
    ["fe80::1", "link-local"],
    ["fd00:ec2::254", "unique local"],
    ["fc00::1", "unique local"],
    ["0.0.0.0", "unspecified"],
    ["::", "unspecified"],
    ["224.0.0.251", "multicast"],
    ["ff02::1", "multicast"],
    ["255.255.255.255", "broadcast"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:169.254.169.254", "link-local"],
    ["::ffff:c0a8:0001", "private"],
    ["64:ff9b::7f00:1", "NAT64"],
    ["2002:7f00:1::", "6to4"],
    ["::7f00:1", "global unicast"],
    ["198.18.0.1", "reserved"],
    ["240.0.0.1", "reserved"],
    ["fe80::1%eth0", "zone"],
    ["example.com", "not an IP address"],
  ])("refuses %s (%s)", (address, reason) => {
    const verdict = checkSourceAddress(address, strict);
    expect(verdict.allowed).toBe(false);
    expect(verdict.allowed ? "" : verdict.reason).toContain(reason);
  });

  it("allows loopback, and only loopback, when the policy says so", () => {
    const local = { allowLoopback: true };
    expect(checkSourceAddress("127.0.0.1", local).allowed).toBe(true);
    expect(checkSourceAddress("::ffff:127.0.0.1", local).allowed).toBe(true);
    expect(checkSourceAddress("10.0.0.1", local).allowed).toBe(false);
    expect(checkSourceAddress("169.254.169.254", local).allowed).toBe(false);
  });
});

describe("host names", () => {
  it("tells IP literals and loopback hosts apart from names", () => {
    expect(isIpLiteral("10.0.0.1")).toBe(true);
    expect(isIpLiteral("[::1]")).toBe(true);
    expect(isIpLiteral("example.com")).toBe(false);
    expect(isLoopbackHostname("localhost")).toBe(true);
    expect(isLoopbackHostname("127.9.9.9")).toBe(true);
    expect(isLoopbackHostname("[::1]")).toBe(true);
    expect(isLoopbackHostname("example.com")).toBe(false);
  });
});

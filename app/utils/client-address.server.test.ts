import { describe, expect, it } from "vitest";
import { clientAddress, UNKNOWN_CLIENT_ADDRESS } from "./client-address.server";
import { parseEnv } from "./env.server";

const withForwardedFor = (value?: string) =>
  new Request("http://localhost/login", value === undefined ? {} : { headers: { "X-Forwarded-For": value } });

const noContext = {};

describe("clientAddress", () => {
  it("without TRUST_PROXY takes the socket's address and ignores X-Forwarded-For, which the client writes", () => {
    expect(clientAddress(withForwardedFor("203.0.113.9"), { socketAddress: "198.51.100.7" }, 0)).toBe("198.51.100.7");
    expect(clientAddress(withForwardedFor(), { socketAddress: "::ffff:127.0.0.1" }, 0)).toBe("127.0.0.1");
    expect(clientAddress(withForwardedFor(), { socketAddress: "2001:db8:0:1:aaaa::1" }, 0)).toBe("2001:db8:0:1::/64");
  });

  it("without TRUST_PROXY and without a socket address (a route called directly) knows no address", () => {
    expect(clientAddress(withForwardedFor("203.0.113.9"), noContext, 0)).toBe(UNKNOWN_CLIENT_ADDRESS);
  });

  it("takes the entry the trusted proxies wrote, never one the client prepended, nor the proxy's socket", () => {
    const proxy = { socketAddress: "10.0.0.1" };
    expect(clientAddress(withForwardedFor("198.51.100.1, 203.0.113.9"), proxy, 1)).toBe("203.0.113.9");
    expect(clientAddress(withForwardedFor("198.51.100.1, 203.0.113.9, 10.0.0.2"), proxy, 2)).toBe("203.0.113.9");
  });

  it("falls back when the header is shorter than the proxy chain or not an address", () => {
    const proxy = { socketAddress: "10.0.0.1" };
    expect(clientAddress(withForwardedFor(), proxy, 1)).toBe(UNKNOWN_CLIENT_ADDRESS);
    expect(clientAddress(withForwardedFor("203.0.113.9"), proxy, 2)).toBe(UNKNOWN_CLIENT_ADDRESS);
    expect(clientAddress(withForwardedFor("not-an-ip"), proxy, 1)).toBe(UNKNOWN_CLIENT_ADDRESS);
  });

  it("counts an IPv6 client by its /64 and an IPv4-mapped one as IPv4", () => {
    expect(clientAddress(withForwardedFor("2001:db8:0:1:aaaa::1"), noContext, 1)).toBe("2001:db8:0:1::/64");
    expect(clientAddress(withForwardedFor("2001:db8::1:bbbb"), noContext, 1)).toBe("2001:db8:0:0::/64");
    expect(clientAddress(withForwardedFor("::ffff:203.0.113.9"), noContext, 1)).toBe("203.0.113.9");
  });
});

describe("TRUST_PROXY", () => {
  const base = {
    DATABASE_URL: "postgresql://localhost/x",
    UPSTASH_REDIS_REST_URL: "http://127.0.0.1:8079",
    UPSTASH_REDIS_REST_TOKEN: "t",
    QSTASH_URL: "http://127.0.0.1:8080",
    QSTASH_TOKEN: "t",
    QSTASH_CURRENT_SIGNING_KEY: "k",
    QSTASH_NEXT_SIGNING_KEY: "k",
    APP_URL: "http://localhost:3000",
    SESSION_SECRET: "x".repeat(32),
  };

  it("defaults to 0 and accepts a small count of proxies", () => {
    expect(parseEnv(base).TRUST_PROXY).toBe(0);
    expect(parseEnv({ ...base, TRUST_PROXY: "2" }).TRUST_PROXY).toBe(2);
  });

  it("refuses anything but a whole number from 0 to 10, naming the variable", () => {
    for (const bad of ["-1", "1.5", "true", "11"]) {
      expect(() => parseEnv({ ...base, TRUST_PROXY: bad })).toThrow(/TRUST_PROXY/);
    }
  });
});

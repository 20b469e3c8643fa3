import http from "node:http";
import type { AddressInfo } from "node:net";
import { errors, Redis } from "@upstash/redis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createKeepAliveRequester, RedisTimeoutError } from "~/utils/redis-http.server";
import { type HttpFaultProxy, startHttpFaultProxy, targetOf } from "./helpers/fault-proxy";

/**
 * The keep-alive transport under the app's Redis client. Against the REST stand-in it must give the SDK exactly
 * what the SDK's own transport gives; against a scripted fake Upstash it must speak the protocol's details
 * (headers, base64 replies, sync token, errors) and reuse its connection.
 */
const token = () => process.env.UPSTASH_REDIS_REST_TOKEN!;
const viaStandIn = () =>
  new Redis(createKeepAliveRequester({ url: process.env.UPSTASH_REDIS_REST_URL!, token: token() }));

describe("keep-alive requester against the REST stand-in", () => {
  it("returns the same values as the SDK's own transport, text that is not ASCII included", async () => {
    const redis = viaStandIn();
    const stock = new Redis({ url: process.env.UPSTASH_REDIS_REST_URL!, token: token(), enableTelemetry: false });
    const value = { name: "Chloé ✓ 🚀", n: 3, nested: [1, "deux", null] };
    expect(await redis.set("http:json", value)).toBe("OK");
    expect(await redis.set("http:text", "plain text, not JSON: {")).toBe("OK");
    await redis.set("http:number", 42);
    for (const client of [redis, stock]) {
      expect(await client.get("http:json")).toEqual(value);
      expect(await client.get("http:text")).toBe("plain text, not JSON: {");
      expect(await client.get("http:number")).toBe(42);
      expect(await client.get("http:missing")).toBeNull();
      expect(await client.mget("http:json", "http:missing", "http:number")).toEqual([value, null, 42]);
    }
    const pipeline = redis.pipeline();
    pipeline.incr("http:counter").incr("http:counter").get("http:json");
    expect(await pipeline.exec()).toEqual([1, 2, value]);
  });

  it("turns Redis error replies into UpstashErrors, per command in a pipeline", async () => {
    const redis = viaStandIn();
    await redis.hset("http:hash", { a: 1 });
    await expect(redis.incr("http:hash")).rejects.toThrow(/WRONGTYPE/);
    await expect(redis.incr("http:hash")).rejects.toBeInstanceOf(errors.UpstashError);
    const replies = await redis.pipeline().incr("http:hash").incr("http:ok").exec({ keepErrors: true });
    expect(replies[0].error).toMatch(/WRONGTYPE/);
    expect(replies[1]).toMatchObject({ result: 1 });
  });

  it("runs scripts and falls back from EVALSHA on NOSCRIPT", async () => {
    const redis = viaStandIn();
    // A comment unique to this run, so Redis has never seen the script and the first EVALSHA meets NOSCRIPT.
    const script = redis.createScript<number>(`-- ${Math.random()}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])`);
    expect(await script.exec(["http:scripted"], ["5"])).toBe(5);
    expect(await script.exec(["http:scripted"], ["5"])).toBe(10);
  });
});

describe("keep-alive requester speaking the protocol", () => {
  const received: { path: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
  let connections = 0;
  let reply: (path: string, body: string) => { status: number; body: unknown; syncToken?: string };
  let server: http.Server;
  let url: string;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (chunk) => (body += chunk));
      req.on("end", () => {
        received.push({ path: req.url ?? "", headers: req.headers, body });
        const answer = reply(req.url ?? "", body);
        const headers: Record<string, string> = { "Content-Type": "application/json" };
        if (answer.syncToken) headers["upstash-sync-token"] = answer.syncToken;
        res.writeHead(answer.status, headers);
        res.end(JSON.stringify(answer.body));
      });
    });
    server.on("connection", () => connections++);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it("sends the token and base64 encoding, decodes the reply, and reuses one connection", async () => {
    received.length = 0;
    connections = 0;
    const b64 = (text: string) => Buffer.from(text).toString("base64");
    reply = (path) =>
      path === "/pipeline"
        ? { status: 200, body: [{ result: b64("héllo") }, { result: 7 }, { result: [b64("a"), null, 3] }] }
        : { status: 200, body: { result: b64('{"x":"ünï"}') } };
    const redis = new Redis(createKeepAliveRequester({ url, token: "secret" }));
    expect(await redis.get("k")).toEqual({ x: "ünï" });
    expect(await redis.get("k")).toEqual({ x: "ünï" });
    expect(await redis.pipeline().get("a").incr("b").mget("c", "d", "e").exec()).toEqual(["héllo", 7, ["a", null, 3]]);
    expect(connections).toBe(1);
    expect(received.map((r) => r.path)).toEqual(["/", "/", "/pipeline"]);
    expect(received[0].headers).toMatchObject({
      authorization: "Bearer secret",
      "content-type": "application/json",
      "upstash-encoding": "base64",
    });
    expect(JSON.parse(received[0].body)).toEqual(["get", "k"]);
  });

  it("sends back the sync token of the previous answer (read your writes)", async () => {
    received.length = 0;
    let n = 0;
    reply = () => ({ status: 200, body: { result: "OK" }, syncToken: `token-${++n}` });
    const redis = new Redis(createKeepAliveRequester({ url, token: "secret" }));
    await redis.set("a", 1);
    await redis.set("a", 2);
    await redis.set("a", 3);
    expect(received.map((r) => r.headers["upstash-sync-token"])).toEqual([undefined, "token-1", "token-2"]);
  });

  it("fails a request the server refused with the server's error", async () => {
    reply = () => ({ status: 401, body: { error: "Unauthorized: missing or wrong bearer token" } });
    const redis = new Redis(createKeepAliveRequester({ url, token: "wrong" }));
    await expect(redis.get("k")).rejects.toThrow(/Unauthorized: missing or wrong bearer token, command was/);
    reply = () => ({ status: 502, body: "<html>bad gateway</html>" });
    await expect(redis.get("k")).rejects.toBeInstanceOf(errors.UpstashError);
  });

  it("retries a request that failed at the network level, as configured", async () => {
    const attempts: number[] = [];
    const redis = new Redis(
      createKeepAliveRequester({
        url: "http://127.0.0.1:1",
        token: "x",
        retry: { retries: 2, backoff: (attempt) => (attempts.push(attempt), 1) },
      }),
    );
    await expect(redis.get("k")).rejects.toThrow(/ECONNREFUSED/);
    expect(attempts).toEqual([0, 1]);
  });
});

describe("keep-alive requester: deadline and resend policy", () => {
  let proxy: HttpFaultProxy;
  beforeEach(async () => {
    proxy = await startHttpFaultProxy({ target: targetOf(process.env.UPSTASH_REDIS_REST_URL!) });
  });
  afterEach(() => proxy.close());

  const client = (timeoutMs: number, retry = { retries: 1, backoff: (_attempt: number) => 10 }) =>
    new Redis(createKeepAliveRequester({ url: proxy.url, token: token(), timeoutMs, retry }));

  it("fails a request Redis does not answer at its deadline, then answers on a fresh connection", async () => {
    const redis = client(200);
    await redis.set("deadline:warm", 1);
    proxy.setMode("hang");
    const started = performance.now();
    const error = await redis.get("deadline:k").catch((caught: unknown) => caught);
    const elapsed = performance.now() - started;
    expect(error).toBeInstanceOf(RedisTimeoutError);
    expect((error as Error).message).toMatch(/did not answer within 200 ms/);
    expect(elapsed).toBeGreaterThanOrEqual(195);
    expect(elapsed).toBeLessThan(400);
    // A timed-out request is never resent: the deadline is for all attempts together.
    expect(proxy.stats.held).toBe(1);
    expect(proxy.stats.requests).toBe(2);

    proxy.setMode("pass");
    expect(await redis.get("deadline:warm")).toBe(1);
    // The hung socket was destroyed, not returned to the pool with a reply still to come.
    expect(proxy.stats.connections).toBe(2);
  });

  it("resends once, at once, a request whose reply was lost, and gives the caller the second answer", async () => {
    const redis = client(1000);
    proxy.setRule((n) => (n === 1 ? "drop-reply" : "pass"));
    const started = performance.now();
    expect(await redis.set("deadline:resent", "v")).toBe("OK");
    expect(performance.now() - started).toBeLessThan(200);
    expect(proxy.stats.requests).toBe(2);
    expect(proxy.stats.faults["drop-reply"]).toBe(1);
  });

  it("gives up after one resend", async () => {
    const redis = client(1000);
    proxy.setMode("drop-reply");
    await expect(redis.get("deadline:lost")).rejects.toThrow(/ECONNRESET|socket hang up/);
    expect(proxy.stats.requests).toBe(2);
  });

  it("does not resend when the pause before it would cross the deadline", async () => {
    const redis = client(100, { retries: 1, backoff: () => 200 });
    proxy.setMode("drop-reply");
    await expect(redis.get("deadline:late")).rejects.toThrow(/ECONNRESET|socket hang up/);
    expect(proxy.stats.requests).toBe(1);
  });

  it("leaves the deadline out when none is configured", async () => {
    const redis = new Redis(createKeepAliveRequester({ url: proxy.url, token: token() }));
    proxy.setMode({ delayMs: 300 });
    expect(await redis.set("deadline:none", 1)).toBe("OK");
  });
});

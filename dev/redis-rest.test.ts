import net from "node:net";
import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_REDIS_URL } from "../tests/setup/test-env";
import { startRedisRest, type RedisRestServer } from "./redis-rest";
import { startStandInWithClient, testRedisDb } from "./redis-rest.test-setup";

const token = "redis-rest-test-token";
const db = testRedisDb();
let rest: RedisRestServer;
let redis: Redis;

beforeAll(async () => {
  ({ rest, redis } = await startStandInWithClient(token));
});
afterAll(() => rest.close());

describe("the Upstash REST stand-in with @upstash/redis", () => {
  it("round-trips non-ASCII strings, numbers and objects", async () => {
    const text = "Grüße aus Zürich — 東京 🚀 \u0000 end";
    await redis.set("rrt:text", text);
    expect(await redis.get("rrt:text")).toBe(text);

    await redis.set("rrt:number", 42.5);
    expect(await redis.get("rrt:number")).toBe(42.5);

    const object = { plan: "pro", limit: 10_000, tags: ["ä", "b"], nested: { ok: true } };
    await redis.set("rrt:object", object, { ex: 60 });
    expect(await redis.get("rrt:object")).toEqual(object);
    expect(await redis.ttl("rrt:object")).toBeGreaterThan(0);

    expect(await redis.get("rrt:missing")).toBeNull();
  });

  it("increments atomically under concurrency", async () => {
    await Promise.all(Array.from({ length: 200 }, () => redis.incr("rrt:counter")));
    expect(await redis.get("rrt:counter")).toBe(200);
    expect(await redis.incrby("rrt:counter", 5)).toBe(205);
  });

  it("runs a pipeline and returns one result per command", async () => {
    const results = await redis
      .pipeline()
      .set("rrt:p1", "one")
      .incr("rrt:p2")
      .get("rrt:p1")
      .mget("rrt:p1", "rrt:p2", "rrt:p-missing")
      .exec();
    expect(results).toEqual(["OK", 1, "one", ["one", 1, null]]);
  });

  it("keeps a MULTI/EXEC block atomic against concurrent readers", async () => {
    await redis.mset({ "rrt:a": 0, "rrt:b": 0 });
    const writes = Array.from({ length: 100 }, () => redis.multi().incr("rrt:a").incr("rrt:b").exec());
    const reads = Array.from({ length: 100 }, () => redis.mget<number[]>("rrt:a", "rrt:b"));
    const [, snapshots] = await Promise.all([Promise.all(writes), Promise.all(reads)]);
    for (const [a, b] of snapshots) expect(a).toBe(b);
    expect(await redis.mget("rrt:a", "rrt:b")).toEqual([100, 100]);
  });

  it("evaluates Lua with EVAL, SCRIPT LOAD and EVALSHA", async () => {
    const script = "local v = redis.call('INCRBY', KEYS[1], ARGV[1]); return {v, ARGV[2]}";
    expect(await redis.eval(script, ["rrt:lua"], ["3", "tag-ü"])).toEqual([3, "tag-ü"]);

    const sha = await redis.scriptLoad(script);
    expect(sha).toMatch(/^[0-9a-f]{40}$/);
    expect(await redis.evalsha(sha, ["rrt:lua"], ["4", "again"])).toEqual([7, "again"]);
    await expect(redis.evalsha("0".repeat(40), [], [])).rejects.toThrow(/NOSCRIPT/);

    const counted = redis.createScript<number>("return redis.call('INCR', KEYS[1])");
    expect(await counted.exec(["rrt:lua-script"], [])).toBe(1);
    expect(await counted.exec(["rrt:lua-script"], [])).toBe(2);
  });

  it("scans with MATCH and COUNT until the cursor comes back to 0", async () => {
    const keys = Array.from({ length: 250 }, (_, i) => `rrt:scan:quota:${i}`);
    await redis.mset(Object.fromEntries(keys.map((key) => [key, 1])));
    await redis.set("rrt:scan:other", 1);

    const seen = new Set<string>();
    let cursor: string | number = 0;
    let pages = 0;
    do {
      const [next, page]: [string, string[]] = await redis.scan(cursor, { match: "rrt:scan:quota:*", count: 50 });
      for (const key of page) seen.add(key);
      cursor = next;
      pages++;
    } while (String(cursor) !== "0");
    expect(pages).toBeGreaterThan(1);
    expect([...seen].sort()).toEqual([...keys].sort());
  });

  it("turns a Redis error reply into a thrown error", async () => {
    await redis.set("rrt:not-a-number", "abc");
    await expect(redis.incr("rrt:not-a-number")).rejects.toThrow(/not an integer/);
    expect(await redis.get("rrt:not-a-number")).toBe("abc");
  });

  it("refuses a wrong token with 401", async () => {
    const intruder = new Redis({ url: rest.url, token: "wrong", enableTelemetry: false });
    await expect(intruder.get("rrt:text")).rejects.toThrow(/Unauthorized/);
    const response = await fetch(rest.url, {
      method: "POST",
      headers: { Authorization: "Bearer wrong", "Content-Type": "application/json" },
      body: JSON.stringify(["PING"]),
    });
    expect(response.status).toBe(401);
  });
});

describe("when Redis goes away", () => {
  /** A TCP relay in front of the real Redis that the test can cut, since the shared Redis must stay up. */
  async function startRelay() {
    const target = new URL(TEST_REDIS_URL);
    const sockets = new Set<net.Socket>();
    let frozen = false;
    const server = net.createServer((client) => {
      const upstream = net.connect(Number(target.port || 6379), target.hostname);
      sockets.add(client).add(upstream);
      client.pipe(upstream);
      // A frozen relay keeps the connection open but passes no reply on: Redis "accepts and never answers".
      upstream.on("data", (chunk: Buffer) => frozen || client.write(chunk));
      const drop = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on("error", drop).on("close", drop);
      upstream.on("error", drop).on("close", drop);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as net.AddressInfo;
    return {
      url: `redis://127.0.0.1:${port}`,
      freeze: () => {
        frozen = true;
      },
      cut: async () => {
        for (const socket of sockets) socket.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  }

  it("fails requests quickly instead of hanging", async () => {
    const relay = await startRelay();
    const cutOff = await startRedisRest({ redisUrl: relay.url, token, db, poolSize: 2 });
    const client = new Redis({ url: cutOff.url, token, enableTelemetry: false, retry: false });
    try {
      expect(await client.ping()).toBe("PONG");
      await relay.cut();
      const started = Date.now();
      await expect(client.incr("rrt:unreachable")).rejects.toThrow(/Redis unavailable/);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await cutOff.close();
    }
  });

  it("gives up on a command Redis never answers after the command timeout", async () => {
    const relay = await startRelay();
    const stalled = await startRedisRest({ redisUrl: relay.url, token, db, poolSize: 1, commandTimeoutMs: 300 });
    const client = new Redis({ url: stalled.url, token, enableTelemetry: false, retry: false });
    try {
      expect(await client.ping()).toBe("PONG");
      relay.freeze();
      const started = Date.now();
      await expect(client.incr("rrt:stalled")).rejects.toThrow(/Redis unavailable.*timed out/);
      await expect(client.pipeline().get("rrt:stalled").get("rrt:stalled").exec()).rejects.toThrow(/timed out/);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await stalled.close();
      await relay.cut();
    }
  });

  it("refuses to start when Redis does not answer", async () => {
    const started = Date.now();
    await expect(startRedisRest({ redisUrl: "redis://127.0.0.1:9", token, db })).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

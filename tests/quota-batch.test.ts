import { Redis, type Requester } from "@upstash/redis";
import { Redis as IORedis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { consumeQuota, MAX_QUOTA_BATCH, quotaBatchStats } from "~/models/quota.server";
import { getDb } from "~/utils/db.server";
import { quotaKey } from "~/utils/period";
import { createKeepAliveRequester } from "~/utils/redis-http.server";
import { createTestUser } from "./factories";
import { TEST_REDIS_URL } from "./setup/test-env";

/**
 * The quota batcher: concurrent checks share one pipelined round trip, and sharing it changes nothing about who
 * is admitted or what each caller is told. Each test builds its own client over a requester that counts HTTP
 * requests, so the counts are this test's alone.
 */
const db = getDb();
const raw = new IORedis(TEST_REDIS_URL, { db: Number(process.env.TEST_REDIS_DB) });
afterAll(() => raw.disconnect());

const NOW = new Date("2026-11-15T12:00:00Z");

/** A client whose HTTP requests are counted, each taking at least `latencyMs` (a store farther away). */
function countingRedis(url = process.env.UPSTASH_REDIS_REST_URL!, latencyMs = 0) {
  const inner = createKeepAliveRequester({ url, token: process.env.UPSTASH_REDIS_REST_TOKEN!, retry: undefined });
  const paths: string[] = [];
  const requester: Requester = {
    request: async (req) => {
      paths.push((req.path ?? []).join("/") || "/");
      if (latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, latencyMs));
      return inner.request(req);
    },
  };
  return { redis: new Redis(requester), paths };
}

async function makeOwner(monthlyLimit: number) {
  const user = await createTestUser(db, { monthlyLimit });
  return { userId: user.id, monthlyLimit: user.monthlyLimit };
}

describe("quota batching", () => {
  it("sends 200 concurrent checks as one pipeline and still admits exactly the remaining 50", async () => {
    const { redis, paths } = countingRedis();
    const owner = await makeOwner(100);
    await raw.set(quotaKey(owner.userId, "2026-11"), "50");
    const before = { ...quotaBatchStats };
    const results = await Promise.all(Array.from({ length: 200 }, () => consumeQuota(redis, db, owner, NOW)));
    expect(paths).toEqual(["pipeline"]);
    expect(quotaBatchStats.batches - before.batches).toBe(1);
    expect(quotaBatchStats.calls - before.calls).toBe(200);
    expect(results.filter((r) => r.allowed)).toHaveLength(50);
    // Redis runs the batch in call order, so the first 50 callers are the ones admitted, each told its own count.
    expect(results.slice(0, 50).map((r) => r.used)).toEqual(Array.from({ length: 50 }, (_, i) => 51 + i));
    expect(results.slice(50).every((r) => !r.allowed && r.remaining === 0)).toBe(true);
    expect(await raw.get(quotaKey(owner.userId, "2026-11"))).toBe("100");
  });

  it("splits a burst larger than the batch limit into several pipelines", async () => {
    const { redis, paths } = countingRedis();
    const owner = await makeOwner(10_000);
    const calls = MAX_QUOTA_BATCH * 2 + 1;
    // The counter exists, so no call takes the missing-counter path.
    await raw.set(quotaKey(owner.userId, "2026-11"), "0");
    const results = await Promise.all(Array.from({ length: calls }, () => consumeQuota(redis, db, owner, NOW)));
    // Two full batches, and the one call left over goes alone.
    expect(paths).toEqual(["pipeline", "pipeline", "/"]);
    expect(results.every((r) => r.allowed)).toBe(true);
    expect(await raw.get(quotaKey(owner.userId, "2026-11"))).toBe(String(calls));
  });

  it("holds checks of later loop turns while the most round trips are in flight, and sends them together", async () => {
    // Loopback answers within a turn or two; 50 ms is a round trip to a store in another region.
    const { redis, paths } = countingRedis(undefined, 50);
    const owner = await makeOwner(10_000);
    await raw.set(quotaKey(owner.userId, "2026-11"), "0");
    // Ten turns of the event loop, five checks each, all while the first turns' pipelines are on their way: without
    // holding, each turn would send a pipeline of its own.
    const pending: Promise<unknown>[] = [];
    for (let turn = 0; turn < 10; turn++) {
      for (let i = 0; i < 5; i++) pending.push(consumeQuota(redis, db, owner, NOW));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(pending);
    // The first four turns' batches (four round trips may be out at once), then everything that came while they
    // were out (a slow machine may split that once).
    expect(paths.length).toBeLessThanOrEqual(6);
    expect(paths.every((path) => path === "pipeline")).toBe(true);
    expect(await raw.get(quotaKey(owner.userId, "2026-11"))).toBe("50");
  });

  it("sends a lone check as a single EVALSHA, not a pipeline", async () => {
    const { redis, paths } = countingRedis();
    const owner = await makeOwner(10);
    await raw.set(quotaKey(owner.userId, "2026-11"), "3");
    expect(await consumeQuota(redis, db, owner, NOW)).toMatchObject({ allowed: true, used: 4 });
    expect(paths).toEqual(["/"]);
  });

  it("keeps users apart in one batch: each gets its own answer, and one failing key fails only its caller", async () => {
    const { redis, paths } = countingRedis();
    const [full, open, broken] = await Promise.all([makeOwner(5), makeOwner(5), makeOwner(5)]);
    await raw.set(quotaKey(full.userId, "2026-11"), "5");
    await raw.set(quotaKey(open.userId, "2026-11"), "1");
    // A counter of the wrong type makes that user's script fail with WRONGTYPE inside the shared pipeline.
    await raw.hset(quotaKey(broken.userId, "2026-11"), "x", "1");
    const settled = await Promise.allSettled([
      consumeQuota(redis, db, full, NOW),
      consumeQuota(redis, db, broken, NOW),
      consumeQuota(redis, db, open, NOW),
    ]);
    expect(paths).toEqual(["pipeline"]);
    expect(settled[0]).toMatchObject({ status: "fulfilled", value: { allowed: false, used: 5 } });
    expect(settled[1].status).toBe("rejected");
    expect(String((settled[1] as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/);
    expect(settled[2]).toMatchObject({ status: "fulfilled", value: { allowed: true, used: 2, remaining: 3 } });
  });

  it("reloads the script once for a whole batch after NOSCRIPT, counting each call once", async () => {
    const { redis, paths } = countingRedis();
    const owner = await makeOwner(100);
    await raw.set(quotaKey(owner.userId, "2026-11"), "10");
    await raw.script("FLUSH");
    const results = await Promise.all(Array.from({ length: 20 }, () => consumeQuota(redis, db, owner, NOW)));
    expect(results.every((r) => r.allowed)).toBe(true);
    expect(await raw.get(quotaKey(owner.userId, "2026-11"))).toBe("30");
    // The EVALSHAs that met NOSCRIPT, then one pipeline of EVALs that ran them and loaded the script.
    expect(paths).toEqual(["pipeline", "pipeline"]);
  });

  it("reloads the script for a lone check after NOSCRIPT, counting it once", async () => {
    const { redis, paths } = countingRedis();
    const owner = await makeOwner(100);
    await raw.set(quotaKey(owner.userId, "2026-11"), "10");
    await raw.script("FLUSH");
    expect(await consumeQuota(redis, db, owner, NOW)).toMatchObject({ allowed: true, used: 11 });
    expect(await raw.get(quotaKey(owner.userId, "2026-11"))).toBe("11");
    // The EVALSHA that met NOSCRIPT, then the EVAL that ran it and loaded the script.
    expect(paths).toEqual(["/", "/"]);
  });

  it("seeds missing counters of several users in a batch from their own snapshots", async () => {
    const { redis } = countingRedis();
    const owners = await Promise.all([makeOwner(1000), makeOwner(1000), makeOwner(1000)]);
    await db.usageSnapshot.createMany({
      data: owners.map((owner, i) => ({
        userId: owner.userId,
        period: "2026-11",
        hour: new Date("2026-11-15T11:00:00Z"),
        used: 100 * (i + 1),
      })),
    });
    const results = await Promise.all(
      owners.flatMap((owner) => [1, 2, 3].map(() => consumeQuota(redis, db, owner, NOW))),
    );
    expect(results.every((r) => r.allowed)).toBe(true);
    expect(await raw.get(quotaKey(owners[0].userId, "2026-11"))).toBe("103");
    expect(await raw.get(quotaKey(owners[1].userId, "2026-11"))).toBe("203");
    expect(await raw.get(quotaKey(owners[2].userId, "2026-11"))).toBe("303");
  });

  it("rejects every caller of a batch when Redis cannot be reached", async () => {
    const { redis } = countingRedis("http://127.0.0.1:1");
    const owner = await makeOwner(10);
    const settled = await Promise.allSettled(Array.from({ length: 5 }, () => consumeQuota(redis, db, owner, NOW)));
    expect(settled.every((s) => s.status === "rejected")).toBe(true);
  });
});

import { Redis } from "@upstash/redis";
import { Redis as IORedis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import {
  consumeQuota,
  getUsage,
  newConsumption,
  QuotaConsumptionWithdrawnError,
  refundQuota,
  restoreCounterFromSnapshot,
} from "~/models/quota.server";
import { getDb } from "~/utils/db.server";
import { hourBucket, periodEnd, quotaKey } from "~/utils/period";
import { getRedis } from "~/utils/redis.server";
import { createTestUser } from "./factories";
import { TEST_REDIS_URL } from "./setup/test-env";

const db = getDb();
const redis = getRedis();
// Direct access to this file's Redis database, to look at TTLs and simulate a lost key.
const raw = new IORedis(TEST_REDIS_URL, { db: Number(process.env.TEST_REDIS_DB) });
afterAll(() => raw.disconnect());

const NOW = new Date("2026-11-15T12:00:00Z");

async function makeOwner(monthlyLimit: number) {
  const user = await createTestUser(db, { monthlyLimit });
  return { userId: user.id, monthlyLimit: user.monthlyLimit };
}

describe("consumeQuota", () => {
  it("counts calls up to the limit, then refuses without counting", async () => {
    const owner = await makeOwner(3);
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await consumeQuota(redis, db, owner, NOW));
    expect(results.map((r) => r.allowed)).toEqual([true, true, true, false, false]);
    expect(results.map((r) => r.used)).toEqual([1, 2, 3, 3, 3]);
    expect(results[2]).toMatchObject({ limit: 3, remaining: 0, period: "2026-11" });
    expect(results[0].resetsAt.toISOString()).toBe("2026-12-01T00:00:00.000Z");
    expect(results[0].resetSeconds).toBe(15 * 86400 + 12 * 3600);
    expect(await raw.get(quotaKey(owner.userId, "2026-11"))).toBe("3");
  });

  it("expires the counter a week after the month ends, so the next month's first sync still reads it", async () => {
    const owner = await makeOwner(10);
    await consumeQuota(redis, db, owner, NOW);
    const expireAt = await raw.expiretime(quotaKey(owner.userId, "2026-11"));
    expect(expireAt).toBe(periodEnd("2026-11").getTime() / 1000 + 7 * 86400);
  });

  it("admits exactly the remaining calls when 200 arrive at once", async () => {
    const owner = await makeOwner(100);
    await raw.set(quotaKey(owner.userId, "2026-11"), "50");
    const results = await Promise.all(Array.from({ length: 200 }, () => consumeQuota(redis, db, owner, NOW)));
    expect(results.filter((r) => r.allowed)).toHaveLength(50);
    expect(await raw.get(quotaKey(owner.userId, "2026-11"))).toBe("100");
  });

  it("restarts a lost counter from the month's latest snapshot, not from 0", async () => {
    const owner = await makeOwner(1000);
    await db.usageSnapshot.createMany({
      data: [
        { userId: owner.userId, period: "2026-11", hour: hourBucket(new Date("2026-11-15T09:00:00Z")), used: 400 },
        { userId: owner.userId, period: "2026-11", hour: hourBucket(new Date("2026-11-15T10:00:00Z")), used: 420 },
        // Last month's count must not leak into this one.
        { userId: owner.userId, period: "2026-10", hour: new Date("2026-10-31T23:00:00Z"), used: 990 },
      ],
    });
    await consumeQuota(redis, db, owner, NOW);
    expect(await raw.get(quotaKey(owner.userId, "2026-11"))).toBe("421");

    await raw.del(quotaKey(owner.userId, "2026-11"));
    expect((await getUsage(redis, db, owner, NOW)).used).toBe(420);
    // Reading usage does not create the counter.
    expect(await raw.exists(quotaKey(owner.userId, "2026-11"))).toBe(0);
    const next = await consumeQuota(redis, db, owner, NOW);
    expect(next).toMatchObject({ allowed: true, used: 421, remaining: 579 });
  });

  it("seeds a counter once when many calls find it missing together", async () => {
    const owner = await makeOwner(1000);
    await db.usageSnapshot.create({
      data: { userId: owner.userId, period: "2026-11", hour: new Date("2026-11-15T11:00:00Z"), used: 100 },
    });
    await Promise.all(Array.from({ length: 20 }, () => consumeQuota(redis, db, owner, NOW)));
    expect(await raw.get(quotaKey(owner.userId, "2026-11"))).toBe("120");
  });

  it("refuses at once when a snapshot already reached the limit", async () => {
    const owner = await makeOwner(50);
    await db.usageSnapshot.create({
      data: { userId: owner.userId, period: "2026-11", hour: new Date("2026-11-15T11:00:00Z"), used: 50 },
    });
    expect(await consumeQuota(redis, db, owner, NOW)).toMatchObject({ allowed: false, used: 50, remaining: 0 });
  });

  it("starts a new month at 0 while the old month's counter is still there", async () => {
    const owner = await makeOwner(2);
    await consumeQuota(redis, db, owner, NOW);
    await consumeQuota(redis, db, owner, NOW);
    const december = await consumeQuota(redis, db, owner, new Date("2026-12-01T00:00:01Z"));
    expect(december).toMatchObject({ allowed: true, used: 1, period: "2026-12" });
  });

  it("uses a lowered limit at once", async () => {
    const owner = await makeOwner(10);
    for (let i = 0; i < 5; i++) await consumeQuota(redis, db, owner, NOW);
    const lowered = await consumeQuota(redis, db, { ...owner, monthlyLimit: 3 }, NOW);
    expect(lowered).toMatchObject({ allowed: false, used: 5, limit: 3, remaining: 0 });
  });

  it("reloads its script after Redis forgot it (NOSCRIPT)", async () => {
    const owner = await makeOwner(10);
    await consumeQuota(redis, db, owner, NOW);
    await raw.script("FLUSH");
    expect(await consumeQuota(redis, db, owner, NOW)).toMatchObject({ allowed: true, used: 2 });
  });

  it("refunds a consumption's unit once, however often the refund is sent, and never creates a counter", async () => {
    const owner = await makeOwner(10);
    const first = newConsumption();
    await consumeQuota(redis, db, owner, NOW, first);
    await consumeQuota(redis, db, owner, NOW);
    await refundQuota(redis, owner.userId, "2026-11", first.id);
    await refundQuota(redis, owner.userId, "2026-11", first.id);
    expect(await raw.get(quotaKey(owner.userId, "2026-11"))).toBe("1");
    await refundQuota(redis, owner.userId, "2026-10", newConsumption().id);
    expect(await raw.exists(quotaKey(owner.userId, "2026-10"))).toBe(0);
  });

  it("answers a resent consumption with its first answer instead of counting it again", async () => {
    const owner = await makeOwner(2);
    const consumption = newConsumption();
    const answer = await consumeQuota(redis, db, owner, NOW, consumption);
    const again = await consumeQuota(redis, db, owner, NOW, consumption);
    expect(answer).toMatchObject({ allowed: true, used: 1 });
    expect(again).toEqual(answer);
    expect(await raw.get(quotaKey(owner.userId, "2026-11"))).toBe("1");

    // A refusal is remembered too: the resend of a call refused at the limit stays refused after a refund.
    await consumeQuota(redis, db, owner, NOW);
    const refused = newConsumption();
    expect(await consumeQuota(redis, db, owner, NOW, refused)).toMatchObject({ allowed: false, used: 2 });
    await refundQuota(redis, owner.userId, "2026-11", consumption.id);
    expect(await consumeQuota(redis, db, owner, NOW, refused)).toMatchObject({ allowed: false, used: 2 });
    expect(await raw.get(quotaKey(owner.userId, "2026-11"))).toBe("1");
    // The record's key is not a counter for the sync's SCAN of quota:*.
    expect(await raw.keys("quota:*")).not.toContain(expect.stringContaining(consumption.id));
  });

  it("does not count a consumption that reaches Redis after its deadline, nor one refunded before it arrived", async () => {
    const owner = await makeOwner(10);
    await consumeQuota(redis, db, owner, NOW);
    // A deadline already behind Redis's clock: the caller has answered 503 by the time this arrives.
    await expect(consumeQuota(redis, db, owner, NOW, { id: newConsumption().id, timeoutMs: -1 })).rejects.toThrow(
      QuotaConsumptionWithdrawnError,
    );
    const withdrawn = newConsumption();
    await refundQuota(redis, owner.userId, "2026-11", withdrawn.id);
    await expect(consumeQuota(redis, db, owner, NOW, withdrawn)).rejects.toThrow(QuotaConsumptionWithdrawnError);
    expect(await raw.get(quotaKey(owner.userId, "2026-11"))).toBe("1");
  });

  it("restoreCounterFromSnapshot never overwrites a live counter", async () => {
    const owner = await makeOwner(1000);
    await db.usageSnapshot.create({
      data: { userId: owner.userId, period: "2026-11", hour: new Date("2026-11-15T11:00:00Z"), used: 30 },
    });
    expect(await restoreCounterFromSnapshot(redis, db, owner.userId, NOW)).toBe(30);
    await raw.set(quotaKey(owner.userId, "2026-11"), "35");
    expect(await restoreCounterFromSnapshot(redis, db, owner.userId, NOW)).toBe(35);
  });

  it("throws when Redis cannot be reached, so callers can fail closed", async () => {
    const owner = await makeOwner(10);
    const dead = new Redis({ url: "http://127.0.0.1:1", token: "x", retry: false, enableTelemetry: false });
    await expect(consumeQuota(dead, db, owner, NOW)).rejects.toThrow();
    await expect(getUsage(dead, db, owner, NOW)).rejects.toThrow();
  });
});

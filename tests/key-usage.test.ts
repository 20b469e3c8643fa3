import { Redis as IORedis } from "ioredis";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { clearHotCaches } from "~/api/hot-cache.server";
import { consumeQuota, newConsumption, refundQuota } from "~/models/quota.server";
import { getChartHistory } from "~/models/usage-history.server";
import { syncUsageSnapshots } from "~/models/usage-sync.server";
import { setThresholdDelivery, type ThresholdCrossing } from "~/models/usage-thresholds.server";
import { setMonthlyLimit } from "~/models/user.server";
import { loader as sheetLoader } from "~/routes/api.v1.sheets.$sheetId";
import { loader as usageLoader } from "~/routes/api.v1.usage";
import { getDb } from "~/utils/db.server";
import { getEnv } from "~/utils/env.server";
import { keyUsageKey, periodOf, quotaKey, thresholdMarkKey } from "~/utils/period";
import { createSyncRedis, getRedis } from "~/utils/redis.server";
import { createTestApiKey, createTestSheet, createTestUser } from "./factories";
import { TEST_REDIS_URL } from "./setup/test-env";

const db = getDb();
const redis = getRedis();
const env = getEnv();
const syncRedis = () => createSyncRedis(env.UPSTASH_REDIS_REST_URL, env.UPSTASH_REDIS_REST_TOKEN);
const raw = new IORedis(TEST_REDIS_URL, { db: Number(process.env.TEST_REDIS_DB) });
afterAll(() => raw.disconnect());
afterEach(() => setThresholdDelivery(null));

async function callSheet(sheetId: string, key: string) {
  const request = new Request(`http://localhost/api/v1/sheets/${sheetId}`, {
    headers: { Authorization: `Bearer ${key}` },
  });
  const response = await sheetLoader({ request, params: { sheetId }, context: {} });
  await response.arrayBuffer();
  return response.status;
}

/** A user with a sheet and `keys` API keys, as the keys page would make them. */
async function customer(keys: number, monthlyLimit = 1000) {
  const user = await createTestUser(db, { monthlyLimit });
  const made = [];
  for (let i = 0; i < keys; i++) made.push(await createTestApiKey(db, user.id, `app ${i + 1}`));
  const { sheetId } = await createTestSheet(db, user.id);
  return { userId: user.id, keys: made.map(({ key, summary }) => ({ key, id: summary.id })), sheetId };
}

const settleMicrotasks = () => new Promise((resolve) => setTimeout(resolve, 20));

describe("per-key counting in the quota script", () => {
  it("counts 200 concurrent calls over 3 keys against each key, adding up to the counter", async () => {
    const { userId, keys, sheetId } = await customer(3);
    const plan = Array.from({ length: 200 }, (_, i) => keys[i % 7 === 0 ? 2 : i % 2]);
    const expected = new Map<string, number>();
    for (const key of plan) expected.set(key.id, (expected.get(key.id) ?? 0) + 1);

    const statuses = await Promise.all(plan.map((key) => callSheet(sheetId, key.key)));
    expect(statuses.every((status) => status === 200)).toBe(true);

    const period = periodOf(new Date());
    const perKey = await raw.hgetall(keyUsageKey(userId, period));
    expect(Object.fromEntries(Object.entries(perKey).map(([id, used]) => [id, Number(used)]))).toEqual(
      Object.fromEntries(expected),
    );
    expect(Number(await raw.get(quotaKey(userId, period)))).toBe(200);
    // The hash lives exactly as long as the counter.
    expect(await raw.expiretime(keyUsageKey(userId, period))).toBe(await raw.expiretime(quotaKey(userId, period)));
  });

  it("gives the key's unit back with a refund, once", async () => {
    const { userId, keys } = await customer(2);
    const owner = { userId, monthlyLimit: 10, keyId: keys[0].id };
    const now = new Date("2026-11-15T12:00:00Z");
    const refunded = newConsumption();
    await consumeQuota(redis, db, owner, now, refunded);
    await consumeQuota(redis, db, owner, now);
    await consumeQuota(redis, db, { ...owner, keyId: keys[1].id }, now);
    await refundQuota(redis, userId, "2026-11", refunded.id);
    await refundQuota(redis, userId, "2026-11", refunded.id);

    expect(await raw.hgetall(keyUsageKey(userId, "2026-11"))).toEqual({ [keys[0].id]: "1", [keys[1].id]: "1" });
    expect(await raw.get(quotaKey(userId, "2026-11"))).toBe("2");
  });

  it("counts a call without a key against the account only", async () => {
    const { userId } = await customer(0);
    const now = new Date("2026-11-15T12:00:00Z");
    await consumeQuota(redis, db, { userId, monthlyLimit: 10 }, now);
    expect(await raw.exists(keyUsageKey(userId, "2026-11"))).toBe(0);
    expect(await raw.get(quotaKey(userId, "2026-11"))).toBe("1");
  });
});

describe("a plan limit changed by an operator", () => {
  it("lifts a 429 on the very next call when raised, and refuses past it when lowered", async () => {
    const { userId, keys, sheetId } = await customer(1, 3);
    const [{ key }] = keys;
    for (let i = 0; i < 3; i++) expect(await callSheet(sheetId, key)).toBe(200);
    expect(await callSheet(sheetId, key)).toBe(429);

    // What `npm run admin -- user:set-limit` runs; this process still holds the key with the old limit in memory.
    expect(await setMonthlyLimit(redis, db, userId, 5)).toBe(true);
    expect(await callSheet(sheetId, key)).toBe(200);
    expect(await callSheet(sheetId, key)).toBe(200);
    expect(await callSheet(sheetId, key)).toBe(429);

    expect(await setMonthlyLimit(redis, db, userId, 2)).toBe(true);
    expect(await callSheet(sheetId, key)).toBe(429);
    expect(await raw.get(quotaKey(userId, periodOf(new Date())))).toBe("5");
  });
});

describe("usage thresholds claimed by the quota script", () => {
  it("reports 80 % and 100 % exactly once each when 300 concurrent calls cross a 250-call limit", async () => {
    const { userId, keys, sheetId } = await customer(2, 250);
    const crossings: ThresholdCrossing[] = [];
    setThresholdDelivery((crossing) => {
      crossings.push(crossing);
    });

    const statuses = await Promise.all(Array.from({ length: 300 }, (_, i) => callSheet(sheetId, keys[i % 2].key)));
    await settleMicrotasks();

    expect(statuses.filter((status) => status === 200)).toHaveLength(250);
    expect(statuses.filter((status) => status === 429)).toHaveLength(50);
    const period = periodOf(new Date());
    expect(
      crossings.map(({ threshold, used, limit, period: p, userId: u }) => ({ threshold, used, limit, p, u })),
    ).toEqual(
      expect.arrayContaining([
        { threshold: 80, used: 200, limit: 250, p: period, u: userId },
        { threshold: 100, used: 250, limit: 250, p: period, u: userId },
      ]),
    );
    expect(crossings).toHaveLength(2);
    expect(await raw.get(thresholdMarkKey(userId, period, 80))).toBe("250");

    // More refused calls, a new process's worth of calls: nothing is reported again this month.
    await Promise.all(Array.from({ length: 20 }, () => callSheet(sheetId, keys[0].key)));
    await settleMicrotasks();
    expect(crossings).toHaveLength(2);
  });

  it("follows a raised limit for a threshold not yet reached, and never reports one twice in a month", async () => {
    const { userId } = await customer(0);
    const now = new Date("2026-11-15T12:00:00Z");
    const at = (monthlyLimit: number) => consumeQuota(redis, db, { userId, monthlyLimit }, now);
    await raw.set(quotaKey(userId, "2026-11"), 78);
    expect((await at(100)).crossed).toEqual([]); // 79 of 100
    // Raised before 80 % of the old limit was reached: 80 % is now 160.
    expect((await at(200)).crossed).toEqual([]); // 80 of 200
    await raw.set(quotaKey(userId, "2026-11"), 159);
    expect((await at(200)).crossed).toEqual([80]); // 160 of 200
    expect((await at(200)).crossed).toEqual([]);
    // Raised again after 80 % fired: 80 % of the new limit does not fire again this month.
    await raw.set(quotaKey(userId, "2026-11"), 399);
    expect((await at(1000)).crossed).toEqual([]);
    // Lowered under the month's usage: the refused call is the one that finds 100 % reached.
    const refused = await at(300);
    expect(refused).toMatchObject({ allowed: false, crossed: [100] });
    expect((await at(300)).crossed).toEqual([]);
  });

  it("never lets a failing delivery reach the API caller", async () => {
    const { sheetId, keys } = await customer(1, 1);
    setThresholdDelivery(() => {
      throw new Error("receiver down");
    });
    expect(await callSheet(sheetId, keys[0].key)).toBe(200);
    await settleMicrotasks();
  });
});

describe("per-key snapshots written by the sync", () => {
  const NOW = new Date("2026-11-15T12:10:00Z");
  const HOUR = new Date("2026-11-15T12:00:00Z");

  async function keyRows(userId: string) {
    const rows = await db.keyUsageSnapshot.findMany({
      where: { userId },
      select: { keyId: true, period: true, hour: true, used: true },
      orderBy: [{ keyId: "asc" }, { hour: "asc" }],
    });
    return rows.map((row) => ({ ...row, hour: row.hour.toISOString() }));
  }

  it("writes each key's count beside the user's, idempotently, keeping the greater count, with the limit", async () => {
    const { userId, keys } = await customer(3, 500);
    await raw.set(quotaKey(userId, "2026-11"), 42);
    await raw.hset(keyUsageKey(userId, "2026-11"), { [keys[0].id]: 30, [keys[1].id]: 12 });

    await syncUsageSnapshots({ redis: syncRedis(), db }, { now: NOW });
    const first = await keyRows(userId);
    expect(first).toEqual(
      [
        { keyId: keys[0].id, period: "2026-11", hour: HOUR.toISOString(), used: 30 },
        { keyId: keys[1].id, period: "2026-11", hour: HOUR.toISOString(), used: 12 },
      ].sort((a, b) => (a.keyId < b.keyId ? -1 : 1)),
    );
    expect(await db.usageSnapshot.findMany({ where: { userId }, select: { used: true, limit: true } })).toEqual([
      { used: 42, limit: 500 },
    ]);

    // Run again (a redelivery), then with one count lower (a restored hash) and the limit changed within the hour.
    await syncUsageSnapshots({ redis: syncRedis(), db }, { now: new Date("2026-11-15T12:20:00Z") });
    expect(await keyRows(userId)).toEqual(first);
    await raw.hset(keyUsageKey(userId, "2026-11"), { [keys[0].id]: 5 });
    await db.user.update({ where: { id: userId }, data: { monthlyLimit: 900 } });
    await syncUsageSnapshots({ redis: syncRedis(), db }, { now: new Date("2026-11-15T12:30:00Z") });
    expect(await keyRows(userId)).toEqual(first);
    expect(await db.usageSnapshot.findFirst({ where: { userId }, select: { limit: true } })).toEqual({ limit: 500 });

    // The next hour records the limit then in force.
    await syncUsageSnapshots({ redis: syncRedis(), db }, { now: new Date("2026-11-15T13:05:00Z") });
    const limits = await db.usageSnapshot.findMany({
      where: { userId },
      select: { limit: true },
      orderBy: { hour: "asc" },
    });
    expect(limits).toEqual([{ limit: 500 }, { limit: 900 }]);
  });

  it("drops the count of a key that no longer exists or is another user's", async () => {
    const { userId, keys } = await customer(1);
    const other = await customer(1);
    await raw.set(quotaKey(userId, "2026-11"), 9);
    await raw.hset(keyUsageKey(userId, "2026-11"), { [keys[0].id]: 4, "deleted-key": 3, [other.keys[0].id]: 2 });
    await syncUsageSnapshots({ redis: syncRedis(), db }, { now: new Date("2026-11-15T14:10:00Z") });
    expect((await keyRows(userId)).map((row) => row.keyId)).toEqual([keys[0].id]);
  });

  it("deleting a key or a user deletes their key snapshots, and a snapshot of a missing key is refused", async () => {
    const { userId, keys } = await customer(2);
    await raw.set(quotaKey(userId, "2026-11"), 5);
    await raw.hset(keyUsageKey(userId, "2026-11"), { [keys[0].id]: 3, [keys[1].id]: 2 });
    await syncUsageSnapshots({ redis: syncRedis(), db }, { now: new Date("2026-11-15T15:10:00Z") });
    expect(await keyRows(userId)).toHaveLength(2);

    await db.apiKey.delete({ where: { id: keys[0].id } });
    expect((await keyRows(userId)).map((row) => row.keyId)).toEqual([keys[1].id]);
    await db.user.delete({ where: { id: userId } });
    expect(await db.keyUsageSnapshot.count({ where: { OR: [{ userId }, { keyId: keys[1].id }] } })).toBe(0);

    const stranger = await customer(1);
    await expect(
      db.keyUsageSnapshot.create({
        data: { keyId: keys[1].id, userId: stranger.userId, period: "2026-11", hour: HOUR, used: 1 },
      }),
    ).rejects.toThrow(/KeyUsageSnapshot_keyId_fkey/);
    await expect(
      db.$executeRaw`UPDATE "ApiKey" SET "userId" = ${userId} WHERE "id" = ${stranger.keys[0].id}`,
    ).rejects.toThrow(/cannot change/);
  });
});

describe("GET /api/v1/usage", () => {
  it("breaks this month's usage down by key", async () => {
    const { keys, sheetId } = await customer(2);
    clearHotCaches();
    for (let i = 0; i < 3; i++) expect(await callSheet(sheetId, keys[0].key)).toBe(200);
    expect(await callSheet(sheetId, keys[1].key)).toBe(200);

    const request = new Request("http://localhost/api/v1/usage", {
      headers: { Authorization: `Bearer ${keys[1].key}` },
    });
    const response = await usageLoader({ request, params: {}, context: {} });
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body.used).toBe(4);
    const byId = new Map(body.keys.map((key: { id: string }) => [key.id, key]));
    expect(byId.get(keys[0].id)).toEqual({ id: keys[0].id, name: "app 1", prefix: expect.any(String), used: 3 });
    expect(byId.get(keys[1].id)).toMatchObject({ name: "app 2", used: 1 });
  });
});

describe("chart data for one key, and the limit with the account's", () => {
  it("reads a key's own snapshots, never another account's, and each account hour's limit", async () => {
    const { userId, keys } = await customer(1, 300);
    const other = await customer(1);
    await raw.set(quotaKey(userId, "2026-11"), 20);
    await raw.hset(keyUsageKey(userId, "2026-11"), { [keys[0].id]: 20 });
    await syncUsageSnapshots({ redis: syncRedis(), db }, { now: new Date("2026-11-20T10:05:00Z") });
    await db.user.update({ where: { id: userId }, data: { monthlyLimit: 600 } });
    await raw.set(quotaKey(userId, "2026-11"), 25);
    await raw.hset(keyUsageKey(userId, "2026-11"), { [keys[0].id]: 25 });
    await syncUsageSnapshots({ redis: syncRedis(), db }, { now: new Date("2026-11-20T11:05:00Z") });
    const now = new Date("2026-11-20T11:30:00Z");

    const account = await getChartHistory(db, userId, "24h", "cumulative", now);
    expect(account.points.map(({ used, limit }) => ({ used, limit }))).toEqual([
      { used: 20, limit: 300 },
      { used: 25, limit: 600 },
    ]);
    const key = await getChartHistory(db, userId, "24h", "hour", now, keys[0].id);
    expect(key.points.map(({ used, limit }) => ({ used, limit }))).toEqual([
      { used: 20, limit: null },
      { used: 25, limit: null },
    ]);
    expect(key.bars?.buckets.map((bucket) => bucket.calls)).toEqual([20, 5]);
    // Someone else's key id through this account: nothing.
    expect((await getChartHistory(db, other.userId, "24h", "hour", now, keys[0].id)).points).toEqual([]);
  });
});

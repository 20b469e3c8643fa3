import { Redis as IORedis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import {
  createApiKey,
  hashApiKey,
  listApiKeys,
  noteApiKeyUsed,
  refreshApiKeyCacheForUser,
  resolveApiKey,
  revokeApiKey,
} from "~/models/api-keys.server";
import { loader as sheetLoader } from "~/routes/api.v1.sheets.$sheetId";
import { getDb } from "~/utils/db.server";
import { getRedis } from "~/utils/redis.server";
import { createTestSheet, createTestUser } from "./factories";
import { TEST_REDIS_URL } from "./setup/test-env";

const db = getDb();
const redis = getRedis();
const raw = new IORedis(TEST_REDIS_URL, { db: Number(process.env.TEST_REDIS_DB) });
afterAll(() => raw.disconnect());

async function call(sheetId: string, key: string) {
  const request = new Request(`http://localhost/api/v1/sheets/${sheetId}`, {
    headers: { Authorization: `Bearer ${key}` },
  });
  return sheetLoader({ request, params: { sheetId }, context: {} });
}

describe("API keys", () => {
  it("are sm_live_ plus 256 random bits, stored only as a SHA-256 hash and a short prefix", async () => {
    const user = await createTestUser(db);
    const { key, summary } = await createApiKey(db, user.id, "Production");
    expect(key).toMatch(/^sm_live_[A-Za-z0-9_-]{43}$/);
    expect(summary).toMatchObject({ name: "Production", prefix: key.slice(0, 14), lastUsedAt: null, revokedAt: null });
    const stored = await db.apiKey.findUniqueOrThrow({ where: { id: summary.id } });
    expect(stored.hash).toBe(hashApiKey(key));
    expect(stored.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(stored)).not.toContain(key);
    const other = await createApiKey(db, user.id, "Second");
    expect(other.key).not.toBe(key);
  });

  it("work until revoked; a revoked key gets 401 within a second", async () => {
    const user = await createTestUser(db);
    const { key, summary } = await createApiKey(db, user.id, "lifecycle");
    const { sheetId } = await createTestSheet(db, user.id, { name: "s" });
    expect((await call(sheetId, key)).status).toBe(200);

    expect(await revokeApiKey(redis, db, user.id, summary.id)).toBe(true);
    const revokedAt = Date.now();
    const response = await call(sheetId, key);
    expect(response.status).toBe(401);
    expect(Date.now() - revokedAt).toBeLessThan(1000);
    const [listed] = await listApiKeys(db, user.id);
    expect(listed.revokedAt).toBeInstanceOf(Date);
  });

  it("cannot be revoked by another user", async () => {
    const owner = await createTestUser(db);
    const intruder = await createTestUser(db);
    const { key, summary } = await createApiKey(db, owner.id, "mine");
    expect(await revokeApiKey(redis, db, intruder.id, summary.id)).toBe(false);
    expect(await resolveApiKey(redis, db, key)).toMatchObject({ userId: owner.id });
  });

  it("are cached in Redis by hash under apikey:, never under quota:", async () => {
    const user = await createTestUser(db, { monthlyLimit: 250 });
    const { key, summary } = await createApiKey(db, user.id, "cache");
    await resolveApiKey(redis, db, key);
    const cached = JSON.parse((await raw.get(`apikey:${hashApiKey(key)}`))!);
    expect(cached).toEqual({ status: "active", keyId: summary.id, userId: user.id, monthlyLimit: 250 });
    expect(await raw.ttl(`apikey:${hashApiKey(key)}`)).toBeGreaterThan(0);
  });

  it("stop working in another process within a second of being revoked", async () => {
    const user = await createTestUser(db);
    const { key, summary } = await createApiKey(db, user.id, "other process");
    expect(await resolveApiKey(redis, db, key)).not.toBeNull();
    // Revoke the way another server would: Redis and Postgres change, this process's memory layer does not.
    await raw.set(`apikey:${hashApiKey(key)}`, JSON.stringify({ status: "revoked", keyId: summary.id }), "EX", 300);
    await db.apiKey.update({ where: { id: summary.id }, data: { revokedAt: new Date() } });
    await new Promise((resolve) => setTimeout(resolve, 1_050));
    expect(await resolveApiKey(redis, db, key)).toBeNull();
  });

  it("pick up a changed monthly limit once the cache is refreshed", async () => {
    const user = await createTestUser(db, { monthlyLimit: 100 });
    const { key } = await createApiKey(db, user.id, "limit");
    expect(await resolveApiKey(redis, db, key)).toMatchObject({ monthlyLimit: 100 });
    await db.user.update({ where: { id: user.id }, data: { monthlyLimit: 5000 } });
    await refreshApiKeyCacheForUser(redis, db, user.id);
    expect(await resolveApiKey(redis, db, key)).toMatchObject({ monthlyLimit: 5000 });
  });

  it("record lastUsedAt at most once a minute, without the caller waiting", async () => {
    const user = await createTestUser(db);
    const { summary } = await createApiKey(db, user.id, "last used");
    const first = new Date("2026-11-15T12:00:00Z");
    noteApiKeyUsed(db, summary.id, first);
    noteApiKeyUsed(db, summary.id, new Date("2026-11-15T12:00:30Z"));
    await expect
      .poll(async () => (await db.apiKey.findUniqueOrThrow({ where: { id: summary.id } })).lastUsedAt)
      .toEqual(first);
    const later = new Date("2026-11-15T12:01:01Z");
    noteApiKeyUsed(db, summary.id, later);
    await expect
      .poll(async () => (await db.apiKey.findUniqueOrThrow({ where: { id: summary.id } })).lastUsedAt)
      .toEqual(later);
  });

  it("reject malformed keys without touching Redis or Postgres", async () => {
    expect(await resolveApiKey(redis, db, "sm_live_short")).toBeNull();
    expect(await resolveApiKey(redis, db, `sk_live_${"a".repeat(43)}`)).toBeNull();
  });
});

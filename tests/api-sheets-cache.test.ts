import { Redis as IORedis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clearHotCaches, hotCacheStats } from "~/api/hot-cache.server";
import { handleSheetRequest } from "~/api/sheet-request.server";
import { revokeApiKey } from "~/models/api-keys.server";
import { bumpOwnerVersion } from "~/models/owner-version.server";
import { deleteSheet } from "~/models/sheets.server";
import { setMonthlyLimit } from "~/models/user.server";
import { loader as sheetLoader } from "~/routes/api.v1.sheets.$sheetId";
import { getDb } from "~/utils/db.server";
import { periodOf, quotaKey } from "~/utils/period";
import { getRedis } from "~/utils/redis.server";
import { createTestApiKey, createTestSheet, createTestUser } from "./factories";
import { TEST_REDIS_URL } from "./setup/test-env";

/**
 * The API's in-process caches and conditional requests, in one process (tests/two-processes.test.ts covers
 * invalidation across processes): pages come from memory, a matching If-None-Match is a 304 that counts, and a
 * change bumped in Redis reaches the next call.
 */
const db = getDb();
const raw = new IORedis(TEST_REDIS_URL, { db: Number(process.env.TEST_REDIS_DB) });
afterAll(() => raw.disconnect());

const CSV = ["id,name,city", "1,Alice,Paris", "2,Bob,Berlin", "3,Chloé,Paris"].join("\n");

async function call(sheetId: string, key: string, query = "", extra: Record<string, string> = {}) {
  const request = new Request(`http://localhost/api/v1/sheets/${sheetId}${query}`, {
    headers: { Authorization: `Bearer ${key}`, ...extra },
  });
  return sheetLoader({ request, params: { sheetId }, context: {} });
}

async function account(monthlyLimit = 1000) {
  const user = await createTestUser(db, { monthlyLimit });
  const { key, summary } = await createTestApiKey(db, user.id, "cache");
  const { sheetId } = await createTestSheet(db, user.id, { name: "cache", csv: CSV });
  const used = async () => Number((await raw.get(quotaKey(user.id, periodOf(new Date())))) ?? 0);
  return { user, key, keyId: summary.id, sheetId, used };
}

beforeAll(() => clearHotCaches());

describe("the sheet API's caches", () => {
  it("serves a repeated page from memory without touching Postgres, and counts every call", async () => {
    const { key, sheetId, used } = await account();
    const first = await call(sheetId, key, "?city=Paris&limit=5");
    expect(first.status).toBe(200);
    const body = await first.text();
    // A client that records every model and raw query used through it.
    const touched: string[] = [];
    const watched = new Proxy(db, {
      get(target, property) {
        const value = Reflect.get(target, property);
        if (typeof property !== "string") return value;
        touched.push(property);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    // The same query with its parameters in another order is the same page.
    const again = await handleSheetRequest(
      { redis: getRedis(), db: watched },
      new Request(`http://localhost/api/v1/sheets/${sheetId}?limit=5&city=Paris`, {
        headers: { Authorization: `Bearer ${key}` },
      }),
      sheetId,
    );
    expect(again.status).toBe(200);
    expect(await again.text()).toBe(body);
    expect(again.headers.get("ETag")).toBe(first.headers.get("ETag"));
    // The throttled "last used" write may be the only use, and it is not awaited by the call.
    expect(touched.filter((name) => name !== "apiKey")).toEqual([]);
    expect(JSON.parse(body)).toMatchObject({
      data: [
        { id: 1, name: "Alice", city: "Paris" },
        { id: 3, name: "Chloé", city: "Paris" },
      ],
      meta: { total: 2, limit: 5, offset: 0, version: 1 },
    });
    expect(await used()).toBe(2);
    expect(hotCacheStats().pages.bytes).toBeGreaterThan(0);
  });

  it("answers a matching If-None-Match with 304, counted, with the quota headers and no body", async () => {
    const { key, sheetId, used } = await account();
    const first = await call(sheetId, key);
    const etag = first.headers.get("ETag")!;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{32}"$/);
    expect(first.headers.get("Cache-Control")).toBe("private, no-cache");
    expect(first.headers.get("Vary")).toBe("Authorization");
    expect(first.headers.get("Content-Type")).toBe("application/json");

    const notModified = await call(sheetId, key, "", { "If-None-Match": `W/"other", ${etag}` });
    expect(notModified.status).toBe(304);
    expect(await notModified.text()).toBe("");
    expect(notModified.headers.get("ETag")).toBe(etag);
    expect(notModified.headers.get("RateLimit-Remaining")).toBe("998");
    expect(notModified.headers.get("X-Content-Type-Options")).toBe("nosniff");
    expect(await used()).toBe(2);

    const otherQuery = await call(sheetId, key, "?limit=2", { "If-None-Match": etag });
    expect(otherQuery.status).toBe(200);
    expect(otherQuery.headers.get("ETag")).not.toBe(etag);
  });

  it("answers 429, not 304, over quota", async () => {
    const { key, sheetId, used } = await account(1);
    const first = await call(sheetId, key);
    const refused = await call(sheetId, key, "", { "If-None-Match": first.headers.get("ETag")! });
    expect(refused.status).toBe(429);
    expect(await used()).toBe(1);
  });

  it("refuses a revoked key, a deleted sheet and uses a new limit on the next call", async () => {
    const a = await account(1000);
    expect((await call(a.sheetId, a.key)).status).toBe(200);
    expect(await setMonthlyLimit(getRedis(), db, a.user.id, 5)).toBe(true);
    expect((await call(a.sheetId, a.key)).headers.get("RateLimit-Limit")).toBe("5");

    expect(await deleteSheet(getRedis(), db, a.user.id, a.sheetId)).toBe(true);
    expect((await call(a.sheetId, a.key)).status).toBe(404);

    const b = await account();
    expect((await call(b.sheetId, b.key)).status).toBe(200);
    expect(await revokeApiKey(getRedis(), db, b.user.id, b.keyId)).toBe(true);
    expect((await call(b.sheetId, b.key)).status).toBe(401);
    expect(await b.used()).toBe(1);
  });

  it("reloads after Redis loses the version (flush, failover) and keeps counting", async () => {
    const { user, key, sheetId, used } = await account();
    await bumpOwnerVersion(getRedis(), user.id);
    expect((await call(sheetId, key)).status).toBe(200);
    await raw.del(`apikey:owner-version:${user.id}`);
    expect((await call(sheetId, key)).status).toBe(200);
    expect(await used()).toBe(2);
  });

  it("is callable without Remix, with a plain object for the request", async () => {
    const { key, sheetId } = await account();
    const headers = new Map([["authorization", `Bearer ${key}`]]);
    const response = await handleSheetRequest(
      { redis: getRedis(), db },
      { url: `/api/v1/sheets/${sheetId}?limit=1`, headers: { get: (name) => headers.get(name.toLowerCase()) ?? null } },
      sheetId,
    );
    expect(response.status).toBe(200);
    expect((await response.json()).meta).toMatchObject({ total: 3, limit: 1, offset: 0, version: 1 });
  });
});

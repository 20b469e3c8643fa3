import { Redis } from "@upstash/redis";
import { Redis as IORedis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clearHotCaches } from "~/api/hot-cache.server";
import { handleSheetRequest } from "~/api/sheet-request.server";
import { handleUsageRequest } from "~/api/usage-request.server";
import { loader as sheetLoader } from "~/routes/api.v1.sheets.$sheetId";
import { loader as usageLoader } from "~/routes/api.v1.usage";
import { getDb } from "~/utils/db.server";
import { periodOf, quotaKey, secondsInPeriod } from "~/utils/period";
import { createTestApiKey, createTestSheet, createTestUser } from "./factories";
import { TEST_REDIS_URL } from "./setup/test-env";

const db = getDb();
const raw = new IORedis(TEST_REDIS_URL, { db: Number(process.env.TEST_REDIS_DB) });
afterAll(() => raw.disconnect());

const CSV = [
  "id,name,city,score,active,zip",
  "1,Alice,Paris,10,true,01234",
  "2,bob,Berlin,9.5,false,10115",
  "3,Chloé,paris,100,true,",
  "4,Dan,Oslo,,false,0150",
  "5,Eve,Berlin,-2,TRUE,10117",
  '6,"Frank, Jr.",Rome,2e1,false,00184',
].join("\n");

async function callSheet(sheetId: string, query: string, key: string | null) {
  const headers: Record<string, string> = key ? { Authorization: `Bearer ${key}` } : {};
  const request = new Request(`http://localhost/api/v1/sheets/${sheetId}${query}`, { headers });
  const response = await sheetLoader({ request, params: { sheetId }, context: {} });
  return { response, body: await response.json() };
}

let userId: string;
let key: string;
let sheetId: string;

beforeAll(async () => {
  ({ id: userId } = await createTestUser(db));
  ({ key } = await createTestApiKey(db, userId, "tests"));
  ({ sheetId } = await createTestSheet(db, userId, { name: "people", csv: CSV }));
});

describe("GET /api/v1/sheets/:sheetId", () => {
  it("returns typed rows in file order with paging metadata and quota headers", async () => {
    const { response, body } = await callSheet(sheetId, "", key);
    expect(response.status).toBe(200);
    expect(body.meta).toMatchObject({ total: 6, limit: 100, offset: 0, version: 1 });
    expect(Date.parse(body.meta.updatedAt)).not.toBeNaN();
    expect(body.data[0]).toEqual({ id: 1, name: "Alice", city: "Paris", score: 10, active: true, zip: "01234" });
    expect(Object.keys(body.data[0])).toEqual(["id", "name", "city", "score", "active", "zip"]);
    expect(body.data[3]).toMatchObject({ score: null, zip: "0150" });
    expect(body.data[5]).toMatchObject({ name: "Frank, Jr.", score: 20 });

    const period = periodOf(new Date());
    const used = Number(await raw.get(quotaKey(userId, period)));
    const headers = response.headers;
    expect(headers.get("RateLimit-Limit")).toBe("1000");
    expect(headers.get("RateLimit-Remaining")).toBe(String(1000 - used));
    const reset = Number(headers.get("RateLimit-Reset"));
    expect(reset).toBeGreaterThan(0);
    expect(headers.get("RateLimit-Policy")).toBe(`"monthly";q=1000;w=${secondsInPeriod(period)}`);
    expect(headers.get("RateLimit")).toBe(`"monthly";r=${1000 - used};t=${reset}`);
  });

  it("pages with limit and offset", async () => {
    const { body } = await callSheet(sheetId, "?limit=2&offset=2", key);
    expect(body.data.map((row: { id: number }) => row.id)).toEqual([3, 4]);
    expect(body.meta).toMatchObject({ total: 6, limit: 2, offset: 2, version: 1 });
    const beyond = await callSheet(sheetId, "?offset=50", key);
    expect(beyond.body).toMatchObject({ data: [], meta: { total: 6, limit: 100, offset: 50 } });
  });

  it("sorts numbers as numbers, empty cells last in both directions", async () => {
    const asc = await callSheet(sheetId, "?sort=score", key);
    expect(asc.body.data.map((row: { id: number }) => row.id)).toEqual([5, 2, 1, 6, 3, 4]);
    const desc = await callSheet(sheetId, "?sort=score&order=desc", key);
    expect(desc.body.data.map((row: { id: number }) => row.id)).toEqual([3, 6, 1, 2, 5, 4]);
  });

  it("filters by exact values, ANDed, matching typed numbers and booleans", async () => {
    const berlin = await callSheet(sheetId, "?city=Berlin", key);
    expect(berlin.body.data.map((row: { id: number }) => row.id)).toEqual([2, 5]);
    expect(berlin.body.meta.total).toBe(2);
    const both = await callSheet(sheetId, "?city=Berlin&active=true", key);
    expect(both.body.data.map((row: { id: number }) => row.id)).toEqual([5]);
    const number = await callSheet(sheetId, "?score=9.50", key);
    expect(number.body.data.map((row: { id: number }) => row.id)).toEqual([2]);
    const zip = await callSheet(sheetId, "?zip=01234", key);
    expect(zip.body.data.map((row: { id: number }) => row.id)).toEqual([1]);
    const empty = await callSheet(sheetId, "?score=", key);
    expect(empty.body.data.map((row: { id: number }) => row.id)).toEqual([4]);
    // Filters are exact: case matters.
    const paris = await callSheet(sheetId, "?city=Paris", key);
    expect(paris.body.data.map((row: { id: number }) => row.id)).toEqual([1]);
  });

  it("searches all values case-insensitively, with LIKE wildcards taken literally", async () => {
    const paris = await callSheet(sheetId, "?search=PARIS", key);
    expect(paris.body.data.map((row: { id: number }) => row.id)).toEqual([1, 3]);
    const accent = await callSheet(sheetId, "?search=chlo", key);
    expect(accent.body.data.map((row: { id: number }) => row.id)).toEqual([3]);
    const wildcard = await callSheet(sheetId, "?search=%25", key);
    expect(wildcard.body.meta.total).toBe(0);
    // Column names are not values.
    const columnName = await callSheet(sheetId, "?search=city", key);
    expect(columnName.body.meta.total).toBe(0);
  });

  const badQueries: [string, string][] = [
    ["?limit=abc", "limit"],
    ["?limit=0", "limit"],
    ["?limit=-1", "limit"],
    ["?limit=1001", "limit"],
    ["?limit=1e3", "limit"],
    ["?limit=2.5", "limit"],
    ["?limit=99999999999999999999", "limit"],
    ["?limit=", "limit"],
    ["?limit=1&limit=2", "limit"],
    ["?offset=-5", "offset"],
    ["?offset=x", "offset"],
    ["?offset=99999999999999999999", "offset"],
    ["?offset=2147483648", "offset"],
    ["?sort=nope", "sort"],
    ['?sort=score"%3B DROP TABLE "SheetRow"%3B--', "sort"],
    ["?sort=score&order=up", "order"],
    ["?order=desc", "order"],
    ["?search=", "search"],
    [`?search=${"x".repeat(201)}`, "search"],
    ["?nope=1", "nope"],
    ["?name'%20OR%201%3D1--=x", "name' OR 1=1--"],
    ["?data=1", "data"],
  ];
  it.each(badQueries)("answers %s with 400 naming %s", async (query, parameter) => {
    const before = await raw.get(quotaKey(userId, periodOf(new Date())));
    const { response, body } = await callSheet(sheetId, query, key);
    expect(response.status).toBe(400);
    expect(response.headers.get("Content-Type")).toBe("application/problem+json");
    expect(body).toMatchObject({ status: 400, parameter, type: expect.stringMatching(/#invalid-parameter$/) });
    expect(body.detail).toContain(parameter.split("'")[0]);
    // A refused call costs nothing.
    expect(await raw.get(quotaKey(userId, periodOf(new Date())))).toBe(before);
  });

  it("answers a missing or wrong key with 401 and another owner's sheet with 404", async () => {
    const missing = await callSheet(sheetId, "", null);
    expect(missing.response.status).toBe(401);
    expect(missing.response.headers.get("WWW-Authenticate")).toMatch(/^Bearer/);
    const wrong = await callSheet(sheetId, "", `sm_live_${"A".repeat(43)}`);
    expect(wrong.response.status).toBe(401);
    const garbage = await callSheet(sheetId, "", "not-a-key");
    expect(garbage.response.status).toBe(401);
    expect(garbage.body.type).toMatch(/#invalid-api-key$/);

    const other = await createTestUser(db);
    const { key: otherKey } = await createTestApiKey(db, other.id, "other");
    const foreign = await callSheet(sheetId, "", otherKey);
    expect(foreign.response.status).toBe(404);
    expect(foreign.body.type).toMatch(/#sheet-not-found$/);
    const unknown = await callSheet("does-not-exist", "", otherKey);
    expect(unknown.response.status).toBe(404);
    expect(await raw.exists(quotaKey(other.id, periodOf(new Date())))).toBe(0);
  });

  it("lets exactly the remaining 50 of 200 concurrent calls through; the rest get 429", async () => {
    const owner = await createTestUser(db, { monthlyLimit: 100 });
    const { key: ownerKey } = await createTestApiKey(db, owner.id, "burst");
    const { sheetId: ownerSheet } = await createTestSheet(db, owner.id, { name: "burst", csv: CSV });
    const counter = quotaKey(owner.id, periodOf(new Date()));
    await raw.set(counter, "50");
    const results = await Promise.all(Array.from({ length: 200 }, () => callSheet(ownerSheet, "?limit=1", ownerKey)));
    const statuses = results.map((r) => r.response.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(50);
    expect(statuses.filter((s) => s === 429)).toHaveLength(150);
    expect(await raw.get(counter)).toBe("100");

    const refused = results.find((r) => r.response.status === 429)!;
    expect(refused.response.headers.get("Content-Type")).toBe("application/problem+json");
    expect(refused.body.type).toMatch(/#quota-exceeded$/);
    expect(Number(refused.response.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect(refused.response.headers.get("RateLimit-Remaining")).toBe("0");
  });

  it("gives the unit back when reading the rows fails after it was counted", async () => {
    const owner = await createTestUser(db, { monthlyLimit: 10 });
    const { key: ownerKey } = await createTestApiKey(db, owner.id, "refund");
    const { sheetId: ownerSheet } = await createTestSheet(db, owner.id, { name: "refund", csv: CSV });
    await callSheet(ownerSheet, "", ownerKey);
    const counter = quotaKey(owner.id, periodOf(new Date()));
    expect(await raw.get(counter)).toBe("1");
    const failingDb = new Proxy(db, {
      get: (target, property) =>
        property === "$queryRaw" ? () => Promise.reject(new Error("connection lost")) : Reflect.get(target, property),
    });
    const { getRedis } = await import("~/utils/redis.server");
    // The page read by the first call is cached in memory; this test is about a call that must read Postgres.
    clearHotCaches();
    const request = new Request(`http://localhost/api/v1/sheets/${ownerSheet}`, {
      headers: { Authorization: `Bearer ${ownerKey}` },
    });
    await expect(handleSheetRequest({ redis: getRedis(), db: failingDb }, request, ownerSheet)).rejects.toThrow(
      /connection lost/,
    );
    expect(await raw.get(counter)).toBe("1");
  });

  it("fails closed with 503 and Retry-After when Redis is unreachable", async () => {
    const dead = new Redis({ url: "http://127.0.0.1:1", token: "x", retry: false, enableTelemetry: false });
    // A key never seen by this process, so nothing about it is cached in memory.
    const { key: freshKey } = await createTestApiKey(db, userId, "outage");
    const headers = { Authorization: `Bearer ${freshKey}` };
    const sheet = await handleSheetRequest(
      { redis: dead, db },
      new Request(`http://localhost/api/v1/sheets/${sheetId}`, { headers }),
      sheetId,
    );
    expect(sheet.status).toBe(503);
    expect(sheet.headers.get("Content-Type")).toBe("application/problem+json");
    expect(Number(sheet.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect((await sheet.json()).type).toMatch(/#quota-store-unavailable$/);

    // Also for a key whose owner is cached in memory: the quota check itself must not be skipped.
    await callSheet(sheetId, "", key);
    const cached = await handleSheetRequest(
      { redis: dead, db },
      new Request(`http://localhost/api/v1/sheets/${sheetId}`, { headers: { Authorization: `Bearer ${key}` } }),
      sheetId,
    );
    expect(cached.status).toBe(503);

    // Concurrent calls share one batched quota round trip; when it fails, every one of them fails closed.
    const burst = await Promise.all(
      Array.from({ length: 8 }, () =>
        handleSheetRequest(
          { redis: dead, db },
          new Request(`http://localhost/api/v1/sheets/${sheetId}`, { headers: { Authorization: `Bearer ${key}` } }),
          sheetId,
        ),
      ),
    );
    expect(burst.map((response) => response.status)).toEqual(Array(8).fill(503));

    const usage = await handleUsageRequest(
      { redis: dead, db },
      new Request("http://localhost/api/v1/usage", { headers }),
    );
    expect(usage.status).toBe(503);
  });
});

describe("GET /api/v1/usage", () => {
  it("reports this month's usage without consuming any", async () => {
    const owner = await createTestUser(db, { monthlyLimit: 20 });
    const { key: ownerKey } = await createTestApiKey(db, owner.id, "usage");
    await raw.set(quotaKey(owner.id, periodOf(new Date())), "7");
    const request = () =>
      new Request("http://localhost/api/v1/usage", { headers: { Authorization: `Bearer ${ownerKey}` } });
    const first = await usageLoader({ request: request(), params: {}, context: {} });
    const second = await usageLoader({ request: request(), params: {}, context: {} });
    expect(first.status).toBe(200);
    const body = await second.json();
    const period = periodOf(new Date());
    expect(body).toEqual({
      used: 7,
      limit: 20,
      remaining: 13,
      period,
      resetsAt: expect.any(String),
      // The counter was set directly, not through calls with the key: nothing counted against it.
      keys: [{ id: expect.any(String), name: "usage", prefix: expect.any(String), used: 0 }],
    });
    expect(new Date(body.resetsAt).getTime()).toBeGreaterThan(Date.now());
    expect(second.headers.get("RateLimit-Remaining")).toBe("13");

    const anonymous = await usageLoader({
      request: new Request("http://localhost/api/v1/usage"),
      params: {},
      context: {},
    });
    expect(anonymous.status).toBe(401);
  });
});

import { Redis as IORedis } from "ioredis";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { recordedSheetRequest } from "~/api/answer-record.server";
import { clearHotCaches } from "~/api/hot-cache.server";
import { syncOutcomeSnapshots } from "~/models/outcome-sync.server";
import { consumeQuota, newConsumption, refundQuota } from "~/models/quota.server";
import {
  apiAnswerStats,
  clearKeyPrefixCache,
  deleteOutcomeData,
  drainApiAnswers,
  getOutcomeHistory,
  listRecentRequests,
  loggablePath,
  outcomesKey,
  requestLogKey,
} from "~/models/request-outcomes.server";
import { syncUsageSnapshots } from "~/models/usage-sync.server";
import { loader as sheetLoader } from "~/routes/api.v1.sheets.$sheetId";
import { loader as usageLoader } from "~/routes/api.v1.usage";
import { getDb } from "~/utils/db.server";
import { getEnv } from "~/utils/env.server";
import { hourBucket, periodOf } from "~/utils/period";
import { createAppRedis, createSyncRedis, getRedis } from "~/utils/redis.server";
import { filterRequests, parseLogFilter } from "~/utils/request-log";
import { createTestApiKey, createTestSheet, createTestUser } from "./factories";
import { type HttpFaultProxy, startHttpFaultProxy, targetOf } from "./helpers/fault-proxy";
import { TEST_REDIS_URL } from "./setup/test-env";

/**
 * Outcome tallies and the request log (docs/outcomes.md) against the real stores: the route, the quota script and the
 * buffered writer through the REST stand-in, the sync into Postgres. Every count is read back from Redis itself.
 */
const db = getDb();
const redis = getRedis();
const env = getEnv();
const raw = new IORedis(TEST_REDIS_URL, { db: Number(process.env.TEST_REDIS_DB) });
afterAll(() => raw.disconnect());
afterEach(() => {
  clearHotCaches();
  clearKeyPrefixCache();
});

const CSV = "id,name,country\n1,Ada,UK\n2,Grace,US\n";

async function customer(monthlyLimit = 100_000) {
  const user = await createTestUser(db, { monthlyLimit });
  const { key } = await createTestApiKey(db, user.id);
  const { sheetId } = await createTestSheet(db, user.id, { csv: CSV });
  return { userId: user.id, key, sheetId };
}

async function call(sheetId: string, key: string, { query = "", headers = {} as Record<string, string> } = {}) {
  const request = new Request(`http://localhost/api/v1/sheets/${sheetId}${query}`, {
    headers: { Authorization: `Bearer ${key}`, ...headers },
  });
  const response = await sheetLoader({ request, params: { sheetId }, context: {} });
  await response.arrayBuffer();
  return response;
}

/** The key with its secret part changed: the same display prefix, so the 401 is credited to its account. */
const wrongSecret = (key: string) => key.slice(0, 14) + (key[14] === "A" ? "B" : "A").repeat(key.length - 14);

async function tallies(userId: string, at = new Date()): Promise<Record<string, number>> {
  const hash = await raw.hgetall(outcomesKey(userId, at));
  return Object.fromEntries(
    Object.entries(hash)
      .map(([status, n]) => [status, Number(n)] as const)
      .filter(([, n]) => n > 0),
  );
}

function histogram(statuses: number[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

describe("outcome tallies", () => {
  it("tallies 200 concurrent answers mixing 200, 304, 400, 401, 404 and 429 exactly, in the script or the writer", async () => {
    const { userId, key, sheetId } = await customer(121);
    const first = await call(sheetId, key);
    expect(first.status).toBe(200);
    const etag = first.headers.get("ETag")!;

    const plan: (() => Promise<Response>)[] = [
      ...Array.from({ length: 100 }, () => () => call(sheetId, key)),
      ...Array.from({ length: 30 }, () => () => call(sheetId, key, { headers: { "If-None-Match": etag } })),
      ...Array.from({ length: 25 }, () => () => call(sheetId, wrongSecret(key))),
      ...Array.from({ length: 20 }, (_, i) => () => call(`no-such-sheet-${i}`, key)),
      ...Array.from({ length: 15 }, () => () => call(sheetId, key, { query: "?limit=lots" })),
      // Not even shaped like a key: nobody's answer, neither tallied nor logged.
      ...Array.from({ length: 10 }, () => () => call(sheetId, "not-a-key")),
    ];
    // Interleaved, so the script's batches and the writer's flushes carry every kind at once.
    const shuffled = plan.map((run, i) => ({ run, order: (i * 7919) % plan.length })).sort((a, b) => a.order - b.order);
    const responses = await Promise.all(shuffled.map(({ run }) => run()));
    await drainApiAnswers(redis);

    const statuses = [200, ...responses.map((response) => response.status)];
    const seen = histogram(statuses);
    expect(seen[401]).toBe(35);
    // The 121 units went to the first call and 120 of the 130 metered ones; the other 10 were refused.
    expect((seen[200] ?? 0) + (seen[304] ?? 0)).toBe(121);
    expect(seen[429]).toBe(10);
    expect(seen[404]).toBe(20);
    expect(seen[400]).toBe(15);

    // Exactly what was answered, less the 10 answers to a string that names no account.
    expect(await tallies(userId)).toEqual({ ...seen, 401: 25 });
    expect(Number(await raw.ttl(outcomesKey(userId, new Date())))).toBeGreaterThan(24 * 3600);
  });

  it("takes a refunded call's tally back with its unit, and tallies nothing for a consumption sent again", async () => {
    const { userId } = await customer();
    const owner = { userId, monthlyLimit: 10, servedStatus: 200 as const };
    const now = new Date();
    const consumption = newConsumption();
    await consumeQuota(redis, db, owner, now, consumption);
    await consumeQuota(redis, db, owner, now, consumption);
    expect(await tallies(userId, now)).toEqual({ 200: 1 });
    await refundQuota(redis, userId, periodOf(now), consumption.id);
    await refundQuota(redis, userId, periodOf(now), consumption.id);
    expect(await tallies(userId, now)).toEqual({});
    // Without a served status (scripts, tests, the bench), the quota script tallies nothing.
    await consumeQuota(redis, db, { userId, monthlyLimit: 10 }, now);
    expect(await tallies(userId, now)).toEqual({});
  });

  it("tallies /api/v1/usage answers too, and drops a 401 whose prefix names no account", async () => {
    const { userId, key } = await customer();
    const usage = (bearer: string) =>
      usageLoader({
        request: new Request("http://localhost/api/v1/usage", { headers: { Authorization: `Bearer ${bearer}` } }),
        params: {},
        context: {},
      });
    expect((await usage(key)).status).toBe(200);
    expect((await usage(wrongSecret(key))).status).toBe(401);
    expect((await usage(`sm_live_${"Z".repeat(43)}`)).status).toBe(401);
    await drainApiAnswers(redis);
    expect(await tallies(userId)).toEqual({ 200: 1, 401: 1 });
  });
});

describe("the request log", () => {
  it("keeps the newest 100 requests, newest first, without query values or keys", async () => {
    const { userId, key, sheetId } = await customer();
    const roundStarts: number[] = [];
    for (let round = 0; round < 13; round++) {
      roundStarts.push(Date.now());
      await new Promise((resolve) => setTimeout(resolve, 2));
      await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          call(sheetId, key, { query: `?country=France&limit=${round * 10 + i + 1}` }),
        ),
      );
      // Each round's flush is its own, so the list is trimmed again and again, not once.
      await drainApiAnswers(redis);
    }
    expect(await raw.llen(requestLogKey(userId))).toBe(100);
    const ttl = await raw.ttl(requestLogKey(userId));
    expect(ttl).toBeGreaterThan(6 * 24 * 3600);

    const stored = (await raw.lrange(requestLogKey(userId), 0, -1)).join("\n");
    expect(stored).not.toContain(key);
    expect(stored).not.toContain("France");
    const entries = await listRecentRequests(redis, userId);
    expect(entries).toHaveLength(100);
    expect(entries[0]).toMatchObject({
      status: 200,
      keyPrefix: key.slice(0, 14),
      sheetId,
      path: `/api/v1/sheets/${sheetId}?country=…&limit=…`,
    });
    expect(entries.every((entry) => entry.ms >= 0 && Number.isInteger(entry.ms))).toBe(true);
    // The 30 oldest were trimmed; the head is the last round's (entries go in as answers complete).
    expect(entries.every((entry) => Date.parse(entry.at) >= roundStarts[3])).toBe(true);
    expect(entries.slice(0, 10).every((entry) => Date.parse(entry.at) >= roundStarts[12])).toBe(true);
  });

  it("filters by status and key", () => {
    const entry = (status: number, keyPrefix: string | null) => ({
      at: new Date().toISOString(),
      status,
      ms: 1,
      keyPrefix,
      sheetId: null,
      path: "/api/v1/usage",
    });
    const entries = [entry(200, "sm_live_aaaaaa"), entry(401, "sm_live_bbbbbb"), entry(429, "sm_live_aaaaaa")];
    const filter = (query: string) => filterRequests(entries, parseLogFilter(new URLSearchParams(query)));
    expect(filter("status=refused").map((e) => e.status)).toEqual([401, 429]);
    expect(filter("status=401").map((e) => e.status)).toEqual([401]);
    expect(filter("key=sm_live_aaaaaa").map((e) => e.status)).toEqual([200, 429]);
    expect(filter("key=sm_live_aaaaaa&status=refused").map((e) => e.status)).toEqual([429]);
    // Anything else is no filter at all, never an error.
    expect(filter("status=500&key=%3Cscript%3E")).toHaveLength(3);
  });

  it("logs a path with parameter names only, bounded", () => {
    expect(loggablePath("/api/v1/sheets/abc?api_key=sm_live_secret&country=France")).toBe(
      "/api/v1/sheets/abc?api_key=…&country=…",
    );
    expect(loggablePath(`http://localhost/api/v1/sheets/${"x".repeat(500)}`).length).toBe(200);
    expect(loggablePath("http://localhost:3000/api/v1/usage?from=2026-11-01#frag")).toBe("/api/v1/usage?from=…");
    expect(loggablePath("/api/v1/sheets/abc")).toBe("/api/v1/sheets/abc");
    expect(loggablePath("/api/v1/sheets/abc?")).toBe("/api/v1/sheets/abc");
  });
});

describe("the hourly sync's outcome step", () => {
  it("writes each hour's tallies to OutcomeSnapshot, never lowers them, and drops deleted users", async () => {
    const a = await customer();
    const b = await customer();
    for (const { key, sheetId } of [a, b]) {
      await Promise.all([
        call(sheetId, key),
        call(sheetId, key),
        call("missing", key),
        call(sheetId, wrongSecret(key)),
      ]);
    }
    await drainApiAnswers(redis);
    // An hour earlier today, as the tally of a finished hour waiting for the sync.
    const earlier = new Date(hourBucket(new Date()).getTime() - 3_600_000);
    await raw.hset(outcomesKey(a.userId, earlier), { 200: 7, 429: 2 });

    const sync = createSyncRedis(env.UPSTASH_REDIS_REST_URL, env.UPSTASH_REDIS_REST_TOKEN);
    const result = await syncUsageSnapshots({ redis: sync, db });
    expect(result.status).toBe("succeeded");
    const rows = async (userId: string) =>
      Object.fromEntries(
        (await db.outcomeSnapshot.findMany({ where: { userId } })).map((row) => [
          `${row.hour.toISOString().slice(11, 13)}:${row.status}`,
          row.count,
        ]),
      );
    const hh = (d: Date) => d.toISOString().slice(11, 13);
    const now = hourBucket(new Date());
    expect(await rows(a.userId)).toEqual({
      [`${hh(now)}:200`]: 2,
      [`${hh(now)}:404`]: 1,
      [`${hh(now)}:401`]: 1,
      [`${hh(earlier)}:200`]: 7,
      [`${hh(earlier)}:429`]: 2,
    });

    // Redis lost a tally (a flush, a failover) and counts again from 0: the copy keeps the greater.
    await raw.hset(outcomesKey(a.userId, earlier), { 200: 1 });
    await db.user.delete({ where: { id: b.userId } });
    const again = await syncOutcomeSnapshots({ redis: sync, db });
    expect(again.complete).toBe(true);
    expect((await rows(a.userId))[`${hh(earlier)}:200`]).toBe(7);
    expect(await db.outcomeSnapshot.count({ where: { userId: b.userId } })).toBe(0);

    // The chart's reader: synced and live together, the greater per hour and status.
    const history = await getOutcomeHistory({ redis, db }, a.userId, earlier, new Date(now.getTime() + 3_600_000));
    expect(history.map((h) => h.counts)).toEqual([
      { 200: 7, 429: 2 },
      { 200: 2, 401: 1, 404: 1 },
    ]);
  });

  it("refuses a snapshot of a user that does not exist, and deleteOutcomeData leaves nothing", async () => {
    await expect(
      db.outcomeSnapshot.create({ data: { userId: "nobody", hour: hourBucket(new Date()), status: 200, count: 1 } }),
    ).rejects.toThrow(/does not exist/);

    const { userId, key, sheetId } = await customer();
    await call(sheetId, key);
    await call("missing", key);
    await drainApiAnswers(redis);
    await syncOutcomeSnapshots({ redis, db });
    expect(await db.outcomeSnapshot.count({ where: { userId } })).toBe(2);
    await deleteOutcomeData({ redis, db }, userId);
    expect(await db.outcomeSnapshot.count({ where: { userId } })).toBe(0);
    expect(await raw.keys(`*${userId}*`)).toEqual(
      // The quota's own keys stay: they belong to the usage, not to the outcomes.
      expect.not.arrayContaining([expect.stringMatching(/^(outcomes|requestlog):/)]),
    );
  });
});

describe("recording while Redis hangs", () => {
  let proxy: HttpFaultProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  it("answers a refused call as fast as ever, and drops what it cannot write within the client's deadline", async () => {
    const TIMEOUT_MS = 1000;
    proxy = await startHttpFaultProxy({ target: targetOf(env.UPSTASH_REDIS_REST_URL) });
    const hung = createAppRedis({ url: proxy.url, token: env.UPSTASH_REDIS_REST_TOKEN, timeoutMs: TIMEOUT_MS });
    const { key, sheetId } = await customer();
    const deps = { redis: hung, db };
    const request = (path: string, bearer: string) =>
      ({ url: path, headers: new Headers({ Authorization: `Bearer ${bearer}` }) }) as const;
    // The key and sheet are now in this process's caches: the refusals below need no Redis to be decided.
    expect((await recordedSheetRequest(deps, request(`/api/v1/sheets/${sheetId}`, key), sheetId)).status).toBe(200);
    await drainApiAnswers(hung);

    proxy.setMode("hang");
    const timed = async (path: string, bearer: string, id: string) => {
      const started = performance.now();
      const response = await recordedSheetRequest(deps, request(path, bearer), id);
      return { status: response.status, ms: performance.now() - started };
    };
    const answers = [];
    for (let i = 0; i < 20; i++) {
      answers.push(await timed(`/api/v1/sheets/${sheetId}?limit=x`, key, sheetId));
      answers.push(await timed("/api/v1/sheets/none", key, "none"));
      answers.push(await timed(`/api/v1/sheets/${sheetId}`, "nope", sheetId));
      // Let a flush start and hang, so later answers meet a writer that is stuck.
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(new Set(answers.map((a) => a.status))).toEqual(new Set([400, 404, 401]));
    // A refused call is decided from memory and Postgres; the stuck writer adds nothing to it.
    expect(Math.max(...answers.map((a) => a.ms))).toBeLessThan(400);

    const before = { ...apiAnswerStats(hung) };
    const drainStarted = performance.now();
    await drainApiAnswers(hung);
    // Each stuck flush ends at the client's deadline, and the rest follows the same way: bounded, never a hang.
    expect(performance.now() - drainStarted).toBeLessThan(4 * (TIMEOUT_MS + 500));
    const after = apiAnswerStats(hung);
    expect(after.failedFlushes).toBeGreaterThan(before.failedFlushes);
    expect(after.dropped).toBeGreaterThan(0);
    proxy.setMode("pass");
    proxy.release();
  });
});

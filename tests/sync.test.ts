import { afterAll, beforeEach, describe, expect, it, vi } from "vitest";
import { syncUsageSnapshots } from "~/models/usage-sync.server";
import { createSyncRedis } from "~/utils/redis.server";
import { getLastSyncRun } from "~/models/sync-runs.server";
import { action, loader } from "~/routes/api.cron.update-usage";
import { getEnv } from "~/utils/env.server";
import { hourBucket, quotaKey } from "~/utils/period";
import { getRedis } from "~/utils/redis.server";
import { signQstash, unsignedToken } from "./helpers/qstash-sign";
import { expectedSnapshots, syncFixtures } from "./helpers/sync-fixtures";

const fx = syncFixtures();
const { db } = fx;
afterAll(() => fx.close());
beforeEach(() => fx.reset());

const env = getEnv();
const ROUTE_URL = `${env.APP_URL}/api/cron/update-usage`;
const redis = () => createSyncRedis(env.UPSTASH_REDIS_REST_URL, env.UPSTASH_REDIS_REST_TOKEN);

async function deliver(body: string, init: { signature?: string | null; messageId?: string } = {}) {
  const signature =
    init.signature === undefined
      ? await signQstash({ key: env.QSTASH_CURRENT_SIGNING_KEY, url: ROUTE_URL, body })
      : init.signature;
  const headers = new Headers({ "Content-Type": "application/json" });
  if (signature !== null) headers.set("Upstash-Signature", signature);
  if (init.messageId) headers.set("Upstash-Message-Id", init.messageId);
  return action({ request: new Request(ROUTE_URL, { method: "POST", headers, body }), params: {}, context: {} });
}

function currentPeriod() {
  return new Date().toISOString().slice(0, 7);
}

describe("POST /api/cron/update-usage: who may call it", () => {
  const key = env.QSTASH_CURRENT_SIGNING_KEY;
  const now = Math.floor(Date.now() / 1000);
  // Each with the reason the log line must give, so a case cannot pass for the wrong reason.
  const forged: [string, (body: string) => Promise<string | null> | string | null, RegExp][] = [
    ["no signature", () => null, /no Upstash-Signature/],
    [
      "a signature made with another key",
      (body) => signQstash({ key: "sig_not-our-key-000000000000", url: ROUTE_URL, body }),
      /signature verification failed/,
    ],
    [
      "a body other than the one signed",
      (body) => signQstash({ key, url: ROUTE_URL, body, signedBody: `${body} ` }),
      /body hash does not match/,
    ],
    [
      "an expired signature",
      (body) => signQstash({ key, url: ROUTE_URL, body, now: now - 900, expiresIn: 300 }),
      /expired/,
    ],
    [
      "a signature not valid yet",
      (body) => signQstash({ key, url: ROUTE_URL, body, notBeforeOffset: 600 }),
      /not valid yet/,
    ],
    ["another issuer", (body) => signQstash({ key, url: ROUTE_URL, body, issuer: "Mallory" }), /issuer/],
    ['"alg": "none"', (body) => unsignedToken(ROUTE_URL, body), /none algorithm/],
    [
      "a signature for another URL",
      (body) => signQstash({ key, url: "https://evil.example/api/cron/update-usage", body }),
      /invalid subject/,
    ],
    ["garbage", () => "definitely.not.a-jwt", /JWS|JWT/],
  ];

  it.each(forged)("answers 401 problem+json and writes nothing for %s", async (_name, makeSignature, reason) => {
    const [userId] = await fx.createUsers(1);
    await fx.setCounts(currentPeriod(), { [userId]: 7 });
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const body = "{}";
    const signature = await makeSignature(body);

    const response = await deliver(body, { signature, messageId: "msg_forged" });

    expect(response.status).toBe(401);
    expect(response.headers.get("Content-Type")).toBe("application/problem+json");
    expect(await response.json()).toMatchObject({ status: 401, title: "Invalid signature" });
    expect(await fx.snapshotCount()).toBe(0);
    expect(await db.syncRun.count()).toBe(0);
    // One line saying why, and no secret in it: neither key nor the presented token.
    expect(warn).toHaveBeenCalledTimes(1);
    const line = String(warn.mock.calls[0][0]);
    expect(JSON.parse(line)).toMatchObject({
      event: "sync.rejected",
      messageId: "msg_forged",
      reason: expect.stringMatching(reason),
    });
    for (const secret of [env.QSTASH_CURRENT_SIGNING_KEY, env.QSTASH_NEXT_SIGNING_KEY, signature ?? "\u0000"]) {
      expect(line).not.toContain(secret);
    }
    warn.mockRestore();
  });

  it("refuses a token that never expires, which QStash never sends", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const signature = await signQstash({ key, url: ROUTE_URL, body: "{}", omitExpiry: true });
    expect((await deliver("{}", { signature })).status).toBe(401);
    warn.mockRestore();
  });

  it("answers 405 to anything but POST", async () => {
    const get = await loader();
    expect(get.status).toBe(405);
    expect(get.headers.get("Allow")).toBe("POST");
    const put = await action({
      request: new Request(ROUTE_URL, { method: "PUT", body: "{}" }),
      params: {},
      context: {},
    });
    expect(put.status).toBe(405);
  });

  it("syncs on a valid signature, with the current key or the next one", async () => {
    const users = await fx.createUsers(30);
    const counts = new Map(users.map((id, i) => [id, i * 3 + 1]));
    await fx.setCounts(currentPeriod(), counts);
    vi.spyOn(console, "info").mockImplementation(() => {});

    const response = await deliver("{}", { messageId: "msg_valid" });
    expect(response.status).toBe(200);
    const result = await response.json();
    expect(result).toMatchObject({ status: "succeeded", users: 30, skipped: 0, chunks: 1, cursor: "0" });

    const [run] = await fx.runs();
    expect(run).toMatchObject({ id: result.runId, messageId: "msg_valid", status: "succeeded", users: 30 });
    expect(await fx.snapshots()).toEqual(expectedSnapshots(counts, run.hour, currentPeriod()));

    const next = await signQstash({ key: env.QSTASH_NEXT_SIGNING_KEY, url: ROUTE_URL, body: "{}" });
    expect((await deliver("{}", { signature: next, messageId: "msg_next_key" })).status).toBe(200);
    vi.restoreAllMocks();
  });

  it("answers 400 to a signed body that is neither {} nor a continuation", async () => {
    const response = await deliver(JSON.stringify({ runId: 1, cursor: "x" }));
    expect(response.status).toBe(400);
    expect(await db.syncRun.count()).toBe(0);
  });
});

describe("syncUsageSnapshots: idempotent under redelivery and reruns", () => {
  it("changes nothing when the same message is delivered again", async () => {
    const users = await fx.createUsers(20);
    await fx.setCounts(currentPeriod(), new Map(users.map((id, i) => [id, i + 1])));
    vi.spyOn(console, "info").mockImplementation(() => {});

    const first = await (await deliver("{}", { messageId: "msg_once" })).json();
    const before = await db.usageSnapshot.findMany({ orderBy: { userId: "asc" } });
    const again = await deliver("{}", { messageId: "msg_once" });

    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ runId: first.runId, status: "succeeded", users: 20, duplicate: true });
    expect(await db.syncRun.count()).toBe(1);
    expect(await db.usageSnapshot.findMany({ orderBy: { userId: "asc" } })).toEqual(before);
    vi.restoreAllMocks();
  });

  it("a second run in the same hour updates the same rows to the higher counts and never lowers one", async () => {
    const users = await fx.createUsers(10);
    const now = new Date("2026-11-15T12:10:00Z");
    await fx.setCounts("2026-11", new Map(users.map((id) => [id, 100])));
    await syncUsageSnapshots({ redis: redis(), db }, { now });

    // Most grew; one counter came back lower (restored from an older snapshot after a Redis loss).
    const later = new Map(users.map((id, i) => [id, i === 0 ? 40 : 100 + i]));
    await fx.setCounts("2026-11", later);
    const second = await syncUsageSnapshots({ redis: redis(), db }, { now: new Date("2026-11-15T12:50:00Z") });

    expect(second).toMatchObject({ status: "succeeded", users: 10 });
    later.set(users[0], 100);
    expect(await fx.snapshots()).toEqual(expectedSnapshots(later, hourBucket(now), "2026-11"));
    expect(await db.syncRun.count()).toBe(2);
  });

  it("the first run of a month records last month's final counts at that month's last hour", async () => {
    const [alice, bob] = await fx.createUsers(2);
    await fx.setCounts("2026-11", { [alice]: 450, [bob]: 9 });
    await syncUsageSnapshots({ redis: redis(), db }, { now: new Date("2026-11-30T23:05:00Z") });
    // Calls until midnight, then the new month starts its own counter.
    await fx.setCounts("2026-11", { [alice]: 500, [bob]: 9 });
    await fx.setCounts("2026-12", { [alice]: 3 });

    const result = await syncUsageSnapshots({ redis: redis(), db }, { now: new Date("2026-12-01T00:05:00Z") });

    expect(result).toMatchObject({ status: "succeeded", users: 3, skipped: 0 });
    expect(await fx.snapshots()).toEqual(
      new Map([
        [`${alice}|2026-11-30T23:00:00.000Z|2026-11`, 500],
        [`${bob}|2026-11-30T23:00:00.000Z|2026-11`, 9],
        [`${alice}|2026-12-01T00:00:00.000Z|2026-12`, 3],
      ]),
    );
  });

  it("writes a finished month's counters once: the first complete run after it ends, then never again", async () => {
    const [alice, bob] = await fx.createUsers(2);
    await fx.setCounts("2026-11", { [alice]: 500, [bob]: 9 });
    await fx.setCounts("2026-12", { [alice]: 3 });
    const read: string[] = [];
    // The sync reads a page's counters (beside their per-key hashes) with scripts in one pipeline.
    const recording = new Proxy(redis(), {
      get(target, property, receiver) {
        if (property !== "pipeline") return Reflect.get(target, property, receiver);
        return () => {
          const pipeline = target.pipeline();
          const evaluate = pipeline.eval.bind(pipeline);
          pipeline.eval = ((script: string, keys: string[], args: unknown[]) => {
            read.push(...keys.filter((key) => key.startsWith("quota:")));
            return evaluate(script, keys, args);
          }) as typeof pipeline.eval;
          return pipeline;
        };
      },
    });
    const sync = (now: string) => syncUsageSnapshots({ redis: recording, db }, { now: new Date(now) });
    const november = () => db.usageSnapshot.findMany({ where: { period: "2026-11" }, orderBy: { userId: "asc" } });

    const first = await sync("2026-12-01T00:05:00Z");
    expect(first).toMatchObject({ status: "succeeded", users: 3, skipped: 0 });
    const finalCopy = await november();
    expect(finalCopy.map((row) => row.used)).toEqual([500, 9]);
    expect(await db.usagePeriodFinal.findMany({ select: { period: true, runId: true } })).toEqual([
      { period: "2026-11", runId: first.runId },
    ]);

    // The counters stay in Redis for their grace week (one even moves: a server whose clock is behind); the runs of
    // the following hours and days neither read nor write them, nor count them as skipped.
    await fx.setCounts("2026-11", { [alice]: 501 });
    await fx.setCounts("2026-12", { [alice]: 7 });
    read.length = 0;
    for (const now of ["2026-12-01T01:05:00Z", "2026-12-01T02:05:00Z", "2026-12-07T23:05:00Z"]) {
      expect(await sync(now)).toMatchObject({ status: "succeeded", users: 1, skipped: 0 });
    }
    expect(read.length).toBeGreaterThan(0);
    expect(read.filter((key) => key.endsWith(":2026-11"))).toEqual([]);
    expect(await november()).toEqual(finalCopy);
    expect(await fx.snapshots()).toMatchObject(
      new Map([
        [`${alice}|2026-11-30T23:00:00.000Z|2026-11`, 500],
        [`${bob}|2026-11-30T23:00:00.000Z|2026-11`, 9],
        [`${alice}|2026-12-01T00:00:00.000Z|2026-12`, 3],
        [`${alice}|2026-12-01T01:00:00.000Z|2026-12`, 7],
        [`${alice}|2026-12-01T02:00:00.000Z|2026-12`, 7],
        [`${alice}|2026-12-07T23:00:00.000Z|2026-12`, 7],
      ]),
    );
  });

  it("makes a month final only when a run covered every key: a chunk handed on, or a failed run, does not", async () => {
    const users = await fx.createUsers(30);
    await fx.setCounts("2026-11", new Map(users.map((id, i) => [id, i + 1])));
    const now = new Date("2026-12-01T00:05:00Z");

    let result = await syncUsageSnapshots({ redis: redis(), db }, { now, budgetMs: 0, scanCount: 5, batchSize: 5 });
    expect(result.status).toBe("continued");
    expect(await db.usagePeriodFinal.count()).toBe(0);
    while (result.next) {
      expect(await db.usagePeriodFinal.count()).toBe(0);
      result = await syncUsageSnapshots(
        { redis: redis(), db },
        { continuation: result.next, budgetMs: 0, scanCount: 5 },
      );
    }
    expect(result).toMatchObject({ status: "succeeded", users: 30 });
    expect(await db.usagePeriodFinal.findMany({ select: { period: true } })).toEqual([{ period: "2026-11" }]);

    // A month is never final for a run of that month, whatever was recorded (a clock set back, say).
    await fx.setCounts("2026-11", { [users[0]]: 99 });
    const sameMonth = await syncUsageSnapshots({ redis: redis(), db }, { now: new Date("2026-11-30T22:05:00Z") });
    expect(sameMonth).toMatchObject({ status: "succeeded", users: 30 });
  });

  it("skips and counts counters of deleted users, malformed values and months after the run's", async () => {
    const [kept, gone] = await fx.createUsers(2);
    await fx.setCounts("2026-11", { [kept]: 5, [gone]: 6, "never-existed": 7 });
    await fx.raw.set(quotaKey(kept, "2026-12"), "1");
    await fx.raw.set(quotaKey("someone", "2026-11"), "not a number");
    await db.user.delete({ where: { id: gone } });

    const result = await syncUsageSnapshots({ redis: redis(), db }, { now: new Date("2026-11-15T12:00:00Z") });

    expect(result).toMatchObject({ status: "succeeded", users: 1, skipped: 4 });
    expect(await fx.snapshots()).toEqual(new Map([[`${kept}|2026-11-15T12:00:00.000Z|2026-11`, 5]]));
  });

  it("writes a key SCAN returned twice (as it may while Redis rehashes) once, without aborting the batch", async () => {
    const users = await fx.createUsers(50);
    await fx.setCounts("2026-11", new Map(users.map((id, i) => [id, i])));
    const real = redis();
    const repeating = new Proxy(real, {
      get(target, property, receiver) {
        if (property !== "scan") return Reflect.get(target, property, receiver);
        return async (...args: Parameters<typeof real.scan>) => {
          const [next, keys] = await target.scan(...args);
          return [next, [...keys, ...keys.slice(0, 10)]];
        };
      },
    });
    const result = await syncUsageSnapshots({ redis: repeating, db }, { now: new Date("2026-11-15T12:00:00Z") });
    expect(result).toMatchObject({ status: "succeeded", users: 50, skipped: 0 });
    expect(await fx.snapshotCount()).toBe(50);
  });

  it("works with the app's own (deserialising) Redis client too", async () => {
    const users = await fx.createUsers(3);
    await fx.setCounts("2026-11", { [users[0]]: 1, [users[1]]: 22, [users[2]]: 333 });
    const result = await syncUsageSnapshots({ redis: getRedis(), db }, { now: new Date("2026-11-15T12:00:00Z") });
    expect(result.users).toBe(3);
    expect([...(await fx.snapshots()).values()].sort((a, b) => a - b)).toEqual([1, 22, 333]);
  });
});

describe("syncUsageSnapshots: chunks and failures", () => {
  const now = new Date("2026-11-15T12:00:00Z");

  it("in chunks (any budget) reaches the same rows as one pass, each user counted once", async () => {
    const users = await fx.createUsers(3000);
    const counts = new Map(users.map((id, i) => [id, (i * 37) % 1000]));
    await fx.setCounts("2026-11", counts);

    let result = await syncUsageSnapshots({ redis: redis(), db }, { now, budgetMs: 0, scanCount: 200, batchSize: 300 });
    const cursors = [result.cursor];
    while (result.status === "continued") {
      expect(result.next).toEqual({ runId: result.runId, step: result.step });
      result = await syncUsageSnapshots(
        { redis: redis(), db },
        { continuation: result.next, budgetMs: 0, scanCount: 200, batchSize: 300 },
      );
      cursors.push(result.cursor);
    }

    expect(result.status).toBe("succeeded");
    expect(result.chunks).toBeGreaterThanOrEqual(5);
    expect(result.users).toBe(3000);
    expect(await fx.snapshots()).toEqual(expectedSnapshots(counts, now, "2026-11"));
    const [run] = await fx.runs();
    expect(run).toMatchObject({
      status: "succeeded",
      chunks: result.chunks,
      users: 3000,
      finishedAt: expect.any(Date),
    });
  });

  it("a stale continuation (its step already done) does nothing", async () => {
    const users = await fx.createUsers(500);
    await fx.setCounts("2026-11", new Map(users.map((id) => [id, 1])));
    const first = await syncUsageSnapshots({ redis: redis(), db }, { now, budgetMs: 0, scanCount: 100 });
    expect(first).toMatchObject({ status: "continued", step: 1, next: { runId: first.runId, step: 1 } });
    const second = await syncUsageSnapshots(
      { redis: redis(), db },
      { continuation: first.next, budgetMs: 0, scanCount: 100 },
    );
    expect(second).toMatchObject({ status: "continued", step: 2, next: { step: 2 } });
    expect(second.duplicate).toBeUndefined();
    const replay = await syncUsageSnapshots({ redis: redis(), db }, { continuation: first.next });
    // The run still waits for step 2, so the replay of step 1 names it again: the route republishes it under the
    // same deduplication id, in case the first publication was lost. Nothing was synced.
    expect(replay).toMatchObject({ duplicate: true, step: 2, chunks: second.chunks, users: second.users });
    expect(replay.next).toEqual({ runId: first.runId, step: 2 });
  });

  // Pages smaller than a batch (several pages per statement), pages larger than one (a page in several parts,
  // where the cursor may only move once the page's last part commits), and windows of several pages sorted together
  // and cut into parts (the cursor moves once the window's last part commits).
  it.each([
    { scanCount: 100, batchSize: 250, windowRows: undefined },
    { scanCount: 600, batchSize: 250, windowRows: undefined },
    { scanCount: 100, batchSize: 150, windowRows: 700 },
  ])(
    "a Postgres failure mid-run marks the run failed; the retry of the same message resumes it and loses nothing (SCAN COUNT $scanCount, batch $batchSize, window $windowRows)",
    async ({ scanCount, batchSize, windowRows }) => {
      const users = await fx.createUsers(2000);
      const counts = new Map(users.map((id, i) => [id, i + 1]));
      await fx.setCounts("2026-11", counts);
      // The 900th snapshot written fails its statement, once.
      const removeTrap = await fx.failSnapshotInsertOnce(900);
      try {
        const options = { now, messageId: "msg_flaky", scanCount, batchSize, windowRows };
        const failed = await syncUsageSnapshots({ redis: redis(), db }, options);
        expect(failed).toMatchObject({ status: "failed", error: expect.stringContaining("simulated outage") });
        expect(failed.users).toBeGreaterThan(0);
        expect(failed.users).toBeLessThan(2000);
        expect(failed.cursor).not.toBe("0");
        const [run] = await fx.runs();
        expect(run).toMatchObject({
          status: "failed",
          cursor: failed.cursor,
          error: expect.stringContaining("simulated outage"),
        });
        expect(await getLastSyncRun(db)).toMatchObject({ id: run.id, status: "failed" });

        const retried = await syncUsageSnapshots({ redis: redis(), db }, options);
        expect(retried).toMatchObject({ runId: failed.runId, status: "succeeded", users: 2000, chunks: 2 });
        expect(await fx.snapshots()).toEqual(expectedSnapshots(counts, now, "2026-11"));
        expect(await getLastSyncRun(db)).toMatchObject({ id: run.id, status: "succeeded", users: 2000, error: null });
      } finally {
        await removeTrap();
      }
    },
  );
});

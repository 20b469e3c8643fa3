import type { Redis } from "@upstash/redis";
import { afterAll, beforeEach, describe, expect, it, vi } from "vitest";
import { startQstash } from "../dev/qstash";
import * as route from "~/routes/api.cron.update-usage";
import { loadRawEnv } from "~/utils/env.server";
import { getQstash } from "~/utils/qstash.server";
import { serveRoute } from "./helpers/serve-action";
import { expectedSnapshots, syncFixtures } from "./helpers/sync-fixtures";

/**
 * The sync as it runs in production: the local QStash delivers signed messages over HTTP to the route, the route
 * publishes its continuations back through the real `@upstash/qstash` Client, and failures are retried by QStash.
 */
const probe = vi.hoisted(() => ({ budgets: [] as (number | undefined)[], scanDelayMs: 0 }));

// The route's sync, with every SCAN made slower: a deterministic floor under each page's time, so the route's own
// budget (SYNC_TIME_BUDGET_MS) cuts the run into a predictable number of chunks on any machine.
vi.mock("~/models/usage-sync.server", async (importOriginal) => {
  const real = await importOriginal<typeof import("~/models/usage-sync.server")>();
  const slowScans = (redis: Redis) =>
    new Proxy(redis, {
      get(target, property, receiver) {
        if (property === "scan") {
          return async (...args: Parameters<Redis["scan"]>) => {
            await new Promise((resolve) => setTimeout(resolve, probe.scanDelayMs));
            return target.scan(...args);
          };
        }
        return Reflect.get(target, property, receiver);
      },
    });
  return {
    ...real,
    syncUsageSnapshots: (deps: { redis: Redis; db: never }, options: Parameters<typeof real.syncUsageSnapshots>[1]) => {
      probe.budgets.push(options?.budgetMs);
      return real.syncUsageSnapshots({ ...deps, redis: slowScans(deps.redis) }, { ...options, scanCount: 400 });
    },
  };
});

const served = await serveRoute(route);
const ROUTE_URL = `${served.origin}/api/cron/update-usage`;
const raw = loadRawEnv();
const qstashLog: string[] = [];
// The stand-in keeps every message of the file; each test looks at the ones it caused.
let earlierMessages = 0;
const newMessages = () => qstash.messages().slice(earlierMessages);
const qstash = await startQstash({
  token: raw.QSTASH_TOKEN!,
  currentSigningKey: raw.QSTASH_CURRENT_SIGNING_KEY!,
  nextSigningKey: raw.QSTASH_NEXT_SIGNING_KEY!,
  retryDelayMs: () => 50,
  // The route answers 503 with Retry-After: 30; the stand-in honours it, but a test need not sit it out.
  maxRetryDelayMs: 50,
  log: (line) => qstashLog.push(line),
});
// Before anything reads the environment (it is validated once): the app's URL is this server, QStash the stand-in.
process.env.APP_URL = served.origin;
process.env.QSTASH_URL = qstash.url;
process.env.SYNC_TIME_BUDGET_MS = "100";

const fx = syncFixtures();
afterAll(async () => {
  await qstash.close();
  await served.close();
  fx.close();
});
beforeEach(async () => {
  await fx.reset();
  probe.budgets.length = 0;
  probe.scanDelayMs = 0;
  qstashLog.length = 0;
  earlierMessages = qstash.messages().length;
  vi.spyOn(console, "info").mockImplementation(() => {});
});

const period = () => new Date().toISOString().slice(0, 7);

describe("the hourly sync through QStash", () => {
  it("continues itself in chunks until every user is synced, each exactly once", async () => {
    const users = await fx.createUsers(12_000);
    const counts = new Map(users.map((id, i) => [id, (i * 7919) % 50_000]));
    await fx.setCounts(period(), counts);
    probe.scanDelayMs = 40;

    const scheduleId = await getQstash().schedules.create({ destination: ROUTE_URL, cron: "0 * * * *", body: "{}" });
    expect(scheduleId.scheduleId).toBeTruthy();
    await qstash.fireDueSchedules(new Date("2026-11-29T13:00:00Z"));
    await qstash.idle();

    const [run, ...others] = await fx.runs();
    expect(others).toEqual([]);
    expect(run).toMatchObject({ status: "succeeded", users: 12_000, skipped: 0, cursor: "0", error: null });
    expect(run.chunks).toBeGreaterThanOrEqual(5);
    expect(await fx.snapshots()).toEqual(expectedSnapshots(counts, run.hour, period()));
    // Every chunk was its own QStash message, delivered once with a 200: the schedule's, then the continuations.
    const messages = newMessages();
    expect(messages).toHaveLength(run.chunks);
    expect(messages.every((m) => m.state === "delivered" && m.attempts.length === 1)).toBe(true);
    expect(messages.slice(1).map((m) => JSON.parse(m.body).runId)).toEqual(Array(run.chunks - 1).fill(run.id));
    expect(run.messageId).toBe(messages[0].messageId);
    // The budget the route applied is the configured one.
    expect(new Set(probe.budgets)).toEqual(new Set([100]));
  });

  it("answers 503 when Postgres fails mid-run, and QStash's retry completes the run with nothing lost", async () => {
    const users = await fx.createUsers(3000);
    const counts = new Map(users.map((id, i) => [id, i + 1]));
    await fx.setCounts(period(), counts);
    const removeTrap = await fx.failSnapshotInsertOnce(1500);
    try {
      await getQstash().publishJSON({ url: ROUTE_URL, body: {} });
      await qstash.idle();

      // The chunk that met the failure (the first, or a continuation if the budget cut the run earlier) was answered
      // 503 once and then 200 on QStash's retry; every other delivery succeeded at once.
      const messages = newMessages();
      const attempts = messages.map((message) => message.attempts.map((attempt) => attempt.status));
      expect(attempts.filter((statuses) => statuses.join() === "503,200")).toHaveLength(1);
      expect(attempts.filter((statuses) => statuses.join() === "200")).toHaveLength(messages.length - 1);
      expect(qstashLog.some((line) => /→ 503 .*Sync unavailable/.test(line))).toBe(true);
      const [run, ...others] = await fx.runs();
      expect(others).toEqual([]);
      expect(run).toMatchObject({ messageId: messages[0].messageId, status: "succeeded", users: 3000, error: null });
      expect(await fx.snapshots()).toEqual(expectedSnapshots(counts, run.hour, period()));
    } finally {
      await removeTrap();
    }
  });

  it("refuses a message signed for another destination even when QStash delivers it", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => {});
    const [userId] = await fx.createUsers(1);
    await fx.setCounts(period(), { [userId]: 1 });
    // Delivered to this server, but addressed (and so signed) for another path: the subject does not match.
    await getQstash().publishJSON({
      url: `${served.origin}/api/cron/update-usage?via=elsewhere`,
      body: {},
      retries: 0,
    });
    await qstash.idle();
    expect(newMessages()[0].attempts.map((attempt) => attempt.status)).toEqual([401]);
    expect(await fx.snapshotCount()).toBe(0);
  });
});

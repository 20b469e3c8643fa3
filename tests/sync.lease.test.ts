import type { Redis } from "@upstash/redis";
import { afterAll, beforeEach, describe, expect, it, vi } from "vitest";
import { startQstash } from "../dev/qstash";
import { syncUsageSnapshots } from "~/models/usage-sync.server";
import * as route from "~/routes/api.cron.update-usage";
import { createPrismaClient, type Db } from "~/utils/db.server";
import { getEnv, loadRawEnv } from "~/utils/env.server";
import { createSyncRedis } from "~/utils/redis.server";
import { startTcpFaultProxy, targetOf } from "./helpers/fault-proxy";
import { signQstash } from "./helpers/qstash-sign";
import { serveRoute } from "./helpers/serve-action";
import { expectedSnapshots, syncFixtures } from "./helpers/sync-fixtures";

/**
 * One worker per sync run. QStash delivers at least once, so a continuation or a scheduled message can arrive twice,
 * even while its first delivery is still working; a worker can also be cut off and come back late. Whatever the
 * interleaving, exactly one worker does each step, the run's totals equal the number of counters, and the chain of
 * continuations never forks. Deliveries go over HTTP to the route, signed as QStash signs them (the route checks
 * them with the real Receiver); the route publishes its continuations to the local QStash, which delivers them.
 */
const gate = vi.hoisted(() => ({ closed: null as Promise<void> | null, scansSeen: 0 }));

// The route's sync with small SCAN pages (many chunks from a few thousand counters) and a gate that holds every
// SCAN while closed: a chunk that is "still running" for as long as a test needs.
vi.mock("~/models/usage-sync.server", async (importOriginal) => {
  const real = await importOriginal<typeof import("~/models/usage-sync.server")>();
  const gatedScans = (redis: Redis) =>
    new Proxy(redis, {
      get(target, property, receiver) {
        if (property !== "scan") return Reflect.get(target, property, receiver);
        return async (...args: Parameters<Redis["scan"]>) => {
          gate.scansSeen += 1;
          while (gate.closed) await gate.closed;
          return target.scan(...args);
        };
      },
    });
  return {
    ...real,
    syncUsageSnapshots: (deps: { redis: Redis; db: never }, options: Parameters<typeof real.syncUsageSnapshots>[1]) =>
      real.syncUsageSnapshots({ ...deps, redis: gatedScans(deps.redis) }, { scanCount: 300, ...options }),
  };
});

function closeGate(): () => void {
  let open = () => {};
  gate.closed = new Promise<void>((resolve) => (open = resolve));
  return () => {
    gate.closed = null;
    open();
  };
}

const served = await serveRoute(route);
const ROUTE_URL = `${served.origin}/api/cron/update-usage`;
const raw = loadRawEnv();
const qstash = await startQstash({
  token: raw.QSTASH_TOKEN!,
  currentSigningKey: raw.QSTASH_CURRENT_SIGNING_KEY!,
  nextSigningKey: raw.QSTASH_NEXT_SIGNING_KEY!,
  retryDelayMs: () => 50,
  // A busy run answers 409 with Retry-After; the stand-in honours it, but a test need not sit it out.
  maxRetryDelayMs: 50,
  log: () => {},
});
// Before anything reads the environment (it is validated once): the app's URL is this server, QStash the stand-in.
process.env.APP_URL = served.origin;
process.env.QSTASH_URL = qstash.url;
process.env.SYNC_TIME_BUDGET_MS = "100";

const fx = syncFixtures();
const { db } = fx;
let earlierMessages = 0;
const newMessages = () => qstash.messages().slice(earlierMessages);
afterAll(async () => {
  await qstash.close();
  await served.close();
  fx.close();
});
beforeEach(async () => {
  await fx.reset();
  gate.closed = null;
  gate.scansSeen = 0;
  earlierMessages = qstash.messages().length;
  vi.spyOn(console, "info").mockImplementation(() => {});
});

const PERIOD = new Date().toISOString().slice(0, 7);

async function seed(count: number) {
  const users = await fx.createUsers(count);
  const counts = new Map(users.map((id, i) => [id, (i * 7919) % 10_000]));
  await fx.setCounts(PERIOD, counts);
  return counts;
}

/** A delivery as QStash makes it: signed for this URL and body, with its message id. */
async function deliver(body: object, messageId: string) {
  const text = JSON.stringify(body);
  const signature = await signQstash({ key: raw.QSTASH_CURRENT_SIGNING_KEY!, url: ROUTE_URL, body: text });
  const response = await fetch(ROUTE_URL, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Upstash-Signature": signature, "Upstash-Message-Id": messageId },
    body: text,
  });
  return { status: response.status, retryAfter: response.headers.get("Retry-After"), body: await response.json() };
}

/** The continuations the route published (bodies of the stand-in's new messages), in publication order. */
const publishedSteps = () =>
  newMessages()
    .map((message) => JSON.parse(message.body) as { runId?: string; step?: number })
    .filter((body) => body.step !== undefined);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => Promise<boolean>, what: string) {
  for (let i = 0; i < 1000; i++) {
    if (await check()) return;
    await sleep(5);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const syncDeps = () => {
  const env = getEnv();
  return { redis: createSyncRedis(env.UPSTASH_REDIS_REST_URL, env.UPSTASH_REDIS_REST_TOKEN), db };
};

/** Runs two deliveries at once while the gate holds the first one's SCAN; the other must answer meanwhile. */
async function concurrently(send: () => Promise<Awaited<ReturnType<typeof deliver>>>) {
  const open = closeGate();
  const a = send();
  const b = send();
  const early = await Promise.race([a, b]);
  // Held past the route's budget (100 ms), the working chunk stops after its first page: a known next step.
  await until(async () => gate.scansSeen >= 1, "the working delivery's first SCAN");
  await sleep(150);
  open();
  const both = await Promise.all([a, b]);
  return { early, working: both.find((answer) => answer !== early)! };
}

/** Every published continuation delivered once, answered 200, one per step, numbered 2, 3, … in order. */
function expectOneContinuationPerStep(runId: string, fromStep: number, toStep: number) {
  const steps = publishedSteps();
  expect(steps).toEqual(Array.from({ length: toStep - fromStep + 1 }, (_, i) => ({ runId, step: fromStep + i })));
  const attempts = newMessages().map((message) => message.attempts.map((attempt) => attempt.status).join());
  expect(attempts).toEqual(Array(steps.length).fill("200"));
}

describe("one worker per sync run, through the route and QStash", () => {
  it("of two concurrent deliveries of one continuation exactly one works, and one continuation follows", async () => {
    const counts = await seed(3000);
    // Step 0 by hand, one page, so the run waits for the continuation of step 1.
    const started = await syncUsageSnapshots(syncDeps(), { budgetMs: 0, messageId: "msg_lease_a" });
    expect(started).toMatchObject({ status: "continued", step: 1, next: { runId: started.runId, step: 1 } });

    // QStash delivers the continuation twice (the same message id), the second while the first is working.
    const { early, working } = await concurrently(() => deliver(started.next!, "msg_lease_a_step_1"));

    expect(early.status).toBe(409);
    expect(Number(early.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(early.body).toMatchObject({ type: expect.stringContaining("sync-run-busy"), status: 409 });
    expect(working.status).toBe(200);
    expect(working.body).toMatchObject({ runId: started.runId, status: "continued", step: 2 });
    // What the working delivery published runs on its own through QStash to the end of the run.
    await qstash.idle();

    const [run, ...others] = await fx.runs();
    expect(others).toEqual([]);
    expect(run).toMatchObject({ status: "succeeded", users: 3000, skipped: 0, leaseOwner: null, error: null });
    // Step 0 by hand, step 1 by the working delivery, every later step by exactly one continuation.
    expect(run.step).toBe(run.chunks - 1);
    expectOneContinuationPerStep(run.id, 2, run.step);
    expect(await fx.snapshots()).toEqual(expectedSnapshots(counts, run.hour, PERIOD));

    // QStash's retry of the refused delivery, once the run has moved on: acknowledged, nothing done or published.
    const messagesBefore = qstash.messages().length;
    const retried = await deliver(started.next!, "msg_lease_a_step_1");
    expect(retried).toMatchObject({ status: 200, body: { duplicate: true, status: "succeeded", users: 3000 } });
    expect(qstash.messages()).toHaveLength(messagesBefore);
    expect(await db.syncRun.findUniqueOrThrow({ where: { id: run.id } })).toEqual(run);
  });

  it("a redelivered schedule during a running chunk does nothing and starts no second chain", async () => {
    const counts = await seed(2000);
    const { early, working } = await concurrently(() => deliver({}, "msg_lease_schedule"));

    expect(early).toMatchObject({ status: 409, body: { status: 409 } });
    expect(working).toMatchObject({ status: 200, body: { status: "continued", step: 1 } });
    await qstash.idle();

    const [run, ...others] = await fx.runs();
    expect(others).toEqual([]);
    expect(run).toMatchObject({ messageId: "msg_lease_schedule", status: "succeeded", users: 2000, skipped: 0 });
    expect(run.step).toBe(run.chunks - 1);
    expectOneContinuationPerStep(run.id, 1, run.step);
    expect(await fx.snapshots()).toEqual(expectedSnapshots(counts, run.hour, PERIOD));

    // Redelivered once more after the run finished: acknowledged as a duplicate of step 0.
    const late = await deliver({}, "msg_lease_schedule");
    expect(late).toMatchObject({ status: 200, body: { runId: run.id, duplicate: true, users: 2000 } });
    expect(await db.syncRun.count()).toBe(1);
  });

  it("a continuation published again after a lost publication is deduplicated by its step", async () => {
    await seed(1000);
    const started = await syncUsageSnapshots(syncDeps(), { budgetMs: 0, messageId: "msg_lease_republish" });
    // The worker of step 0 died after handing over, before publishing: QStash redelivers its message.
    const redelivered = await deliver({}, "msg_lease_republish");
    expect(redelivered).toMatchObject({ status: 200, body: { duplicate: true, step: 1 } });
    // And once more (say, the reply to the first redelivery was lost): the same continuation, not a second one.
    await deliver({}, "msg_lease_republish");
    await qstash.idle();

    const [run] = await fx.runs();
    expect(run).toMatchObject({ id: started.runId, status: "succeeded", users: 1000 });
    expectOneContinuationPerStep(run.id, 1, run.step);
  });
});

describe("one worker per sync run: lapsed leases and a Postgres reset", () => {
  it("takes over an expired lease, completes with exact totals, and refuses the stale worker's late write", async () => {
    const counts = await seed(1500);
    // Worker A reads its first page, then stalls on the next SCAN (a frozen or cut-off function) until released.
    let releaseA = () => {};
    const aStalled = new Promise<void>((resolve) => (releaseA = resolve));
    let scansOfA = 0;
    const plain = syncDeps().redis;
    const redisOfA = new Proxy(plain, {
      get(target, property, receiver) {
        if (property !== "scan") return Reflect.get(target, property, receiver);
        return async (...args: Parameters<Redis["scan"]>) => {
          if (++scansOfA > 1) await aStalled;
          return target.scan(...args);
        };
      },
    });
    const options = { messageId: "msg_lease_c", leaseMs: 300, batchSize: 100 };
    const stale = syncUsageSnapshots({ redis: redisOfA, db }, options);
    await until(async () => scansOfA >= 2, "worker A to stall");
    await sleep(400);

    // Worker B, a redelivery of the same message, finds the lease lapsed and does the whole step itself.
    const takeover = await syncUsageSnapshots(syncDeps(), options);
    expect(takeover).toMatchObject({ status: "succeeded", users: 1500, skipped: 0, chunks: 1 });
    const finished = await db.syncRun.findFirstOrThrow();
    expect(finished).toMatchObject({ status: "succeeded", users: 1500, chunks: 1, leaseOwner: null });

    // A wakes up with its first page committed and tries to record it: refused, and it stops there.
    releaseA();
    const late = await stale;
    expect(late).toMatchObject({ superseded: true, status: "succeeded", users: 1500 });
    expect(late.next).toBeUndefined();
    expect(await db.syncRun.findFirstOrThrow()).toEqual(finished);
    expect(await fx.snapshots()).toEqual(expectedSnapshots(counts, finished.hour, PERIOD));
  });

  it("resumes after Postgres is reset mid-batch; every snapshot ends with the Redis value, each user counted once", async () => {
    const counts = await seed(3000);
    const proxy = await startTcpFaultProxy({ target: targetOf(process.env.DATABASE_URL!) });
    // Without it a backend notices its lost client only when it next writes to it, after committing the batch;
    // with it the batch in flight is aborted, so the retry has to write it again.
    const url = new URL(proxy.urlFor(process.env.DATABASE_URL!));
    url.searchParams.set("options", "-c client_connection_check_interval=50");
    const proxied: Db = createPrismaClient(url.toString());
    try {
      // Slow round trips keep statements on the wire long enough to be cut.
      proxy.setMode({ delayMs: 10 });
      const deps = { redis: syncDeps().redis, db: proxied };
      const options = { messageId: "msg_lease_reset", leaseMs: 1000, batchSize: 100 };
      const first = syncUsageSnapshots(deps, options);
      await until(async () => {
        const run = await db.syncRun.findFirst({ select: { cursor: true } });
        return run !== null && run.cursor !== "0";
      }, "a recorded page");
      proxy.resetAll();
      proxy.setMode("pass");

      const failed = await first;
      expect(failed.status).toBe("failed");
      expect(proxy.stats.resetByTest).toBeGreaterThan(0);
      const recorded = await db.syncRun.findFirstOrThrow();
      expect(recorded.cursor).not.toBe("0");
      expect(recorded.users).toBeGreaterThan(0);
      expect(recorded.users).toBeLessThan(3000);

      // QStash's retries of the same message; one may find the lease still held if the failure was not recorded.
      let result = failed;
      for (let attempt = 0; attempt < 5 && result.status !== "succeeded"; attempt++) {
        if (result.busy) await sleep(result.busy.retryAfterMs + 20);
        result = await syncUsageSnapshots(deps, options);
      }
      // Additive totals from the saved cursor on: had the retry started over, users would exceed 3000.
      expect(result).toMatchObject({ runId: failed.runId, status: "succeeded", users: 3000, skipped: 0 });
      const run = await db.syncRun.findFirstOrThrow();
      expect(run).toMatchObject({ status: "succeeded", users: 3000, error: null, leaseOwner: null });
      expect(await fx.snapshots()).toEqual(expectedSnapshots(counts, run.hour, PERIOD));
    } finally {
      await proxied.$disconnect();
      await proxy.close();
    }
  });
});

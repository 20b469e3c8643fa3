import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { Redis as IORedis } from "ioredis";
import pg from "pg";
import { startRedisRestProcess } from "../dev/redis-rest-process";
import { createScratchDatabase } from "../scripts/lib/scratch-db";
import { loopbackProductionSecrets } from "./lib/metered-sheet";
import { USAGE_RANGES, type UsageRange } from "~/utils/usage-ranges";
import { loader as dashboardLoader } from "~/routes/dashboard";
import { loader as liveLoader } from "~/routes/dashboard.live";
import { getDb } from "~/utils/db.server";
import { hourBucket, periodOf, quotaKey } from "~/utils/period";
import { createUserSession } from "~/utils/session.server";

/**
 * `npm run bench:dashboard`: the dashboard loader, called in-process exactly as Remix calls it (session cookie →
 * requireUser → live count over the Upstash REST protocol + history, last sync and sheets from Postgres → JSON),
 * for a customer with 90 days of hourly snapshots, against a scratch database and Redis database of its own.
 * In-process so the figure is the loader's own cost, not HTTP parsing or React rendering. Sequential calls:
 * this measures the latency one customer sees, not throughput. The last stdout line is one JSON object.
 */
const { values: flags } = parseArgs({
  options: {
    iterations: { type: "string", default: "300" },
    warmup: { type: "string", default: "30" },
    "other-users": { type: "string", default: "20" },
    keep: { type: "boolean", default: false },
  },
});
const ITERATIONS = Number(flags.iterations);
const WARMUP = Number(flags.warmup);
const OTHER_USERS = Number(flags["other-users"]);
const HISTORY_DAYS = 90;
const TARGET_P95_MS = 30;
const PG_ADMIN_URL = process.env.BENCH_PG_ADMIN_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
const REDIS_URL = process.env.BENCH_REDIS_URL ?? process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
// Its own logical database: tests use 1–14 by worker id, the sync bench 11, e2e 15, `npm run dev` 0.
const REDIS_DB = 10;

const log = (line: string) => console.error(line);

function percentile(sorted: number[], p: number): number {
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return Math.round(sorted[Math.max(0, index)] * 100) / 100;
}

function summarize(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: percentile(sorted, 100),
  };
}

/**
 * Hourly cumulative snapshots generated in SQL (one statement for all users): the count grows by a varying amount
 * each hour and restarts at every UTC month, as the real sync records it. Also one SyncRun per hour, so the "last
 * sync" query runs against a realistic table.
 */
async function seed(url: string, customerIds: string[], end: Date) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(
      `INSERT INTO "User" (id, email, "passwordHash", "monthlyLimit", "updatedAt")
       SELECT id, id || '@bench.example', 'not-a-hash', 100000, now() FROM unnest($1::text[]) AS id`,
      [customerIds],
    );
    await client.query(
      `INSERT INTO "UsageSnapshot" ("userId", period, hour, used)
       SELECT u.id, to_char(h.hour, 'YYYY-MM'), h.hour,
              sum(10 + (extract(hour FROM h.hour)::int * 7) % 40)
                OVER (PARTITION BY u.id, date_trunc('month', h.hour) ORDER BY h.hour)
       FROM unnest($1::text[]) AS u(id)
       CROSS JOIN generate_series($2::timestamp - make_interval(hours => $3::int - 1), $2::timestamp, '1 hour') AS h(hour)`,
      [customerIds, end.toISOString().slice(0, 19), HISTORY_DAYS * 24],
    );
    await client.query(
      `INSERT INTO "SyncRun" (id, hour, "startedAt", "finishedAt", status, users)
       SELECT 'run' || n, h, h + interval '1 second', h + interval '3 seconds', 'succeeded', $3::int
       FROM generate_series($1::timestamp - make_interval(hours => $2::int - 1), $1::timestamp, '1 hour')
            WITH ORDINALITY AS g(h, n)`,
      [end.toISOString().slice(0, 19), HISTORY_DAYS * 24, customerIds.length],
    );
    for (let s = 0; s < 5; s++) {
      await client.query(
        `INSERT INTO "Sheet" (id, "userId", name, columns, "rowCount") VALUES ($1, $2, $3, ARRAY['a','b'], $4)`,
        [`sheet${s}`, customerIds[0], `Sheet ${s + 1}`, 1000 * (s + 1)],
      );
    }
    await client.query("ANALYZE");
    const { rows } = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM "UsageSnapshot" WHERE "userId" = $1`,
      [customerIds[0]],
    );
    return Number(rows[0].n);
  } finally {
    await client.end();
  }
}

/** The dashboard answers `data(value, init)`, the live route a Response. */
type LoaderAnswer = Response | { data: unknown; init: ResponseInit | null };

async function time(run: () => Promise<LoaderAnswer>): Promise<number> {
  const started = performance.now();
  const answer = await run();
  // The body is what goes over the wire; producing it is part of the cost a customer waits for. (Remix encodes
  // a page's data with turbo-stream; JSON is the same amount of work to within the noise here.)
  let status: number;
  if (answer instanceof Response) {
    await answer.text();
    status = answer.status;
  } else {
    JSON.stringify(answer.data);
    status = answer.init?.status ?? 200;
  }
  const elapsed = performance.now() - started;
  if (status !== 200) throw new Error(`loader answered ${status}`);
  return elapsed;
}

async function main() {
  // The stand-in runs in a process of its own: in production Upstash runs elsewhere, so its request handling must
  // not share the event loop (and the CPU) with the loader being measured.
  const scratch = await createScratchDatabase(PG_ADMIN_URL, "sm_bench_dash");
  const url = scratch.url;
  const raw = new IORedis(REDIS_URL, { db: REDIS_DB });
  const token = `bench-${randomBytes(8).toString("hex")}`;
  const rest = await startRedisRestProcess({ redisUrl: REDIS_URL, token, db: REDIS_DB });

  try {
    await raw.flushdb();
    // The app reads its configuration lazily, on first use, so setting it here (before any call) is enough.
    Object.assign(process.env, {
      NODE_ENV: "production",
      DATABASE_URL: url,
      UPSTASH_REDIS_REST_URL: rest.url,
      UPSTASH_REDIS_REST_TOKEN: token,
      APP_URL: "http://127.0.0.1",
      ...loopbackProductionSecrets(),
    });

    const now = new Date();
    const customerIds = Array.from({ length: OTHER_USERS + 1 }, (_, i) => `cdash${String(i).padStart(20, "0")}`);
    const customer = customerIds[0];
    log(`seeding ${HISTORY_DAYS} days of hourly snapshots for ${customerIds.length} users…`);
    const snapshots = await seed(url, customerIds, hourBucket(now));
    await raw.set(quotaKey(customer, periodOf(now)), 4321);

    const login = await createUserSession(new Request("http://bench/login"), customer, "/dashboard");
    const cookie = login.headers.get("Set-Cookie")!.split(";")[0];
    const request = (path: string) => new Request(`http://bench${path}`, { headers: { Cookie: cookie } });
    const callDashboard = (range: UsageRange) => () =>
      dashboardLoader({ request: request(`/dashboard?range=${range}`), params: {}, context: {} });
    const callLive = () => liveLoader({ request: request("/dashboard/live"), params: {}, context: {} });

    // Sanity: the loader sees the seeded data (a bench of an empty page would prove nothing).
    const check = (await callDashboard("30d")()).data;
    if (!check.usage.ok || !check.history.ok || check.history.data.points.length === 0) {
      throw new Error(`dashboard did not load the seeded data: ${JSON.stringify(check).slice(0, 300)}`);
    }
    log(`customer has ${snapshots} snapshots; 30 d range sends ${check.history.data.points.length} points`);

    for (let i = 0; i < WARMUP; i++) {
      for (const range of Object.keys(USAGE_RANGES) as UsageRange[]) await time(callDashboard(range));
    }

    const results: Record<string, ReturnType<typeof summarize> & { points: number }> = {};
    for (const range of Object.keys(USAGE_RANGES) as UsageRange[]) {
      const samples: number[] = [];
      for (let i = 0; i < ITERATIONS; i++) samples.push(await time(callDashboard(range)));
      const { history } = (await callDashboard(range)()).data;
      const points = history.ok ? history.data.points.length : 0;
      results[range] = { ...summarize(samples), points };
      log(
        `dashboard ?range=${range.padEnd(3)}  p50 ${results[range].p50} ms  p95 ${results[range].p95} ms  p99 ${results[range].p99} ms  (${points} points)`,
      );
    }
    const liveSamples: number[] = [];
    for (let i = 0; i < ITERATIONS; i++) liveSamples.push(await time(callLive));
    const live = summarize(liveSamples);
    log(`dashboard/live        p50 ${live.p50} ms  p95 ${live.p95} ms  p99 ${live.p99} ms`);

    const worstP95 = Math.max(...Object.values(results).map((r) => r.p95));
    console.log(
      JSON.stringify({
        bench: "dashboard",
        mode: "in-process loader; Redis REST stand-in in its own process",
        iterations: ITERATIONS,
        snapshots,
        otherUsers: OTHER_USERS,
        ranges: results,
        live,
        targetP95Ms: TARGET_P95_MS,
        worstP95Ms: worstP95,
        pass: worstP95 <= TARGET_P95_MS,
      }),
    );
    if (worstP95 > TARGET_P95_MS) process.exitCode = 1;
  } finally {
    await getDb().$disconnect();
    await rest.stop();
    if (flags.keep) {
      log(`kept database ${scratch.name} and Redis db ${REDIS_DB}`);
    } else {
      await raw.flushdb();
      await scratch.drop();
    }
    raw.disconnect();
  }
}

await main();

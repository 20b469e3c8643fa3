import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import v8 from "node:v8";
import { Redis } from "@upstash/redis";
import { Redis as IORedis } from "ioredis";
import pg from "pg";
import { migrate } from "../scripts/lib/migrations";
import {
  DEFAULT_BATCH_SIZE,
  DEFAULT_SCAN_COUNT,
  DEFAULT_WINDOW_ROWS,
  DEFAULT_WRITERS,
  emptySyncTimings,
  syncUsageSnapshots,
} from "~/models/usage-sync.server";
import { createSyncRedis } from "~/utils/redis.server";
import { createPrismaClient } from "~/utils/db.server";
import { HOUR_MS, hourBucket, periodOf, quotaKey } from "~/utils/period";

/**
 * `npm run bench:sync -- --users N`: the real sync, end to end (Redis over the Upstash REST protocol → batched
 * upserts in Postgres), against a scratch database and Redis database of its own, then the naive approach (one
 * Prisma transaction per user) on a sample, in the same run and on the same data. The last stdout line is one JSON
 * object so CI can read the figures.
 */
const { values: flags } = parseArgs({
  options: {
    users: { type: "string", default: "1000000" },
    sample: { type: "string", default: "2000" },
    "scan-count": { type: "string", default: String(DEFAULT_SCAN_COUNT) },
    "batch-size": { type: "string", default: String(DEFAULT_BATCH_SIZE) },
    "window-rows": { type: "string", default: String(DEFAULT_WINDOW_ROWS) },
    writers: { type: "string", default: String(DEFAULT_WRITERS) },
    keep: { type: "boolean", default: false },
    // Puts back the design before docs/decisions/0008 in the scratch database (the foreign key UsageSnapshot →
    // User and the (userId, period) index, instead of the triggers), to measure what they cost in the same run.
    "with-fk": { type: "boolean", default: false },
    // API keys per user, each with calls this month in the user's per-key hash (`keyusage:`), so the sync also reads
    // and writes per-key snapshots as a deployment whose customers use keys would. 0 (the default) keeps the figures
    // comparable with runs before per-key usage.
    "keys-per-user": { type: "string", default: "0" },
  },
});
const USERS = Number(flags.users);
const SAMPLE = Math.min(Number(flags.sample), USERS);
const KEYS_PER_USER = Number(flags["keys-per-user"]);
const PG_ADMIN_URL = process.env.BENCH_PG_ADMIN_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
const REDIS_URL = process.env.BENCH_REDIS_URL ?? process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
// Its own logical database: the test files use 1–14 by worker id, but only the first few in practice, and `npm
// run dev` uses 0.
const REDIS_DB = 11;
// Counters written per Lua call while seeding: each call blocks Redis for ~0.1 s, and the bench process holds nothing.
const SEED_CHUNK = 100_000;
const SEED_COUNTERS = `
  local period = ARGV[3]
  local keys = tonumber(ARGV[4])
  for n = tonumber(ARGV[1]), tonumber(ARGV[2]) do
    redis.call('SET', string.format('quota:cbench%019d:%s', n, period), (n * 7919) % 100000 + 1)
    for k = 1, keys do
      redis.call('HSET', string.format('keyusage:cbench%019d:%s', n, period), string.format('kbench%019d-%d', n, k), k)
    end
  end
  return 0`;

const log = (line: string) => console.error(line);

/** CPU time (user + system) a process has used, in ms, from /proc (Linux); 0 once it is gone. */
function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which is in parentheses and may hold spaces: utime and stime are 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}
const CLOCK_TICKS = 100;

/**
 * The CPU the other processes of the sync use while it runs: Redis, the REST stand-in, and this database's
 * Postgres backends (the writers; Postgres's shared WAL writer and checkpointer are not counted). With the sync
 * process's own CPU this says which part the machine's two cores spend the run on.
 */
async function otherCpu(admin: pg.Client, raw: IORedis, database: string, restPid: number) {
  const info = await raw.info("server");
  const redisPid = Number(/process_id:(\d+)/.exec(info)?.[1]);
  const backends = async () =>
    (await admin.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE datname = $1`, [database])).rows.map(
      (row) => row.pid,
    );
  const start = new Map<number, number>();
  for (const pid of [redisPid, restPid, ...(await backends())]) start.set(pid, processCpuMs(pid));
  return async () => {
    const used = (pid: number) => Math.round(processCpuMs(pid) - (start.get(pid) ?? 0));
    let postgres = 0;
    for (const pid of await backends()) postgres += used(pid);
    return { redisCpuMs: used(redisPid), restCpuMs: used(restPid), postgresCpuMs: postgres };
  };
}

function databaseUrl(name: string): string {
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

// Users are numbered so the expected count of each is computable in SQL when verifying.
const userId = (n: number) => `cbench${String(n).padStart(19, "0")}`;
const expectedCount = (n: number) => ((n * 7919) % 100_000) + 1;

async function seed(url: string, raw: IORedis, period: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // Generated server-side: seeding a million users costs one statement, not a million round trips.
    await client.query(
      `INSERT INTO "User" (id, email, "passwordHash", "updatedAt")
       SELECT 'cbench' || lpad(n::text, 19, '0'), 'bench' || n || '@example.test', 'not-a-hash', now()
       FROM generate_series(1, $1::int) AS n`,
      [USERS],
    );
    if (KEYS_PER_USER > 0) {
      await client.query(
        `INSERT INTO "ApiKey" (id, "userId", name, hash, prefix)
         SELECT 'kbench' || lpad(n::text, 19, '0') || '-' || k, 'cbench' || lpad(n::text, 19, '0'), 'bench',
                md5(n || '-' || k), 'sm_live_bench'
         FROM generate_series(1, $1::int) AS n, generate_series(1, $2::int) AS k`,
        [USERS, KEYS_PER_USER],
      );
      await client.query(`VACUUM (ANALYZE) "ApiKey"`);
    }
    // A live database's User table has long been vacuumed: hint bits set, visibility map current. Without this the
    // timed run would pay for setting hint bits on every freshly loaded row, and autovacuum would wake up mid-run.
    await client.query(`VACUUM (ANALYZE) "User"`);
  } finally {
    await client.end();
  }
  // Generated inside Redis: seeding from here made this process peak at 260 MB before the sync had started, and its
  // peak RSS is the sync's figure. The keys are checked against quotaKey below, so both stay the same format.
  for (let start = 1; start <= USERS; start += SEED_CHUNK) {
    await raw.eval(SEED_COUNTERS, 0, start, Math.min(start + SEED_CHUNK - 1, USERS), period, KEYS_PER_USER);
  }
  const sample = await raw.get(quotaKey(userId(USERS), period));
  if (sample !== String(expectedCount(USERS))) throw new Error(`seeded counters are not as expected: ${sample}`);
}

async function verify(url: string, hour: Date): Promise<{ rows: number; wrong: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ rows: string; wrong: string }>(
      `SELECT count(*) AS rows,
              count(*) FILTER (WHERE used <> ((substring("userId" FROM 7)::bigint * 7919) % 100000) + 1
                               OR hour <> $1::timestamp) AS wrong
       FROM "UsageSnapshot"`,
      [hour.toISOString().slice(0, 19).replace("T", " ")],
    );
    return { rows: Number(rows[0].rows), wrong: Number(rows[0].wrong) };
  } finally {
    await client.end();
  }
}

/**
 * One transaction per user, values read per page of keys: the write path the issue measures as "naive". `db` decides
 * its durability: the bench runs it with the sync's `synchronous_commit = off` (the speed-up compares designs) and
 * with the server's default (what a naive version would really wait for).
 */
async function baseline(db: ReturnType<typeof createPrismaClient>, redis: Redis, period: string, hour: Date) {
  const started = performance.now();
  for (let start = 1; start <= SAMPLE; start += 1000) {
    const ids = Array.from({ length: Math.min(1000, SAMPLE - start + 1) }, (_, i) => userId(start + i));
    const counts = await redis.mget<(number | null)[]>(ids.map((id) => quotaKey(id, period)));
    for (const [i, id] of ids.entries()) {
      const used = Number(counts[i]);
      await db.$transaction([
        db.usageSnapshot.upsert({
          where: { userId_hour: { userId: id, hour } },
          create: { userId: id, period, hour, used },
          update: { used },
        }),
      ]);
    }
  }
  return (performance.now() - started) / 1000;
}

/**
 * The REST stand-in in a process of its own, as Upstash is a service of its own: in this process it would compete
 * with the sync for the one event loop and its garbage would count in the sync's peak RSS.
 */
async function startRestProcess(token: string) {
  const module = pathToFileURL(path.resolve(import.meta.dirname, "../dev/redis-rest.ts")).href;
  const script = `
    import { startRedisRest } from ${JSON.stringify(module)};
    const rest = await startRedisRest({ redisUrl: process.env.BENCH_REDIS_URL, token: process.env.BENCH_TOKEN, db: ${REDIS_DB} });
    console.log(rest.url);
    process.on("SIGTERM", async () => {
      console.log(JSON.stringify({ maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024) }));
      await rest.close();
      process.exit(0);
    });`;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "--eval", script], {
    env: { ...process.env, BENCH_REDIS_URL: REDIS_URL, BENCH_TOKEN: token },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done) throw new Error("the Redis REST stand-in did not start");
  return {
    url: String(first.value),
    pid: child.pid!,
    /** Stops it and returns its peak RSS in MB. */
    async close(): Promise<number> {
      child.kill("SIGTERM");
      const stats = await lines.next();
      await once(child, "exit").catch(() => {});
      return stats.done ? NaN : (JSON.parse(String(stats.value)) as { maxRssMb: number }).maxRssMb;
    },
  };
}

async function main() {
  const database = `sm_bench_sync_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${database}"`);
  const url = databaseUrl(database);
  const raw = new IORedis(REDIS_URL, { db: REDIS_DB });
  const token = `bench-${randomBytes(8).toString("hex")}`;
  const rest = await startRestProcess(token);
  const db = createPrismaClient(url);
  // The client the route and the CLI give the sync, so the figure is what production would do.
  const redis = createSyncRedis(rest.url, token);
  let restPeakRssMb: number | undefined;

  try {
    await migrate(url);
    if (flags["with-fk"]) {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`DROP TRIGGER "UsageSnapshot_user_exists" ON "UsageSnapshot"`);
      await client.query(
        `ALTER TABLE "UsageSnapshot" ADD CONSTRAINT "UsageSnapshot_userId_fkey" FOREIGN KEY ("userId")
         REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE`,
      );
      await client.query(`CREATE INDEX "UsageSnapshot_userId_period_idx" ON "UsageSnapshot"("userId", "period")`);
      await client.end();
      log("foreign key and (userId, period) index put back, insert trigger dropped (--with-fk)");
    }
    await raw.flushdb();
    const now = new Date();
    const period = periodOf(now);
    const hour = hourBucket(now);

    let t = performance.now();
    await seed(url, raw, period);
    log(`seeded ${USERS} users and counters in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    await db.$queryRaw`SELECT 1`; // open the pool outside the timed part

    const before = process.memoryUsage();
    log(`before the sync: RSS ${mb(before.rss)} MB, heap ${mb(before.heapUsed)} MB (peak so far ${maxRss()} MB)`);
    // Where the sync's memory goes, sampled: the peak RSS alone cannot tell retained data from uncollected garbage.
    const memory = { rss: 0, heapUsed: 0, heapTotal: 0, external: 0 };
    const sampler = setInterval(() => {
      const now = process.memoryUsage();
      for (const key of Object.keys(memory) as (keyof typeof memory)[]) memory[key] = Math.max(memory[key], now[key]);
    }, 200);
    const timings = emptySyncTimings();
    const loadBefore = os.loadavg()[0];
    const cpuBefore = process.cpuUsage();
    const othersCpu = await otherCpu(admin, raw, database, rest.pid);
    t = performance.now();
    const result = await syncUsageSnapshots(
      { redis, db },
      {
        now,
        scanCount: Number(flags["scan-count"]),
        batchSize: Number(flags["batch-size"]),
        windowRows: Number(flags["window-rows"]),
        writers: Number(flags.writers),
        timings,
      },
    );
    const seconds = (performance.now() - t) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const others = await othersCpu();
    clearInterval(sampler);
    log(
      `during the sync (sampled): RSS ≤ ${mb(memory.rss)} MB, heap used ≤ ${mb(memory.heapUsed)} MB of ≤ ${mb(memory.heapTotal)} MB, external ≤ ${mb(memory.external)} MB`,
    );
    log(`sync: ${JSON.stringify(result)}`);
    const phases = {
      ...Object.fromEntries(Object.entries(timings).map(([name, ms]) => [name, Math.round(ms)])),
      syncProcessCpuMs: Math.round((cpu.user + cpu.system) / 1000),
      ...others,
    };
    log(`phases (ms, summed; reads and writes overlap): ${JSON.stringify(phases)}`);
    // The machine is shared: wall time depends on what else runs, CPU time far less. All four processes' CPU over
    // the cores is the least wall time the run could take with the machine to itself and perfect overlap.
    const totalCpuMs = phases.syncProcessCpuMs + others.redisCpuMs + others.restCpuMs + others.postgresCpuMs;
    const cores = os.availableParallelism();
    const idleMachineCeiling = Math.round(USERS / (totalCpuMs / 1000 / cores));
    const loadAverage = round(Math.max(loadBefore, os.loadavg()[0]), 1);
    log(
      `CPU: ${totalCpuMs} ms in all (${round((totalCpuMs / USERS) * 1000, 1)} µs a user); on ${cores} idle cores at most ${idleMachineCeiling} users/s; load average ${loadAverage}`,
    );
    if (result.status !== "succeeded") throw new Error(`sync ended ${result.status}: ${result.error ?? ""}`);

    const check = await verify(url, hour);
    if (check.rows !== USERS || check.wrong !== 0 || result.users !== USERS) {
      throw new Error(
        `verification failed: ${check.rows} rows of ${USERS}, ${check.wrong} wrong, run says ${result.users}`,
      );
    }
    log(`verified: ${check.rows} snapshots, all with the Redis value`);
    if (KEYS_PER_USER > 0) {
      const [{ keyRows }] = await db.$queryRaw<{ keyRows: number }[]>`
        SELECT count(*)::int AS "keyRows" FROM "KeyUsageSnapshot"`;
      if (keyRows !== USERS * KEYS_PER_USER) throw new Error(`verification failed: ${keyRows} key snapshots`);
      log(`verified: ${keyRows} key snapshots (${KEYS_PER_USER} per user)`);
    }

    // The sync's peak, before the baseline's own client and garbage can add to it.
    const peakRssMb = maxRss();
    const heapLimitMb = mb(v8.getHeapStatistics().heap_size_limit);
    // Other hours, so the baseline inserts rows as a first sync would instead of updating the ones just written.
    const asyncCommitDb = createPrismaClient(withOptions(url, "-c synchronous_commit=off"));
    let baselineSeconds: number;
    let baselineSyncCommitSeconds: number;
    try {
      baselineSeconds = await baseline(asyncCommitDb, redis, period, new Date(hour.getTime() + HOUR_MS));
      baselineSyncCommitSeconds = await baseline(db, redis, period, new Date(hour.getTime() + 2 * HOUR_MS));
    } finally {
      await asyncCommitDb.$disconnect();
    }
    const usersPerSec = USERS / seconds;
    const baselineUsersPerSec = SAMPLE / baselineSeconds;
    const baselineSyncCommitUsersPerSec = SAMPLE / baselineSyncCommitSeconds;
    restPeakRssMb = await rest.close();
    const summary = {
      users: USERS,
      seconds: round(seconds, 3),
      usersPerSec: Math.round(usersPerSec),
      baselineUsersPerSec: Math.round(baselineUsersPerSec),
      speedup: round(usersPerSec / baselineUsersPerSec, 1),
      baselineSyncCommitUsersPerSec: Math.round(baselineSyncCommitUsersPerSec),
      speedupOverSyncCommit: round(usersPerSec / baselineSyncCommitUsersPerSec, 1),
      design: flags["with-fk"] ? "foreign key" : "triggers",
      keysPerUser: KEYS_PER_USER,
      peakRssMb,
      heapLimitMb,
      loadAverage,
      cpuMsPerKUser: round((totalCpuMs / USERS) * 1000, 1),
      idleMachineCeilingUsersPerSec: idleMachineCeiling,
      phases,
    };
    console.log(`users/s:          ${summary.usersPerSec} (${USERS} users in ${summary.seconds} s)`);
    console.log(
      `batches:          ${result.batches} (SCAN COUNT ${flags["scan-count"]}, batch ${flags["batch-size"]}, window ${flags["window-rows"]} rows, ${flags.writers} writers)`,
    );
    console.log(
      `baseline users/s: ${summary.baselineUsersPerSec} (one transaction per user, ${SAMPLE} users, synchronous_commit off as the sync)`,
    );
    console.log(`speed-up:         ${summary.speedup}×`);
    console.log(
      `baseline users/s: ${summary.baselineSyncCommitUsersPerSec} (the same with synchronous_commit on): speed-up ${summary.speedupOverSyncCommit}×`,
    );
    console.log(
      `peak RSS:         ${summary.peakRssMb} MB, V8 heap limit ${heapLimitMb} MB (REST stand-in, its own process: ${restPeakRssMb} MB)`,
    );
    console.log(JSON.stringify(summary));
  } finally {
    await db.$disconnect();
    if (!flags.keep) {
      await raw.flushdb();
      await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    } else {
      log(`kept database ${database} and Redis db ${REDIS_DB}`);
    }
    raw.disconnect();
    if (restPeakRssMb === undefined) await rest.close();
    await admin.end();
  }
}

const mb = (bytes: number) => Math.round(bytes / 1024 / 1024);
/** This process's peak resident set since it started, in MB (getrusage's ru_maxrss). */
const maxRss = () => Math.round(process.resourceUsage().maxRSS / 1024);

function withOptions(url: string, options: string): string {
  const withOpts = new URL(url);
  withOpts.searchParams.set("options", options);
  return withOpts.toString();
}

function round(value: number, digits: number) {
  return Number(value.toFixed(digits));
}

await main();

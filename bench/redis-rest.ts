import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { Redis } from "@upstash/redis";
import { Redis as IORedis } from "ioredis";
import { loadRawEnv } from "~/utils/env.server";
import { startRedisRest } from "../dev/redis-rest";

/**
 * `npm run bench:redis`: what the Upstash REST protocol costs locally. The same INCR, with the same number of
 * calls in flight, through `@upstash/redis` → REST stand-in → Redis and straight to Redis over TCP with ioredis.
 * The SDK runs as the app configures it (auto-pipelining on, its default) and, for reference, with one HTTP
 * request per command. Closed loop: each of the `--concurrency` workers issues its next call when the previous one
 * answers. The stand-in runs in a child process of its own, as in `npm run dev`, so it does not share an event
 * loop with the load generator. Redis database 13, one key of its own, deleted afterwards. The last stdout line
 * is one JSON object.
 */
const { values: flags } = parseArgs({
  options: {
    seconds: { type: "string", default: "6" },
    concurrency: { type: "string", default: "50" },
    warmup: { type: "string", default: "1" },
    // Internal: run only the stand-in and print its URL (the parent process spawns this).
    serve: { type: "string" },
  },
});
const SECONDS = Number(flags.seconds);
const CONCURRENCY = Number(flags.concurrency);
const WARMUP_SECONDS = Number(flags.warmup);
const REDIS_DB = 13;

interface Result {
  name: string;
  requests: number;
  errors: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function drive(seconds: number, call: () => Promise<unknown>) {
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        try {
          await call();
          latencies.push(performance.now() - t0);
        } catch {
          errors++;
        }
      }
    }),
  );
  return { latencies, errors, elapsedMs: performance.now() - started };
}

async function measure(name: string, call: () => Promise<unknown>): Promise<Result> {
  await drive(WARMUP_SECONDS, call);
  const { latencies, errors, elapsedMs } = await drive(SECONDS, call);
  const sorted = Float64Array.from(latencies).sort();
  const round = (value: number) => Math.round(value * 100) / 100;
  return {
    name,
    requests: latencies.length,
    errors,
    requestsPerSecond: Math.round((latencies.length / elapsedMs) * 1000),
    p50Ms: round(percentile(sorted, 50)),
    p99Ms: round(percentile(sorted, 99)),
  };
}

const redisUrl = loadRawEnv().REDIS_URL ?? "redis://127.0.0.1:6379";

if (flags.serve !== undefined) {
  const rest = await startRedisRest({ redisUrl, token: flags.serve, db: REDIS_DB });
  console.log(rest.url);
  process.once("SIGTERM", () => void rest.close().then(() => process.exit(0)));
} else {
  await runBench();
}

async function startStandInProcess(token: string) {
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1], "--serve", token], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const [chunk] = (await once(child.stdout!, "data")) as [Buffer];
  return { url: chunk.toString().trim(), stop: () => child.kill("SIGTERM") };
}

async function runBench() {
  const token = randomBytes(16).toString("hex");
  const key = `bench:incr:${randomBytes(4).toString("hex")}`;
  const rest = await startStandInProcess(token);
  const direct = new IORedis(redisUrl, { db: REDIS_DB });
  try {
    const sdk = new Redis({ url: rest.url, token, enableTelemetry: false });
    const sdkUnpipelined = new Redis({ url: rest.url, token, enableTelemetry: false, enableAutoPipelining: false });

    const results = [
      await measure("@upstash/redis → REST stand-in (auto-pipelining, as the app)", () => sdk.incr(key)),
      await measure("@upstash/redis → REST stand-in (one request per command)", () => sdkUnpipelined.incr(key)),
      await measure("ioredis → Redis (TCP)", () => direct.incr(key)),
    ];
    const [viaRest, viaRestUnpipelined, viaTcp] = results;

    console.log(
      `INCR, ${CONCURRENCY} in flight, ${SECONDS} s each (after ${WARMUP_SECONDS} s warm-up), Redis db ${REDIS_DB}`,
    );
    for (const r of results) {
      console.log(
        `  ${r.name.padEnd(62)} ${String(r.requestsPerSecond).padStart(7)} req/s   p50 ${r.p50Ms} ms   p99 ${r.p99Ms} ms` +
          (r.errors ? `   errors ${r.errors}` : ""),
      );
    }
    const ratio = Math.round((viaTcp.requestsPerSecond / viaRest.requestsPerSecond) * 100) / 100;
    console.log(`  direct TCP is ${ratio}× the throughput of the REST path the app uses`);
    console.log(
      JSON.stringify({
        bench: "redis-rest",
        command: "INCR",
        concurrency: CONCURRENCY,
        seconds: SECONDS,
        rest: viaRest,
        restWithoutAutoPipelining: viaRestUnpipelined,
        tcp: viaTcp,
        tcpToRestThroughputRatio: ratio,
      }),
    );
  } finally {
    await direct.del(key);
    direct.disconnect();
    rest.stop();
  }
}

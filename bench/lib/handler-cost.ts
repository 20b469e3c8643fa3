import { handleSheetRequest } from "~/api/sheet-request.server";
import { createPrismaClient } from "~/utils/db.server";
import { createAppRedis } from "~/utils/redis.server";

/**
 * The handler's own cost, without any HTTP server: `handleSheetRequest` called in this process on a warm cache, as a
 * custom server would dispatch it, against the bench's Redis (REST stand-in) and Postgres. CPU microseconds per call
 * from `process.cpuUsage`, one call at a time and ten at a time (where quota checks share a pipelined round trip).
 * The quota's round trip is included (its client side: building, sending and decoding the request).
 */
export async function measureHandlerCost(options: {
  appEnv: Record<string, string>;
  key: string;
  sheetId: string;
  query: string;
  calls: number;
}): Promise<{ sequentialCpuUs: number; concurrent10CpuUs: number }> {
  // The handler reads the environment once (getEnv) for the bench-only bypass switch: production, as deployed.
  Object.assign(process.env, options.appEnv, { NODE_ENV: "production", APP_URL: "http://127.0.0.1" });
  const redis = createAppRedis({
    url: options.appEnv.UPSTASH_REDIS_REST_URL,
    token: options.appEnv.UPSTASH_REDIS_REST_TOKEN,
    timeoutMs: 5_000,
  });
  const db = createPrismaClient(options.appEnv.DATABASE_URL);
  const headers = new Headers({ Authorization: `Bearer ${options.key}` });
  const request = { url: `/api/v1/sheets/${options.sheetId}${options.query}`, headers };
  const call = async () => {
    const response = await handleSheetRequest({ redis, db }, request, options.sheetId);
    if (response.status !== 200) throw new Error(`handler answered ${response.status}`);
    await response.arrayBuffer();
  };
  const measure = async (concurrency: number) => {
    const started = process.cpuUsage();
    for (let done = 0; done < options.calls; done += concurrency) {
      await Promise.all(Array.from({ length: concurrency }, call));
    }
    const used = process.cpuUsage(started);
    return Math.round(((used.user + used.system) / options.calls) * 10) / 10;
  };
  try {
    await measure(10); // warm: caches filled, code optimised
    return { sequentialCpuUs: await measure(1), concurrent10CpuUs: await measure(10) };
  } finally {
    await db.$disconnect();
  }
}

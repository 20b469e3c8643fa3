import type { Redis } from "@upstash/redis";
import type { Db } from "~/utils/db.server";

export type DependencyState = { ok: true; latencyMs: number } | { ok: false; error: string };

const CHECK_TIMEOUT_MS = 2_000;

async function timed(check: () => Promise<unknown>): Promise<DependencyState> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    // A hung dependency must not hang the health check: load balancers give up on slow probes anyway.
    await Promise.race([
      check(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
      }),
    ]);
    return { ok: true, latencyMs: Math.round(performance.now() - started) };
  } catch (error) {
    return { ok: false, error: (error as Error).message.split("\n")[0] };
  } finally {
    clearTimeout(timer);
  }
}

export async function checkHealth(db: Db, redis: Redis) {
  const [postgres, redisState] = await Promise.all([timed(() => db.$queryRaw`SELECT 1`), timed(() => redis.ping())]);
  return { ok: postgres.ok && redisState.ok, postgres, redis: redisState };
}

import { Redis } from "@upstash/redis";
import { TEST_REDIS_URL } from "../tests/setup/test-env";
import { startRedisRest, type RedisRestServer } from "./redis-rest";

/** This test file's Redis database (claimed in tests/setup/per-file.ts), so files never see each other's keys. */
export const testRedisDb = () => Number(process.env.TEST_REDIS_DB);

/** A stand-in of the test file's own, in front of its Redis database, and the SDK client that talks to it. */
export async function startStandInWithClient(token: string): Promise<{ rest: RedisRestServer; redis: Redis }> {
  const rest = await startRedisRest({ redisUrl: TEST_REDIS_URL, token, db: testRedisDb() });
  return { rest, redis: new Redis({ url: rest.url, token, enableTelemetry: false }) };
}

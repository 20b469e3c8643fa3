import { Redis } from "@upstash/redis";
import { getEnv } from "./env.server";

// Created once and kept across dev reloads; @upstash/redis is stateless HTTP, so one instance serves every request.
const globalForRedis = globalThis as unknown as { __sheetmeterRedis?: Redis };

export function getRedis(): Redis {
  if (!globalForRedis.__sheetmeterRedis) {
    const env = getEnv();
    globalForRedis.__sheetmeterRedis = new Redis({
      url: env.UPSTASH_REDIS_REST_URL,
      token: env.UPSTASH_REDIS_REST_TOKEN,
      // A quota check must answer now or fail closed; the SDK's default of five retries with backoff would hold
      // an API call for seconds while Redis is down.
      retry: { retries: 1, backoff: () => 50 },
      enableTelemetry: false,
    });
  }
  return globalForRedis.__sheetmeterRedis;
}

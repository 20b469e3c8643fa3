import { Redis } from "@upstash/redis";
import { getEnv } from "./env.server";
import { createKeepAliveRequester } from "./redis-http.server";

// Created once and kept across dev reloads; @upstash/redis is stateless HTTP, so one instance serves every request.
const globalForRedis = globalThis as unknown as { __sheetmeterRedis?: Redis };

export function getRedis(): Redis {
  if (!globalForRedis.__sheetmeterRedis) {
    const env = getEnv();
    // The SDK's client over our keep-alive transport (see redis-http.server.ts for why). A client built on a
    // requester has no auto-pipelining: it rarely batched anything here (its window is two microtasks), and the
    // hot path batches its quota checks itself (quota.server.ts).
    globalForRedis.__sheetmeterRedis = new Redis(
      createKeepAliveRequester({
        url: env.UPSTASH_REDIS_REST_URL,
        token: env.UPSTASH_REDIS_REST_TOKEN,
        // A quota check must answer now or fail closed; the SDK's default of five retries with backoff would
        // hold an API call for seconds while Redis is down.
        retry: { retries: 1, backoff: () => 50 },
      }),
    );
  }
  return globalForRedis.__sheetmeterRedis;
}

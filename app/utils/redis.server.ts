import { Redis } from "@upstash/redis";
import { getEnv } from "./env.server";
import { createKeepAliveRequester } from "./redis-http.server";
import { releaseSingleton, replaceSingleton, singleton } from "./singleton.server";

const REDIS = "redis";
const SYNC_REDIS = "sync-redis";

/**
 * The app's client: the SDK over our keep-alive transport (see redis-http.server.ts for why), with a deadline on
 * every request. A client built on a requester has no auto-pipelining: it rarely batched anything here (its window
 * is two microtasks), and the hot path batches its quota checks itself (quota.server.ts). Exported so tests can
 * put the same client in front of a fault proxy.
 */
export function createAppRedis({ url, token, timeoutMs }: { url: string; token: string; timeoutMs: number }): Redis {
  const redis = new Redis(
    createKeepAliveRequester({
      url,
      token,
      timeoutMs,
      // One quick resend, inside the same deadline, for a request whose connection broke: a pooled socket the
      // server had closed, or a reply lost on the way back. The latter ran in Redis already, which is why every
      // write the app sends through this client is idempotent (see redis-http.server.ts). The SDK's default of
      // five retries with backoff would hold an API call for seconds while Redis is down.
      retry: { retries: 1, backoff: () => 10 },
    }),
  );
  timeoutByClient.set(redis, timeoutMs);
  return redis;
}

const timeoutByClient = new WeakMap<Redis, number>();

/**
 * The request deadline of `redis` if it is one of the app's clients, else the configured one. A quota consumption
 * takes its deadline from here, so Redis stops counting it no later than this client stops waiting for it.
 */
export function redisTimeoutMs(redis: Redis): number {
  return timeoutByClient.get(redis) ?? getEnv().REDIS_TIMEOUT_MS;
}

// @upstash/redis is stateless HTTP, so one instance serves every request.
export function getRedis(): Redis {
  return singleton(REDIS, () => {
    const env = getEnv();
    return createAppRedis({
      url: env.UPSTASH_REDIS_REST_URL,
      token: env.UPSTASH_REDIS_REST_TOKEN,
      timeoutMs: env.REDIS_TIMEOUT_MS,
    });
  });
}

/**
 * The Redis client the sync should be given. The app's client deserialises every reply — a JSON.parse attempt per
 * key, which throws for every "quota:…" key — and that alone costs more CPU than the rest of the sync together.
 * Keys and counters are plain strings, so this one hands them over raw. (The sync works with either client.)
 */
export function createSyncRedis(url: string, token: string): Redis {
  return new Redis({
    url,
    token,
    automaticDeserialization: false,
    // Replies as plain JSON strings rather than base64: keys and counters are ASCII, and the base64 round trip
    // (encoding on the server, decoding here) was a third of the time spent reading a page. A non-UTF-8 key or
    // value, which the app never writes, would arrive mangled and be skipped like any malformed one.
    responseEncoding: false,
    // A failed page fails the chunk and QStash retries the whole delivery; a short retry only covers a blip.
    retry: { retries: 2, backoff: (retryCount) => 100 * 2 ** retryCount },
    enableTelemetry: false,
  });
}

/** The sync's client for this deployment, created once like the app's. */
export function getSyncRedis(): Redis {
  return singleton(SYNC_REDIS, () => {
    const env = getEnv();
    return createSyncRedis(env.UPSTASH_REDIS_REST_URL, env.UPSTASH_REDIS_REST_TOKEN);
  });
}

/**
 * Forgets both clients so the next call builds them from the environment again. There is no connection to end:
 * REST clients hold only idle keep-alive sockets, which Node unrefs, so they never keep a process alive.
 */
export function closeRedis(): void {
  releaseSingleton(REDIS);
  releaseSingleton(SYNC_REDIS);
}

/** Makes `getRedis()` answer `redis` (say, one pointing at a dead port) until called with undefined. */
export function setRedisForTests(redis: Redis | undefined): void {
  replaceSingleton(REDIS, redis);
}

/** Makes `getSyncRedis()` answer `redis` until called with undefined, as `setRedisForTests` does for the app's. */
export function setSyncRedisForTests(redis: Redis | undefined): void {
  replaceSingleton(SYNC_REDIS, redis);
}

/** A hash reply as field/value pairs: the raw client gives the flat array Redis sends, the parsing one an object. */
export function hashEntries(reply: unknown): [string, unknown][] {
  if (Array.isArray(reply)) {
    const entries: [string, unknown][] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) entries.push([String(reply[i]), reply[i + 1]]);
    return entries;
  }
  return reply && typeof reply === "object" ? Object.entries(reply) : [];
}

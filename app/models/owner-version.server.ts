import { randomBytes } from "node:crypto";
import type { Redis } from "@upstash/redis";

/**
 * An account's cache version: `apikey:owner-version:{userId}` in Redis, a random token replaced whenever something
 * an API call relies on changes for that account — a key revoked, the monthly limit changed, a sheet deleted (or,
 * later, replaced). Every process keeps what a call needs about a key and a sheet in memory, tagged with the
 * version it read BEFORE reading that data; the quota script compares the tag with Redis on every metered call,
 * in the same round trip, and refuses to count a call made on out-of-date data, so the process reloads and runs
 * the call again. (See docs/caching.md.)
 *
 * Random, not a counter: after Redis loses the key (flush, failover, expiry) a counter would start again and could
 * come back to a value some process still holds, making stale data look current. A missing key reads as "", which
 * no bump ever writes. Under `apikey:` because nothing but counters may start with `quota:`.
 */
export const OWNER_VERSION_PREFIX = "apikey:owner-version:";
// Long enough to outlive any cached entry; when it expires, processes see "" instead of the token and reload once.
const OWNER_VERSION_TTL_SECONDS = 40 * 24 * 60 * 60;

export function ownerVersionKey(userId: string): string {
  return OWNER_VERSION_PREFIX + userId;
}

/** "v" + 12 random bytes: never all digits, so the client's JSON deserialisation cannot turn it into a number. */
export function newOwnerVersion(): string {
  return `v${randomBytes(12).toString("base64url")}`;
}

/** The version a reply carried (a token, or "" for a missing key), normalised to a string. */
export function ownerVersionOf(reply: unknown): string {
  return reply === null || reply === undefined || reply === false ? "" : String(reply);
}

/**
 * Tells every process that its cached data about this account is out of date. Call it AFTER the change is visible
 * to readers (Postgres committed, Redis key entries rewritten): a process reads the version before the data, so a
 * reload that raced with the change is tagged with the old version and is thrown away on its next call.
 */
export async function bumpOwnerVersion(redis: Redis, userId: string): Promise<void> {
  await redis.set(ownerVersionKey(userId), newOwnerVersion(), { ex: OWNER_VERSION_TTL_SECONDS });
}

/**
 * For pipelines: the same write as `bumpOwnerVersion`, queued behind the commands before it. `ttlSeconds` is for
 * a deleted account, whose version only has to outlive what processes may still hold in memory.
 */
export function queueOwnerVersionBump(
  pipeline: ReturnType<Redis["pipeline"]>,
  userId: string,
  ttlSeconds = OWNER_VERSION_TTL_SECONDS,
): void {
  pipeline.set(ownerVersionKey(userId), newOwnerVersion(), { ex: ttlSeconds });
}

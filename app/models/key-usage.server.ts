import type { Redis } from "@upstash/redis";
import type { Db } from "~/utils/db.server";
import { keyUsageKey, periodEnd, periodOf, periodStart } from "~/utils/period";
import { listApiKeys } from "./api-keys.server";

/**
 * A customer's calls this month per API key. The live counts are the quota script's `keyusage:{userId}:{YYYY-MM}`
 * hash (one field per key, counted in the same run as the quota); the sync copies them into KeyUsageSnapshot.
 * Reads count nothing and go beside the hot path (dashboard, /keys, `GET /api/v1/usage`), never on it.
 */

export interface KeyUsage {
  id: string;
  name: string;
  prefix: string;
  revokedAt: Date | null;
  used: number;
}

export interface KeyUsageReport {
  period: string;
  keys: KeyUsage[];
  /** "live" when Redis answered; "snapshot" when it did not and the counts are the last sync's. */
  source: "live" | "snapshot";
}

/** The month's live per-key counts from Redis (a missing hash reads as no calls). Throws when Redis fails. */
export async function liveKeyCounts(redis: Redis, userId: string, period: string): Promise<Map<string, number>> {
  const hash = await redis.hgetall<Record<string, unknown>>(keyUsageKey(userId, period));
  const counts = new Map<string, number>();
  for (const [keyId, value] of Object.entries(hash ?? {})) {
    const used = Number(value);
    if (Number.isSafeInteger(used) && used > 0) counts.set(keyId, used);
  }
  return counts;
}

/** Each key's highest synced count in the month, through the (keyId, hour) primary key. */
export async function syncedKeyCounts(db: Db, keyIds: string[], period: string): Promise<Map<string, number>> {
  if (keyIds.length === 0) return new Map();
  const rows = await db.keyUsageSnapshot.groupBy({
    by: ["keyId"],
    where: { keyId: { in: keyIds }, hour: { gte: periodStart(period), lt: periodEnd(period) } },
    _max: { used: true },
  });
  return new Map(rows.map((row) => [row.keyId, row._max.used ?? 0]));
}

/**
 * Each key's calls this month: the greater of its live count and its last synced one. They only grow within a month,
 * so when Redis lost the hash (a flush, a failover) the synced count is still a floor, and when Redis does not
 * answer at all the synced counts alone are given (`source: "snapshot"`).
 */
export async function keyCallsThisMonth(
  deps: { redis: Redis; db: Db },
  userId: string,
  keyIds: string[],
  now: Date = new Date(),
): Promise<{ counts: Map<string, number>; source: "live" | "snapshot" }> {
  const period = periodOf(now);
  const [live, synced] = await Promise.all([
    liveKeyCounts(deps.redis, userId, period).catch((error: unknown) => {
      console.warn(`key usage: Redis did not answer, showing synced counts: ${(error as Error).message}`);
      return null;
    }),
    syncedKeyCounts(deps.db, keyIds, period),
  ]);
  const counts = new Map(keyIds.map((id) => [id, Math.max(live?.get(id) ?? 0, synced.get(id) ?? 0)]));
  return { counts, source: live ? "live" : "snapshot" };
}

/** Every key of the user with its calls this month: active keys first, then revoked ones that made calls this month. */
export async function listKeyUsage(
  deps: { redis: Redis; db: Db },
  userId: string,
  now: Date = new Date(),
): Promise<KeyUsageReport> {
  const keys = await listApiKeys(deps.db, userId);
  const { counts, source } = await keyCallsThisMonth(
    deps,
    userId,
    keys.map((key) => key.id),
    now,
  );
  const withUsage = keys.map((key) => ({
    id: key.id,
    name: key.name,
    prefix: key.prefix,
    revokedAt: key.revokedAt,
    used: counts.get(key.id) ?? 0,
  }));
  return {
    period: periodOf(now),
    keys: withUsage.filter((key) => key.revokedAt === null || key.used > 0),
    source,
  };
}

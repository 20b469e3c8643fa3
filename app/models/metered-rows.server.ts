import type { Redis } from "@upstash/redis";
import type { Db } from "~/utils/db.server";
import { getEnv } from "~/utils/env.server";
import { periodOf } from "~/utils/period";
import { redisTimeoutMs } from "~/utils/redis.server";
import { type ApiKeyOwner, noteApiKeyUsed } from "./api-keys.server";
import { ownerVersionKey } from "./owner-version.server";
import { consumeQuotaIfCurrent, newConsumption, type QuotaState, refundQuota } from "./quota.server";
import { viaQuotaStore } from "./quota-store.server";
import { notifyThresholdsCrossed } from "./usage-thresholds.server";

/**
 * One metered call of the key owner's quota around a piece of work (reading a page). A call consumes one unit only
 * when its work succeeds: over the limit it is refused uncounted, and if the work fails after the unit was counted,
 * the unit is given back. The quota script also checks the owner's cache version, so a call made on cached data
 * that has since changed (a revoked key, a new limit, a deleted sheet) is not counted but answered "stale", and the
 * caller reloads and calls again. Redis failures surface as QuotaStoreUnavailableError, so the caller can fail
 * closed.
 */

export type MeteredOutcome<T> =
  | { outcome: "served"; value: T; quota?: QuotaState }
  | { outcome: "refused"; quota: QuotaState }
  | { outcome: "stale"; version: string };

/**
 * The owner as the caller cached it, with the cache version its data was read under, and the status the call will be
 * answered with if counted (the quota script tallies it; see QuotaOwner).
 */
export type VersionedOwner = ApiKeyOwner & { version: string; servedStatus?: 200 | 304 };

/**
 * Bench-only switch: skips the quota check so `bench/api.ts` can measure what it costs. It needs NODE_ENV other
 * than "production" (read at run time; the build inlines `process.env.NODE_ENV` itself as "production") AND an
 * explicit flag, so a production deployment cannot turn it on by setting one variable.
 */
export function isQuotaBypassed(): boolean {
  return getEnv().NODE_ENV !== "production" && process.env.SHEETMETER_BENCH_UNMETERED === "1";
}

const REFUSED_MEMORY_MS = 1_000;
const refusedUntil = new Map<string, number>();

function noteRefused(userId: string) {
  if (refusedUntil.size >= 10_000) refusedUntil.clear();
  refusedUntil.set(userId, Date.now() + REFUSED_MEMORY_MS);
}

function recentlyRefused(userId: string): boolean {
  const until = refusedUntil.get(userId);
  if (until === undefined) return false;
  if (until > Date.now()) return true;
  refusedUntil.delete(userId);
  return false;
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

function settle<T>(work: Promise<T>): Promise<Settled<T>> {
  return work.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

export async function meterCall<T>(
  deps: { redis: Redis; db: Db },
  owner: VersionedOwner,
  work: () => Promise<T>,
): Promise<MeteredOutcome<T>> {
  if (isQuotaBypassed()) {
    const value = await work();
    noteApiKeyUsed(deps.db, owner.keyId);
    return { outcome: "served", value };
  }

  // The quota check (Redis) and the work (Postgres, unless the page is cached) run side by side, so a call waits
  // for the slower of the two instead of their sum. Work done for a call that turns out to be over quota or stale
  // is thrown away; once an owner has been refused, their next calls for a second check first, so a client that
  // keeps calling past its quota does not keep Postgres busy.
  // Settled at once so a failure is never an unhandled rejection while the quota answer is awaited.
  const early = recentlyRefused(owner.userId) ? undefined : settle(work());
  const now = new Date();
  const consumption = newConsumption(redisTimeoutMs(deps.redis));
  const versioned = { key: ownerVersionKey(owner.userId), version: owner.version };
  const quota = await viaQuotaStore(() =>
    consumeQuotaIfCurrent(deps.redis, deps.db, owner, versioned, now, consumption),
  ).catch((error: unknown) => {
    // The call is refused, but its consumption may have counted in Redis with the answer lost on the way back
    // (and the resend lost too). Withdrawing it settles that either way once Redis answers again; the refusal
    // does not wait for it.
    void refundQuota(deps.redis, owner.userId, periodOf(now), consumption.id).catch(() => undefined);
    throw error;
  });
  if ("stale" in quota) return { outcome: "stale", version: quota.version };
  if (quota.crossed.length > 0) {
    // Fire and forget: the caller's answer does not wait for the event, and a failure to deliver is only logged.
    notifyThresholdsCrossed(
      { userId: owner.userId, used: quota.used, limit: quota.limit, period: quota.period, at: now },
      quota.crossed,
    );
  }
  if (!quota.allowed) {
    noteRefused(owner.userId);
    return { outcome: "refused", quota };
  }

  const done = await (early ?? settle(work()));
  if (!done.ok) {
    // Only successful calls count: give the unit back. If Redis fails too, the error that matters is the first.
    await refundQuota(deps.redis, owner.userId, quota.period, consumption.id).catch(() => undefined);
    throw done.error;
  }
  noteApiKeyUsed(deps.db, owner.keyId);
  return { outcome: "served", value: done.value, quota };
}

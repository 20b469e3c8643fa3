import type { Redis } from "@upstash/redis";
import type { Db } from "~/utils/db.server";
import { getEnv } from "~/utils/env.server";
import { periodOf } from "~/utils/period";
import { redisTimeoutMs } from "~/utils/redis.server";
import { type ApiKeyOwner, noteApiKeyUsed } from "./api-keys.server";
import { consumeQuota, newConsumption, type QuotaState, refundQuota } from "./quota.server";
import { viaQuotaStore } from "./quota-store.server";
import { querySheetRows, type SheetForQuery, type SheetQuery } from "./sheets.server";

/**
 * A sheet's rows as one metered call of the key owner's quota. A call consumes one unit only when it returns rows:
 * over the limit it is refused uncounted, and if reading the rows fails after the unit was counted, the unit is
 * given back. Redis failures surface as QuotaStoreUnavailableError, so the caller can fail closed.
 */

export type MeteredRows =
  | { allowed: true; rows: { rows: unknown[]; total: number }; quota?: QuotaState }
  | { allowed: false; quota: QuotaState };

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

export async function queryRowsMetered(
  deps: { redis: Redis; db: Db },
  owner: ApiKeyOwner,
  sheet: SheetForQuery,
  query: SheetQuery,
): Promise<MeteredRows> {
  if (isQuotaBypassed()) {
    const rows = await querySheetRows(deps.db, sheet, query);
    noteApiKeyUsed(deps.db, owner.keyId);
    return { allowed: true, rows };
  }

  // The quota check (Redis) and the rows query (Postgres) run side by side, so a call waits for the slower of
  // the two instead of their sum. Rows read for a call that turns out to be over quota are thrown away; once an
  // owner has been refused, their next calls for a second check first, so a client that keeps calling past its
  // quota does not keep Postgres busy.
  // Settled at once so a rows failure is never an unhandled rejection while the quota answer is awaited.
  const early = recentlyRefused(owner.userId) ? undefined : settle(querySheetRows(deps.db, sheet, query));
  const now = new Date();
  const consumption = newConsumption(redisTimeoutMs(deps.redis));
  const quota = await viaQuotaStore(() => consumeQuota(deps.redis, deps.db, owner, now, consumption)).catch(
    (error: unknown) => {
      // The call is refused, but its consumption may have counted in Redis with the answer lost on the way back
      // (and the resend lost too). Withdrawing it settles that either way once Redis answers again; the refusal
      // does not wait for it.
      void refundQuota(deps.redis, owner.userId, periodOf(now), consumption.id).catch(() => undefined);
      throw error;
    },
  );
  if (!quota.allowed) {
    noteRefused(owner.userId);
    return { allowed: false, quota };
  }

  const rows = await (early ?? settle(querySheetRows(deps.db, sheet, query)));
  if (!rows.ok) {
    // Only successful calls count: give the unit back. If Redis fails too, the error that matters is the first.
    await refundQuota(deps.redis, owner.userId, quota.period, consumption.id).catch(() => undefined);
    throw rows.error;
  }
  noteApiKeyUsed(deps.db, owner.keyId);
  return { allowed: true, rows: rows.value, quota };
}

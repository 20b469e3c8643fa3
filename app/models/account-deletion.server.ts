import type { Client } from "@upstash/qstash";
import type { Redis } from "@upstash/redis";
import { forgetAccount, VERIFIED_TTL_MS } from "~/api/hot-cache.server";
import type { Db } from "~/utils/db.server";
import { keyUsageKey, nextPeriod, periodOf, previousPeriod, quotaKey, thresholdMarkKey } from "~/utils/period";
import { historyExportLimitKey, sheetFetchLimitKey, testEventLimitKey } from "./action-limits.server";
import { queueDeletedKeyEntries } from "./api-keys.server";
import { queueOwnerVersionBump } from "./owner-version.server";
import { deleteOutcomeData, forgetAccountPrefixes, outcomeRedisKeys } from "./request-outcomes.server";
import { passwordReentryKey } from "./password-reentry.server";
import { removeSheetSchedules } from "./sheet-sources.server";
import { deleteSheet } from "./sheets.server";
import { cancelQueuedDeliveries } from "./webhook-publish.server";

/**
 * "Delete my account": everything the account owns, in Postgres, in Redis and in this process's memory, so that
 * nothing of it remains (docs/security.md lists what goes). No HTTP here: /settings, the admin CLI (`user:delete`)
 * and the tests call the same function.
 *
 * Order matters, because API processes keep keys and sheets in memory and other requests keep arriving:
 * 1. the keys' Redis entries become "unknown" and the owner's cache version is bumped, in one pipeline — from then
 *    on every API process refuses the keys on its next call (the quota script checks the version), and if Redis is
 *    unreachable the deletion stops here, before anything is lost, rather than leave keys working from caches;
 * 2. each feature's own cleanup runs (sheets one by one, through the function /sheets uses);
 * 3. Postgres: the keys (returned, in case one was created meanwhile), then the user, whose deletion cascades to
 *    sessions, webhook endpoint and deliveries, and (by trigger, decision 0008) to usage and key-usage snapshots;
 * 4. the account's Redis keys, by name: counters, per-key counts and threshold marks of the months that can still
 *    have them, and the throttles and limits keyed by the account; the cache version is left to expire a minute
 *    later (DELETED_ACCOUNT_VERSION_TTL_SECONDS), when no process can hold anything of the account any more.
 * Running it again after a failure finishes the job: an account already gone in Postgres still gets step 4.
 */
export interface AccountDeletionDeps {
  db: Db;
  redis: Redis;
  /**
   * Cancels the account's messages still waiting in QStash and deletes its sheets' refresh schedules; without it
   * (tests of the stores alone) messages run out and a schedule deletes itself the next time it fires.
   */
  qstash?: Pick<Client, "messages" | "schedules">;
}

export interface AccountDeletion {
  userId: string;
  /** False when no such user was in Postgres (already deleted): only Redis was cleaned. */
  found: boolean;
  deleted: {
    apiKeys: number;
    sheets: number;
    rows: number;
    sessions: number;
    usageSnapshots: number;
    keyUsageSnapshots: number;
    webhookEndpoints: number;
    webhookDeliveries: number;
    redisKeys: number;
  };
}

/** How long a deleted account's cache version outlives it: the API's in-memory entries last at most a minute. */
export const DELETED_ACCOUNT_VERSION_TTL_SECONDS = VERIFIED_TTL_MS / 1000 + 5;

interface AccountInventory {
  userId: string;
  keys: { id: string; hash: string }[];
  sheets: { id: string; rowCount: number }[];
  sessionIds: string[];
}

// ─────────────────────────────────────────────────────────────────────────────────────────────────────────────────
// Per-feature cleanups: THE single place where account deletion reaches into features that keep account data
// anywhere the User row's cascades and triggers do not reach (QStash, Redis, other services). A feature that adds
// such data adds its cleanup here, and its Redis key names to `accountRedisKeys` below.
// ─────────────────────────────────────────────────────────────────────────────────────────────────────────────────
async function runFeatureCleanups(deps: AccountDeletionDeps, account: AccountInventory): Promise<void> {
  // Sheets go one at a time through deleteSheet(), which drops their rows and the API's cached pages in every
  // process; what a sheet owns outside Postgres and Redis (a URL source's schedule) is removed just before.
  // URL sheets' QStash refresh schedules go first, while Postgres still says which they are; one QStash cannot
  // remove stops the deletion here (ScheduleUnavailableError), and running it again finishes.
  if (deps.qstash) await removeSheetSchedules({ db: deps.db, qstash: deps.qstash }, account.userId);
  for (const sheet of account.sheets) await deleteSheet(deps.redis, deps.db, account.userId, sheet.id);
  // Usage alerts QStash still holds (queued, or between retries) are cancelled, so the receiver hears no more.
  if (deps.qstash) await cancelQueuedDeliveries({ db: deps.db, qstash: deps.qstash }, account.userId);
  // Outcome tallies and the request log (Redis), and the OutcomeSnapshot rows (the User row's trigger would take
  // those too; deleting them here keeps the feature's data in one cleanup).
  await deleteOutcomeData(deps, account.userId);
}

/** Every Redis key the account can have, by name; the sync's and the API's keys are named after the user id. */
function accountRedisKeys(account: AccountInventory, now: Date): string[] {
  const current = periodOf(now);
  // Counters, per-key counts and marks expire a week after their month (quota.server.ts), so only last month's and
  // this month's can exist; next month's is included for a clock a little ahead of ours at the turn of a month.
  const periods = [previousPeriod(current), current, nextPeriod(current)];
  return [
    ...periods.flatMap((period) => [
      quotaKey(account.userId, period),
      keyUsageKey(account.userId, period),
      thresholdMarkKey(account.userId, period, 80),
      thresholdMarkKey(account.userId, period, 100),
    ]),
    testEventLimitKey(account.userId),
    sheetFetchLimitKey(account.userId),
    ...account.keys.map((key) => historyExportLimitKey(account.userId, key.id)),
    ...account.sessionIds.map((sessionId) => passwordReentryKey(account.userId, sessionId)),
    // Again after step 3: a refused call credited by its key's prefix may have logged since step 2.
    ...outcomeRedisKeys(account.userId, now),
  ];
}

async function inventory(db: Db, userId: string): Promise<(AccountInventory & { counts: Counts }) | null> {
  const [user, usageSnapshots, keyUsageSnapshots] = await Promise.all([
    db.user.findUnique({
      where: { id: userId },
      select: {
        apiKeys: { select: { id: true, hash: true } },
        sheets: { select: { id: true, rowCount: true } },
        sessions: { select: { id: true } },
        _count: { select: { webhookDeliveries: true } },
        webhookEndpoint: { select: { userId: true } },
      },
    }),
    db.usageSnapshot.count({ where: { userId } }),
    db.keyUsageSnapshot.count({ where: { userId } }),
  ]);
  if (!user) return null;
  return {
    userId,
    keys: user.apiKeys,
    sheets: user.sheets,
    sessionIds: user.sessions.map((session) => session.id),
    counts: {
      usageSnapshots,
      keyUsageSnapshots,
      webhookDeliveries: user._count.webhookDeliveries,
      webhookEndpoints: user.webhookEndpoint ? 1 : 0,
    },
  };
}

type Counts = Pick<
  AccountDeletion["deleted"],
  "usageSnapshots" | "keyUsageSnapshots" | "webhookDeliveries" | "webhookEndpoints"
>;

export async function deleteAccount(
  deps: AccountDeletionDeps,
  userId: string,
  now: Date = new Date(),
): Promise<AccountDeletion> {
  const { db, redis } = deps;
  const found = await inventory(db, userId);
  const account: AccountInventory = found ?? { userId, keys: [], sheets: [], sessionIds: [] };

  if (found) {
    // Step 1: refuse the keys everywhere before anything is deleted (see the module comment).
    const refuse = redis.pipeline();
    queueDeletedKeyEntries(refuse, account.keys);
    queueOwnerVersionBump(refuse, userId);
    await refuse.exec();
    forgetAccount({
      userId,
      keyHashes: account.keys.map((key) => key.hash),
      sheetIds: account.sheets.map((s) => s.id),
    });

    // Step 2.
    await runFeatureCleanups(deps, account);

    // Step 3. A key created in another tab since the inventory is deleted here too, and refused like the others.
    const removedKeys = await db.$queryRaw<{ id: string; hash: string }[]>`
      DELETE FROM "ApiKey" WHERE "userId" = ${userId} RETURNING id, hash`;
    await db.user.deleteMany({ where: { id: userId } });
    const latecomers = removedKeys.filter((key) => !account.keys.some((known) => known.id === key.id));
    if (latecomers.length > 0) {
      const refuse = redis.pipeline();
      queueDeletedKeyEntries(refuse, latecomers);
      await refuse.exec();
      account.keys.push(...latecomers);
    }
  }

  forgetAccountPrefixes(userId);

  // Step 4. DEL of a missing key is harmless, so naming keys that never existed costs nothing but bytes.
  // The cache version is not deleted but replaced once more, to expire just after the last entry any process may
  // hold in memory: a missing version reads as "", and an account that never had one was cached under "" — so
  // deleting it would make those entries current again, and another process would serve the deleted keys.
  const cleanup = redis.pipeline();
  cleanup.del(...accountRedisKeys(account, now));
  queueOwnerVersionBump(cleanup, userId, DELETED_ACCOUNT_VERSION_TTL_SECONDS);
  const [redisKeys] = await cleanup.exec<[number, unknown]>();

  return {
    userId,
    found: found !== null,
    deleted: {
      apiKeys: account.keys.length,
      sheets: account.sheets.length,
      rows: account.sheets.reduce((sum, sheet) => sum + sheet.rowCount, 0),
      sessions: account.sessionIds.length,
      usageSnapshots: found?.counts.usageSnapshots ?? 0,
      keyUsageSnapshots: found?.counts.keyUsageSnapshots ?? 0,
      webhookEndpoints: found?.counts.webhookEndpoints ?? 0,
      webhookDeliveries: found?.counts.webhookDeliveries ?? 0,
      redisKeys,
    },
  };
}

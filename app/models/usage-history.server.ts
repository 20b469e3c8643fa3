import type { Db } from "~/utils/db.server";
import { HOUR_MS, hourBucket } from "~/utils/period";
import {
  bucketStart,
  DAY_MS,
  getUsageBuckets,
  type Granularity,
  type HistoryRange,
  type UsageBucket,
} from "./usage-buckets.server";
import { USAGE_RANGES, USAGE_VIEWS, type UsageRange, type UsageView } from "~/utils/usage-ranges";

/**
 * The persisted side of the dashboard: a customer's hourly usage snapshots over a chosen range, and their sheets.
 * Live counts come from Redis through the quota module; this module only reads Postgres.
 */

/** Chart points sent to the browser at most: enough for a smooth line on a wide screen, small enough to stay light. */
export const MAX_CHART_POINTS = 200;

/** The first hour bucket the range covers, so "24 h" means the current hour and the 23 before it. */
export function rangeStart(range: UsageRange, now: Date): Date {
  return new Date(hourBucket(now).getTime() - (USAGE_RANGES[range].hours - 1) * HOUR_MS);
}

/**
 * The chart's range in whole buckets, for its bar views and its CSV download: the days a "7 d" range touches, or
 * its hours, up to the end of the current one.
 */
export function dashboardHistoryRange(range: UsageRange, granularity: Granularity, now: Date): HistoryRange {
  const size = granularity === "day" ? DAY_MS : HOUR_MS;
  return {
    from: bucketStart(rangeStart(range, now), granularity),
    to: new Date(bucketStart(now, granularity).getTime() + size),
    granularity,
  };
}

export interface UsagePoint {
  hour: Date;
  /** Calls used in `period` up to the end of `hour` (a running total that restarts each month). */
  used: number;
  period: string;
  /** The monthly limit in force when the sync wrote the hour; null when not recorded (older rows, or a key's line). */
  limit?: number | null;
}

/**
 * Thins an hour-ordered series to at most `maxPoints` by keeping, in each run of consecutive snapshots, the one with
 * the greatest count. Counts are cumulative within a month, so the greatest is the latest: the line never hides a
 * peak (the moment a customer neared the limit) and each kept point sits at its real hour. A bucket never spans two
 * months, or the drop back to zero at a month's start would be swallowed by the previous month's total.
 */
export function downsampleCumulative<T extends UsagePoint>(points: readonly T[], maxPoints: number): T[] {
  if (!Number.isInteger(maxPoints) || maxPoints < 1) throw new RangeError("maxPoints must be a positive integer");
  if (points.length <= maxPoints) return [...points];

  let monthChanges = 0;
  for (let i = 1; i < points.length; i++) if (points[i].period !== points[i - 1].period) monthChanges++;
  // Every bucket but the full ones is either cut short by a month change or the last one; reserving room for those
  // keeps the count within maxPoints.
  const bucketBudget = Math.max(1, maxPoints - monthChanges - 1);
  const bucketSize = Math.ceil(points.length / bucketBudget);

  const kept: T[] = [];
  let best: T | undefined;
  let size = 0;
  for (const point of points) {
    if (best && (size === bucketSize || point.period !== best.period)) {
      kept.push(best);
      best = undefined;
      size = 0;
    }
    if (!best || point.used >= best.used) best = point;
    size++;
  }
  if (best) kept.push(best);
  // Only when there are more month changes than points allowed (a tiny maxPoints): the recent end matters most.
  return kept.length <= maxPoints ? kept : kept.slice(kept.length - maxPoints);
}

export interface UsageHistory {
  range: UsageRange;
  from: Date;
  points: UsagePoint[];
  /** Snapshots in the range before downsampling. */
  snapshots: number;
  /** Whether the customer has any snapshot at all, so an empty range can be told apart from a new account. */
  hasAnyHistory: boolean;
}

/**
 * The customer's cumulative usage over `range`: the account's (with the limit in force at each hour), or, given
 * `keyId`, one of their keys' (never another customer's: the key's snapshots are read by key and user together).
 */
export async function getUsageHistory(
  db: Db,
  userId: string,
  range: UsageRange,
  now: Date = new Date(),
  keyId: string | null = null,
): Promise<UsageHistory> {
  const from = rangeStart(range, now);
  // Served by the (userId, hour) or (keyId, hour) primary key: 720 rows at most for 30 days, in one index range scan.
  const rows: UsagePoint[] = keyId
    ? (
        await db.keyUsageSnapshot.findMany({
          where: { keyId, userId, hour: { gte: from, lte: now } },
          select: { hour: true, used: true, period: true },
          orderBy: { hour: "asc" },
        })
      ).map((row) => ({ ...row, limit: null }))
    : await db.usageSnapshot.findMany({
        where: { userId, hour: { gte: from, lte: now } },
        select: { hour: true, used: true, period: true, limit: true },
        orderBy: { hour: "asc" },
      });
  const hasAnyHistory =
    rows.length > 0 || (await db.usageSnapshot.findFirst({ where: { userId }, select: { hour: true } })) !== null;
  return { range, from, points: downsampleCumulative(rows, MAX_CHART_POINTS), snapshots: rows.length, hasAnyHistory };
}

export interface ChartHistory extends UsageHistory {
  /** The bar views' calls per hour or day; null for the cumulative view. */
  bars: { range: HistoryRange; buckets: UsageBucket[] } | null;
}

/**
 * What the chart needs for a view: the cumulative points always (they also say whether the customer has any
 * history), and the calls per bucket for a bar view. The two reads run side by side. With `keyId`, both are that
 * key's calls.
 */
export async function getChartHistory(
  db: Db,
  userId: string,
  range: UsageRange,
  view: UsageView,
  now: Date = new Date(),
  keyId: string | null = null,
): Promise<ChartHistory> {
  const barsRange = view === "cumulative" ? null : dashboardHistoryRange(range, USAGE_VIEWS[view].granularity, now);
  const [history, buckets] = await Promise.all([
    getUsageHistory(db, userId, range, now, keyId),
    barsRange ? getUsageBuckets(db, userId, barsRange, keyId) : null,
  ]);
  return { ...history, bars: barsRange && buckets ? { range: barsRange, buckets } : null };
}

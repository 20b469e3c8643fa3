import { stringify } from "csv-stringify/sync";
import { z } from "zod";
import type { Db } from "~/utils/db.server";
import { HOUR_MS, periodEnd, periodOf, periodStart } from "~/utils/period";

/**
 * Usage per hour or per day, derived from the cumulative hourly snapshots: what the API's history export, the
 * dashboard's CSV download and its bar views all show, so the three can never disagree. Plain values in and out;
 * the HTTP edges parse requests into a `HistoryRange` and shape the answer.
 */

export const GRANULARITIES = ["hour", "day"] as const;
export type Granularity = (typeof GRANULARITIES)[number];

export const DAY_MS = 24 * HOUR_MS;

/** Rows one request may ask for stay bounded: 92 days of hours (2,208 rows), or 400 days (a year and a bit). */
export const MAX_RANGE_DAYS: Record<Granularity, number> = { hour: 92, day: 400 };

const BUCKET_MS: Record<Granularity, number> = { hour: HOUR_MS, day: DAY_MS };

/** A half-open range [from, to) of whole buckets. */
export interface HistoryRange {
  from: Date;
  to: Date;
  granularity: Granularity;
}

export interface UsageBucket {
  /** The UTC month the bucket's calls count against, "YYYY-MM". A day never spans two: months start at midnight. */
  period: string;
  /** The first instant of the hour or day. */
  start: Date;
  /** Calls used in `period` by the end of the bucket: the month's running total. */
  used: number;
  /** Calls made in the bucket. */
  calls: number;
}

export interface UsageSnapshotValue {
  hour: Date;
  period: string;
  used: number;
}

/** The start of the UTC hour or day `date` falls in. UTC days divide evenly into epoch milliseconds. */
export function bucketStart(date: Date, granularity: Granularity): Date {
  const size = BUCKET_MS[granularity];
  return new Date(Math.floor(date.getTime() / size) * size);
}

function bucketCeil(date: Date, granularity: Granularity): Date {
  const size = BUCKET_MS[granularity];
  return new Date(Math.ceil(date.getTime() / size) * size);
}

/**
 * Groups hour-ordered snapshots into buckets. A bucket's calls are what the month's count grew by since the highest
 * count before it, never negative: counts only grow within a month, so a lower snapshot (a counter restored after a
 * loss) adds nothing, and the calls of a month always add up to its highest count. A new month starts from zero.
 *
 * `before` is the highest count of the first snapshot's month before it (0 if none), so a range that starts
 * mid-month does not credit its first bucket with everything since the 1st. A gap in the snapshots (a sync that
 * did not run) puts the gap's calls in the bucket of the next snapshot.
 */
export function bucketSnapshots(
  snapshots: readonly UsageSnapshotValue[],
  granularity: Granularity,
  before: { period: string; used: number } | null = null,
): UsageBucket[] {
  const buckets: UsageBucket[] = [];
  let period = before?.period;
  let highest = before?.used ?? 0;
  for (const snapshot of snapshots) {
    if (snapshot.period !== period) {
      period = snapshot.period;
      highest = 0;
    }
    const calls = Math.max(0, snapshot.used - highest);
    highest = Math.max(highest, snapshot.used);
    const start = bucketStart(snapshot.hour, granularity);
    const last = buckets.at(-1);
    if (last && last.start.getTime() === start.getTime() && last.period === snapshot.period) {
      last.calls += calls;
      last.used = highest;
    } else {
      buckets.push({ period: snapshot.period, start, used: highest, calls });
    }
  }
  return buckets;
}

/**
 * The customer's usage per bucket over `range` (or, given `keyId`, that key's); a bucket appears when a snapshot was
 * written in it.
 */
export async function getUsageBuckets(
  db: Db,
  userId: string,
  range: HistoryRange,
  keyId: string | null = null,
): Promise<UsageBucket[]> {
  const firstPeriod = periodOf(range.from);
  const select = { hour: true, used: true, period: true } as const;
  // Both served by the (userId, hour) or (keyId, hour) primary key: the range, and the month before it.
  const [rows, before] = keyId
    ? await Promise.all([
        db.keyUsageSnapshot.findMany({
          where: { keyId, userId, hour: { gte: range.from, lt: range.to } },
          select,
          orderBy: { hour: "asc" },
        }),
        db.keyUsageSnapshot.aggregate({
          where: { keyId, userId, period: firstPeriod, hour: { lt: range.from, gte: periodStart(firstPeriod) } },
          _max: { used: true },
        }),
      ])
    : await Promise.all([
        db.usageSnapshot.findMany({
          where: { userId, hour: { gte: range.from, lt: range.to } },
          select,
          orderBy: { hour: "asc" },
        }),
        db.usageSnapshot.aggregate({
          where: { userId, period: firstPeriod, hour: { lt: range.from, gte: periodStart(firstPeriod) } },
          _max: { used: true },
        }),
      ]);
  const highestBefore = before._max.used;
  return bucketSnapshots(
    rows,
    range.granularity,
    highestBefore === null ? null : { period: firstPeriod, used: highestBefore },
  );
}

// ——— Ranges asked for by people ———

const isoDate = z.iso.date();
const isoDateTime = z.iso.datetime({ offset: true, local: true });

export type HistoryRangeInput = {
  from?: string | null;
  to?: string | null;
  granularity?: string | null;
};

export type ParsedHistoryRange =
  { ok: true; range: HistoryRange } | { ok: false; parameter: "from" | "to" | "granularity"; detail: string };

/** "2026-11-01" (midnight UTC) or an ISO datetime; one without an offset is read as UTC, like everything here. */
function parseInstant(value: string): Date | null {
  if (isoDate.safeParse(value).success) return new Date(`${value}T00:00:00Z`);
  if (!isoDateTime.safeParse(value).success) return null;
  const hasOffset = /(Z|[+-]\d{2}:?\d{2})$/i.test(value);
  const date = new Date(hasOffset ? value : `${value}Z`);
  return Number.isNaN(date.getTime()) ? null : date;
}

/**
 * Turns `from`, `to` and `granularity` as a person gives them into a bounded range of whole buckets, or names the
 * parameter to fix. `from` is inclusive and `to` exclusive; both are widened to whole buckets (a day range that
 * starts at 10:00 starts at midnight). Defaults: granularity `hour`, and the current UTC month; given only `to`,
 * the month that ends there; given only `from`, up to the end of the current month.
 */
export function parseHistoryRange(input: HistoryRangeInput, now: Date): ParsedHistoryRange {
  const fail = (parameter: "from" | "to" | "granularity", detail: string): ParsedHistoryRange => ({
    ok: false,
    parameter,
    detail,
  });
  const granularity = input.granularity ?? "hour";
  if (!(GRANULARITIES as readonly string[]).includes(granularity)) {
    return fail("granularity", `“granularity” must be “hour” or “day”, got “${granularity.slice(0, 40)}”.`);
  }
  const g = granularity as Granularity;

  const instant = (name: "from" | "to", raw: string | null | undefined): Date | null | ParsedHistoryRange => {
    if (raw === null || raw === undefined) return null;
    const date = parseInstant(raw);
    if (!date) {
      return fail(
        name,
        `“${name}” must be an ISO date (2026-11-01) or date and time (2026-11-01T08:00:00Z), in UTC unless it has an offset; got “${raw.slice(0, 60)}”.`,
      );
    }
    return date;
  };
  const fromGiven = instant("from", input.from);
  if (fromGiven && !(fromGiven instanceof Date)) return fromGiven;
  const toGiven = instant("to", input.to);
  if (toGiven && !(toGiven instanceof Date)) return toGiven;

  const to = bucketCeil(toGiven ?? periodEnd(periodOf(now)), g);
  const from = bucketStart(fromGiven ?? periodStart(periodOf(new Date(to.getTime() - 1))), g);
  if (to.getTime() <= from.getTime()) {
    return fail(
      toGiven ? "to" : "from",
      `“to” (${to.toISOString()}) must be after “from” (${from.toISOString()}); “to” is exclusive.`,
    );
  }
  const days = (to.getTime() - from.getTime()) / DAY_MS;
  if (days > MAX_RANGE_DAYS[g]) {
    const hint = g === "hour" ? ", or ask for granularity=day" : "";
    return fail(
      toGiven ? "to" : "from",
      `The range from ${from.toISOString()} to ${to.toISOString()} spans ${Math.ceil(days)} days; with granularity=${g} it may span at most ${MAX_RANGE_DAYS[g]}. Ask for a shorter range${hint}.`,
    );
  }
  return { ok: true, range: { from, to, granularity: g } };
}

// ——— Shapes for export ———

/** An hour as an ISO datetime, a day as an ISO date: what a spreadsheet or a script reads back without guessing. */
export function bucketLabel(start: Date, granularity: Granularity): string {
  const iso = start.toISOString();
  return granularity === "day" ? iso.slice(0, 10) : iso;
}

export type UsageExportRow = { period: string; used: number; calls: number } & ({ hour: string } | { day: string });

export function usageExportRows(buckets: readonly UsageBucket[], granularity: Granularity): UsageExportRow[] {
  return buckets.map((bucket) => ({
    period: bucket.period,
    [granularity]: bucketLabel(bucket.start, granularity),
    used: bucket.used,
    calls: bucket.calls,
  })) as UsageExportRow[];
}

/** RFC 4180: a header row, CRLF line ends, fields quoted when they need it. */
export function usageExportCsv(buckets: readonly UsageBucket[], granularity: Granularity): string {
  return stringify(
    buckets.map((bucket) => [bucket.period, bucketLabel(bucket.start, granularity), bucket.used, bucket.calls]),
    { header: true, columns: ["period", granularity, "used", "calls"], record_delimiter: "windows" },
  );
}

/** "sheetmeter-usage-2026-11-01-2026-12-01.csv"; a bound inside a day keeps its hour ("2026-11-05T0800Z"). */
export function usageExportFilename(range: Pick<HistoryRange, "from" | "to">): string {
  const name = (date: Date) => {
    const iso = date.toISOString();
    return date.getTime() % DAY_MS === 0 ? iso.slice(0, 10) : `${iso.slice(0, 13)}${iso.slice(14, 16)}Z`;
  };
  return `sheetmeter-usage-${name(range.from)}-${name(range.to)}.csv`;
}

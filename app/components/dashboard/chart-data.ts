import { HOUR_MS } from "~/utils/period";
import {
  type ChartBucket,
  type ChartGranularity,
  type ChartPoint,
  type LiveUsage,
  type OutcomeHourView,
  REFUSED_STATUS_CODES,
} from "./types";

/**
 * One x position on the chart. `synced` draws the persisted line; `pending` draws the dashed segment from the last
 * synced point to the live value, which is marked `live` (styled as "now — not yet synced").
 */
export interface ChartDatum {
  t: number;
  /** The line view: the monthly limit in force at this point (a step line when it changed within the range). */
  limit?: number;
  synced?: number;
  pending?: number;
  live?: true;
  /** Bars only: the first instant of the hour or day (a bar stands at its bucket's middle). */
  start?: number;
  /** Bars only: calls refused in the bucket (400, 401, 404, 429, 503), stacked on top of the served ones. */
  refused?: number;
  /** Bars only: the refused calls by status, for the tooltip and the table. */
  refusedByStatus?: Record<string, number>;
}

/**
 * The line view's data. Each synced point carries the limit recorded with it (the limit in force when that hour was
 * synced), falling back to `currentLimit` for hours synced before limits were recorded; the live point carries the
 * current limit. Drawn as a step, the limit line shows when a plan changed.
 */
export function buildChartData(
  points: readonly ChartPoint[],
  live: LiveUsage | null,
  currentLimit?: number,
): ChartDatum[] {
  const data: ChartDatum[] = points.map((point) => {
    const limit = point.limit ?? currentLimit;
    return limit === undefined
      ? { t: Date.parse(point.hour), synced: point.used }
      : { t: Date.parse(point.hour), limit, synced: point.used };
  });
  if (!live) return data;
  const liveAt = Date.parse(live.at);
  const last = points.at(-1);
  if (last && Date.parse(last.hour) >= liveAt) return data;
  // Joining across a month change would draw a slope where the counter actually restarted at zero.
  if (last && last.period === live.period) data[data.length - 1].pending = last.used;
  data.push(
    currentLimit === undefined
      ? { t: liveAt, pending: live.used, live: true }
      : { t: liveAt, limit: currentLimit, pending: live.used, live: true },
  );
  return data;
}

/** The highest limit the line view draws, so the scale keeps the whole step line in view. */
export function highestLimit(data: readonly ChartDatum[], currentLimit: number): number {
  return data.reduce((max, d) => Math.max(max, d.limit ?? 0), currentLimit);
}

/** Whether the limit changed within the data: then it is drawn as a step line rather than one straight rule. */
export function limitChanges(data: readonly ChartDatum[]): boolean {
  const limits = new Set(data.map((d) => d.limit).filter((limit) => limit !== undefined));
  return limits.size > 1;
}

const DAY_MS = 24 * HOUR_MS;
const MAX_Y_INTERVALS = 6;

/**
 * Bars of the calls in each hour or day, at the middle of their bucket so ticks on whole hours and midnights fall
 * between them. The live count's calls since the last sync stand on the current bucket as `pending` (stacked on
 * top of its synced calls, or alone when the sync has not reached it yet).
 */
export function buildBarData(
  buckets: readonly ChartBucket[],
  live: LiveUsage | null,
  granularity: ChartGranularity,
): ChartDatum[] {
  const size = granularity === "day" ? DAY_MS : HOUR_MS;
  const data: ChartDatum[] = buckets.map((bucket) => {
    const start = Date.parse(bucket.start);
    return { t: start + size / 2, start, synced: bucket.calls };
  });
  if (!live) return data;
  const last = buckets.at(-1);
  // A new month restarts the count, so the last month's total is no baseline for this one.
  const syncedThisMonth = last && last.period === live.period ? last.used : 0;
  const unsynced = live.used - syncedThisMonth;
  if (unsynced <= 0) return data;
  const start = Math.floor(Date.parse(live.at) / size) * size;
  const current = data.at(-1);
  if (current && current.start === start) {
    current.pending = unsynced;
    current.live = true;
  } else {
    data.push({ t: start + size / 2, start, pending: unsynced, live: true });
  }
  return data;
}

/**
 * Below this share of the limit the usage is fitted instead: on a scale drawn for 1,000 calls, 6 calls are a flat
 * line on the floor. From a quarter up the line already fills a readable part of the height with the limit in view.
 */
export const LIMIT_ON_SCALE_RATIO = 0.25;

export interface YScale {
  ticks: number[];
  /** Whether the limit is within the ticks (drawn as a line), or above them (shown as a marker at the top edge). */
  limitOnScale: boolean;
}

/** The highest value drawn; stacked bars count their synced, pending and refused parts together. */
export function highestValue(data: readonly ChartDatum[], stacked = false): number {
  return data.reduce(
    (max, d) =>
      Math.max(
        max,
        stacked ? (d.synced ?? 0) + (d.pending ?? 0) + (d.refused ?? 0) : Math.max(d.synced ?? 0, d.pending ?? 0),
      ),
    0,
  );
}

/** The refused answers of one hour, by status, and their sum. */
export function refusedOf(counts: Record<string, number>): { total: number; byStatus: Record<string, number> } {
  const byStatus: Record<string, number> = {};
  let total = 0;
  for (const status of REFUSED_STATUS_CODES) {
    const n = counts[status] ?? 0;
    if (n > 0) {
      byStatus[status] = n;
      total += n;
    }
  }
  return { total, byStatus };
}

/** The refused answers of the hours in [from, to), summed, by status. */
export function refusedInRange(
  outcomes: readonly OutcomeHourView[],
  from: number,
  to: number,
): { total: number; byStatus: Record<string, number> } {
  const byStatus: Record<string, number> = {};
  let total = 0;
  for (const hour of outcomes) {
    const t = Date.parse(hour.hour);
    if (t < from || t >= to) continue;
    const refused = refusedOf(hour.counts);
    total += refused.total;
    for (const [status, n] of Object.entries(refused.byStatus)) byStatus[status] = (byStatus[status] ?? 0) + n;
  }
  return { total, byStatus };
}

/** "401 ×3, 404 ×1" */
export function describeRefused(byStatus: Record<string, number>): string {
  return Object.entries(byStatus)
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([status, n]) => `${status} ×${n}`)
    .join(", ");
}

/**
 * Stacks each hour's refused answers on the bars of its bucket (hour or UTC day) within [from, to); a bucket with
 * refused answers only gets a bar of its own. Returns the data in time order.
 */
export function withRefusedBars(
  data: ChartDatum[],
  outcomes: readonly OutcomeHourView[],
  granularity: ChartGranularity,
  from: number,
  to: number,
): ChartDatum[] {
  const size = granularity === "day" ? DAY_MS : HOUR_MS;
  const byStart = new Map(data.map((d) => [d.start ?? d.t - size / 2, d]));
  for (const hour of outcomes) {
    const t = Date.parse(hour.hour);
    if (t < from || t >= to) continue;
    const refused = refusedOf(hour.counts);
    if (refused.total === 0) continue;
    const start = Math.floor(t / size) * size;
    let datum = byStart.get(start);
    if (!datum) {
      datum = { t: start + size / 2, start };
      byStart.set(start, datum);
      data.push(datum);
    }
    datum.refused = (datum.refused ?? 0) + refused.total;
    const byStatus = (datum.refusedByStatus ??= {});
    for (const [status, n] of Object.entries(refused.byStatus)) byStatus[status] = (byStatus[status] ?? 0) + n;
  }
  return data.sort((a, b) => a.t - b.t);
}

/**
 * The y scale: fitted to the usage when it is far below the limit (or there is no limit to show, as for bars of
 * calls per bucket), otherwise, or when the customer asks to see it, reaching a little above the limit.
 */
export function yScale(
  data: readonly ChartDatum[],
  limit: number | null,
  { showLimit = false, stacked = false } = {},
): YScale {
  const highest = highestValue(data, stacked);
  const limitOnScale = limit !== null && limit > 0 && (showLimit || highest >= limit * LIMIT_ON_SCALE_RATIO);
  return { ticks: roundTicks(limitOnScale ? Math.max(limit, highest) : highest), limitOnScale };
}

/**
 * Y ticks from 0 to a round ceiling a little above the limit (or the highest value past it), so the limit's label
 * is never clipped and every tick reads as a round number: 0, 2,000, 4,000 … 12,000.
 */
export function yTicks(data: readonly ChartDatum[], limit: number): number[] {
  return roundTicks(Math.max(limit, highestValue(data)));
}

/** 0 to a round ceiling a little above `top`, in at most six round steps. */
function roundTicks(top: number): number[] {
  const target = Math.max(1, top * 1.08);
  let step = 1;
  for (let magnitude = 1; ; magnitude *= 10) {
    const found = [1, 2, 2.5, 5]
      .map((f) => f * magnitude)
      .find((s) => Number.isInteger(s) && target / s <= MAX_Y_INTERVALS);
    if (found) {
      step = found;
      break;
    }
  }
  const intervals = Math.ceil(target / step);
  return Array.from({ length: intervals + 1 }, (_, i) => i * step);
}

/**
 * X ticks on whole UTC boundaries: every 3 hours over a day, every midnight over a week, every 5th midnight over a
 * month. Recharts' own ticks fall at arbitrary instants and label two ticks with the same day.
 */
export function xTicks(from: number, to: number, hourly: boolean): number[] {
  const span = to - from;
  const step = hourly ? 3 * HOUR_MS : span > 10 * DAY_MS ? 5 * DAY_MS : DAY_MS;
  const ticks: number[] = [];
  for (let t = Math.ceil(from / step) * step; t <= to; t += step) ticks.push(t);
  return ticks;
}

import { HOUR_MS } from "~/utils/period";
import type { ChartPoint, LiveUsage } from "./types";

/**
 * One x position on the chart. `synced` draws the persisted line; `pending` draws the dashed segment from the last
 * synced point to the live value, which is marked `live` (styled as "now — not yet synced").
 */
export interface ChartDatum {
  t: number;
  synced?: number;
  pending?: number;
  live?: true;
}

export function buildChartData(points: readonly ChartPoint[], live: LiveUsage | null): ChartDatum[] {
  const data: ChartDatum[] = points.map((point) => ({ t: Date.parse(point.hour), synced: point.used }));
  if (!live) return data;
  const liveAt = Date.parse(live.at);
  const last = points.at(-1);
  if (last && Date.parse(last.hour) >= liveAt) return data;
  // Joining across a month change would draw a slope where the counter actually restarted at zero.
  if (last && last.period === live.period) data[data.length - 1].pending = last.used;
  data.push({ t: liveAt, pending: live.used, live: true });
  return data;
}

const DAY_MS = 24 * HOUR_MS;
const MAX_Y_INTERVALS = 6;

/**
 * Y ticks from 0 to a round ceiling a little above the limit (or the highest value past it), so the limit's label
 * is never clipped and every tick reads as a round number: 0, 2,000, 4,000 … 12,000.
 */
export function yTicks(data: readonly ChartDatum[], limit: number): number[] {
  const highest = data.reduce((max, d) => Math.max(max, d.synced ?? 0, d.pending ?? 0), 0);
  const target = Math.max(1, Math.max(limit, highest) * 1.08);
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

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

/** Room above the limit line (or the highest value past it) so its label is never clipped. */
export function chartCeiling(data: readonly ChartDatum[], limit: number): number {
  const highest = data.reduce((max, d) => Math.max(max, d.synced ?? 0, d.pending ?? 0), 0);
  return Math.max(1, Math.ceil(Math.max(limit, highest) * 1.1));
}

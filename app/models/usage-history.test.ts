import { describe, expect, it } from "vitest";
import { HOUR_MS, hourBucket, periodOf } from "~/utils/period";
import { DEFAULT_RANGE, parseRange } from "~/utils/usage-ranges";
import { downsampleCumulative, MAX_CHART_POINTS, rangeStart, type UsagePoint } from "./usage-history.server";

/** Hourly cumulative snapshots from `start`, each hour adding `perHour` and restarting at every UTC month. */
function hourlySeries(start: string, hours: number, perHour = 3): UsagePoint[] {
  const points: UsagePoint[] = [];
  let used = 0;
  for (let i = 0; i < hours; i++) {
    const hour = new Date(Date.parse(start) + i * HOUR_MS);
    const period = periodOf(hour);
    if (points.length > 0 && points[points.length - 1].period !== period) used = 0;
    used += perHour;
    points.push({ hour, used, period });
  }
  return points;
}

describe("downsampleCumulative", () => {
  it("returns short series untouched", () => {
    const series = hourlySeries("2026-11-10T00:00:00Z", 168);
    expect(downsampleCumulative(series, MAX_CHART_POINTS)).toEqual(series);
  });

  it("bounds 30 days of hours and keeps the greatest count of each bucket at its own hour", () => {
    const series = hourlySeries("2026-11-01T00:00:00Z", 720);
    const thinned = downsampleCumulative(series, 200);
    expect(thinned.length).toBeLessThanOrEqual(200);
    expect(thinned.length).toBeGreaterThan(150);
    // The last snapshot (the highest count, what the customer most needs to see) always survives.
    expect(thinned.at(-1)).toEqual(series.at(-1));
    for (const point of thinned) expect(point.used).toBe(series.find((p) => p.hour === point.hour)!.used);
    const hours = thinned.map((p) => p.hour.getTime());
    expect(hours).toEqual([...hours].sort((a, b) => a - b));
  });

  it("never hides a peak, even when a later snapshot in the bucket is lower", () => {
    // A counter restored after a Redis loss can read lower for an hour; the spike before it must stay visible.
    const series = hourlySeries("2026-11-01T00:00:00Z", 400, 1);
    series[201] = { ...series[201], used: 9_999 };
    const thinned = downsampleCumulative(series, 50);
    expect(thinned.some((p) => p.used === 9_999)).toBe(true);
  });

  it("does not merge the end of one month with the start of the next", () => {
    const series = hourlySeries("2026-11-20T00:00:00Z", 720);
    const thinned = downsampleCumulative(series, 100);
    expect(thinned.length).toBeLessThanOrEqual(100);
    const lastOfNovember = series.filter((p) => p.period === "2026-11").at(-1)!;
    expect(thinned).toContainEqual(lastOfNovember);
    // December's points all belong to December and start low again.
    const firstOfDecember = thinned.find((p) => p.period === "2026-12")!;
    expect(firstOfDecember.used).toBeLessThan(lastOfNovember.used);
  });

  it("handles the edges: empty input, one point allowed, a bad bound", () => {
    expect(downsampleCumulative([], 10)).toEqual([]);
    const series = hourlySeries("2026-11-01T00:00:00Z", 48);
    expect(downsampleCumulative(series, 1)).toEqual([series.at(-1)]);
    expect(() => downsampleCumulative(series, 0)).toThrow(RangeError);
  });

  it("stays within the bound for every size around it", () => {
    for (const length of [199, 200, 201, 399, 400, 401, 719, 720, 2160]) {
      const series = hourlySeries("2026-10-25T00:00:00Z", length);
      const thinned = downsampleCumulative(series, 200);
      expect(thinned.length, `length ${length}`).toBeLessThanOrEqual(200);
      expect(thinned.at(-1)).toEqual(series.at(-1));
    }
  });
});

describe("ranges", () => {
  it("reads the range from the URL and falls back to the default for anything else", () => {
    expect(parseRange("24h")).toBe("24h");
    expect(parseRange("30d")).toBe("30d");
    expect(DEFAULT_RANGE).toBe("7d");
    for (const bad of [null, undefined, "", "1y", "7D", "toString", "__proto__"]) expect(parseRange(bad)).toBe("7d");
  });

  it("starts a range on an hour bucket so the current hour counts as one of its hours", () => {
    const now = new Date("2026-11-29T08:42:00Z");
    expect(rangeStart("24h", now).toISOString()).toBe("2026-11-28T09:00:00.000Z");
    expect(rangeStart("7d", now).getTime()).toBe(hourBucket(now).getTime() - 167 * HOUR_MS);
  });
});

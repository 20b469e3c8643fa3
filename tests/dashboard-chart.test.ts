import { describe, expect, it } from "vitest";
import {
  buildBarData,
  buildChartData,
  describeRefused,
  highestLimit,
  refusedInRange,
  withRefusedBars,
  limitChanges,
  xTicks,
  yScale,
  yTicks,
} from "~/components/dashboard/chart-data";
import { formatRelative, formatShortDuration } from "~/utils/format";
import type { LiveUsage, OutcomeHourView } from "~/components/dashboard/types";

const live = (used: number, at: string, period = at.slice(0, 7)): LiveUsage => ({
  used,
  limit: 1000,
  remaining: 1000 - used,
  period,
  resetsAt: "2026-12-01T00:00:00.000Z",
  at,
});

describe("chart data", () => {
  it("joins the last synced point to the live value with a pending segment", () => {
    const data = buildChartData(
      [
        { hour: "2026-11-29T07:00:00.000Z", used: 10, period: "2026-11", limit: null },
        { hour: "2026-11-29T08:00:00.000Z", used: 14, period: "2026-11", limit: null },
      ],
      live(21, "2026-11-29T08:40:00.000Z"),
    );
    expect(data).toEqual([
      { t: Date.parse("2026-11-29T07:00:00Z"), synced: 10 },
      { t: Date.parse("2026-11-29T08:00:00Z"), synced: 14, pending: 14 },
      { t: Date.parse("2026-11-29T08:40:00Z"), pending: 21, live: true },
    ]);
  });

  it("does not draw a slope across a month change, and shows a lone live point without history", () => {
    const acrossMonths = buildChartData(
      [{ hour: "2026-11-30T23:00:00.000Z", used: 900, period: "2026-11", limit: null }],
      live(3, "2026-12-01T00:10:00.000Z"),
    );
    expect(acrossMonths[0].pending).toBeUndefined();
    expect(acrossMonths[1]).toMatchObject({ pending: 3, live: true });
    expect(buildChartData([], live(7, "2026-11-29T08:40:00.000Z"))).toEqual([
      { t: Date.parse("2026-11-29T08:40:00Z"), pending: 7, live: true },
    ]);
    expect(buildChartData([], null)).toEqual([]);
  });

  it("carries the limit in force at each hour, falling back to the current one, as a step series", () => {
    const data = buildChartData(
      [
        { hour: "2026-11-29T06:00:00.000Z", used: 5, period: "2026-11", limit: null },
        { hour: "2026-11-29T07:00:00.000Z", used: 10, period: "2026-11", limit: 500 },
        { hour: "2026-11-29T08:00:00.000Z", used: 14, period: "2026-11", limit: 2000 },
      ],
      live(21, "2026-11-29T08:40:00.000Z"),
      2000,
    );
    expect(data.map((d) => d.limit)).toEqual([2000, 500, 2000, 2000]);
    expect(limitChanges(data)).toBe(true);
    expect(highestLimit(data, 1000)).toBe(2000);
    const steady = buildChartData(
      [{ hour: "2026-11-29T06:00:00.000Z", used: 5, period: "2026-11", limit: 300 }],
      null,
      300,
    );
    expect(limitChanges(steady)).toBe(false);
  });

  it("puts the limit under a round ceiling with round ticks", () => {
    expect(yTicks([], 10_000)).toEqual([0, 2000, 4000, 6000, 8000, 10_000, 12_000]);
    expect(yTicks([], 1000)).toEqual([0, 200, 400, 600, 800, 1000, 1200]);
    expect(yTicks([{ t: 0, synced: 2500 }], 1000).at(-1)).toBeGreaterThanOrEqual(2500);
    expect(yTicks([], 5)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    for (const limit of [1, 7, 99, 12_345, 2_000_000]) {
      const ticks = yTicks([], limit);
      expect(ticks.length).toBeLessThanOrEqual(7);
      expect(ticks.at(-1)).toBeGreaterThan(limit);
      expect(ticks.every(Number.isInteger)).toBe(true);
    }
  });

  it("fits the y axis to usage far below the limit, and puts the limit on the scale when asked or when near", () => {
    const small = buildChartData(
      [
        { hour: "2026-11-29T07:00:00.000Z", used: 4, period: "2026-11", limit: null },
        { hour: "2026-11-29T08:00:00.000Z", used: 6, period: "2026-11", limit: null },
      ],
      null,
    );
    const fitted = yScale(small, 1000);
    expect(fitted.limitOnScale).toBe(false);
    expect(fitted.ticks.at(-1)).toBeGreaterThanOrEqual(6);
    expect(fitted.ticks.at(-1)).toBeLessThanOrEqual(10);
    expect(fitted.ticks.every(Number.isInteger)).toBe(true);
    expect(yScale(small, 1000, { showLimit: true })).toEqual({ ticks: yTicks(small, 1000), limitOnScale: true });
    // From a quarter of the limit up the limit is in view on its own.
    expect(yScale([{ t: 0, synced: 250 }], 1000).limitOnScale).toBe(true);
    expect(yScale([{ t: 0, synced: 249 }], 1000).limitOnScale).toBe(false);
    // Nothing used yet: still a scale, not a division by zero.
    expect(yScale([{ t: 0, pending: 0, live: true }], 1000).ticks).toEqual([0, 1]);
    // Bars have no limit to show and stack their synced and pending parts.
    expect(yScale([{ t: 0, synced: 6, pending: 5 }], null, { stacked: true })).toMatchObject({ limitOnScale: false });
    expect(yScale([{ t: 0, synced: 6, pending: 5 }], null, { stacked: true }).ticks.at(-1)).toBeGreaterThanOrEqual(11);
  });

  it("draws bars at their bucket's middle and stacks the calls not yet synced on the current one", () => {
    const buckets = [
      { start: "2026-11-28T00:00:00.000Z", period: "2026-11", used: 40, calls: 40 },
      { start: "2026-11-29T00:00:00.000Z", period: "2026-11", used: 52, calls: 12 },
    ];
    const day = 86_400_000;
    const today = Date.parse("2026-11-29T00:00:00Z");
    expect(buildBarData(buckets, live(60, "2026-11-29T08:40:00.000Z"), "day")).toEqual([
      { t: today - day / 2, start: today - day, synced: 40 },
      { t: today + day / 2, start: today, synced: 12, pending: 8, live: true },
    ]);
    // The live count in the next hour, before its sync: a bar of its own.
    const hourly = buildBarData(
      [{ start: "2026-11-29T07:00:00.000Z", period: "2026-11", used: 52, calls: 3 }],
      live(55, "2026-11-29T08:40:00.000Z"),
      "hour",
    );
    expect(hourly.at(-1)).toEqual({
      t: Date.parse("2026-11-29T08:30:00Z"),
      start: Date.parse("2026-11-29T08:00:00Z"),
      pending: 3,
      live: true,
    });
    // A new month counts from zero, not from last month's total.
    const december = buildBarData(buckets, live(5, "2026-12-01T00:10:00.000Z", "2026-12"), "day");
    expect(december.at(-1)).toMatchObject({ pending: 5, start: Date.parse("2026-12-01T00:00:00Z") });
    // Nothing new since the sync: nothing pending.
    expect(buildBarData(buckets, live(52, "2026-11-29T08:40:00.000Z"), "day")).toHaveLength(2);
    expect(buildBarData(buckets, live(52, "2026-11-29T08:40:00.000Z"), "day")[1].pending).toBeUndefined();
  });

  it("stacks refused answers on their hour's or day's bar, giving a bucket with refusals only a bar of its own", () => {
    const outcomes: OutcomeHourView[] = [
      { hour: "2026-11-29T07:00:00.000Z", counts: { "200": 5, "401": 2, "404": 1 } },
      { hour: "2026-11-29T09:00:00.000Z", counts: { "429": 3, "304": 4 } },
      // Outside the range: not drawn.
      { hour: "2026-11-20T09:00:00.000Z", counts: { "401": 9 } },
    ];
    const from = Date.parse("2026-11-29T00:00:00.000Z");
    const to = Date.parse("2026-11-30T00:00:00.000Z");
    const hourly = withRefusedBars(
      buildBarData([{ start: "2026-11-29T07:00:00.000Z", period: "2026-11", used: 5, calls: 5 }], null, "hour"),
      outcomes,
      "hour",
      from,
      to,
    );
    expect(hourly.map((d) => [new Date(d.start!).toISOString().slice(11, 13), d.synced, d.refused])).toEqual([
      ["07", 5, 3],
      ["09", undefined, 3],
    ]);
    expect(describeRefused(hourly[0].refusedByStatus!)).toBe("401 ×2, 404 ×1");
    // Stacked, the scale reaches the served and refused calls together.
    expect(yScale(hourly, null, { stacked: true }).ticks.at(-1)).toBeGreaterThanOrEqual(8);

    const daily = withRefusedBars([], outcomes, "day", from, to);
    expect(daily).toHaveLength(1);
    expect(daily[0]).toMatchObject({ start: from, refused: 6, refusedByStatus: { "401": 2, "404": 1, "429": 3 } });
    expect(refusedInRange(outcomes, from, to)).toEqual({ total: 6, byStatus: { "401": 2, "404": 1, "429": 3 } });
  });

  it("places time ticks on whole UTC hours and midnights", () => {
    const to = Date.parse("2026-11-29T08:40:00Z");
    expect(xTicks(to - 23 * 3_600_000, to, true).map((t) => new Date(t).getUTCHours() % 3)).not.toContain(1);
    const week = xTicks(to - 7 * 86_400_000, to, false);
    expect(week).toHaveLength(7);
    expect(week.every((t) => t % 86_400_000 === 0)).toBe(true);
    expect(xTicks(to - 30 * 86_400_000, to, false).length).toBeLessThanOrEqual(7);
  });
});

describe("formatting", () => {
  it("speaks in relative time and countdowns", () => {
    const now = Date.parse("2026-11-29T08:40:00Z");
    expect(formatRelative("2026-11-29T08:28:00Z", now)).toBe("12 minutes ago");
    expect(formatRelative("2026-11-29T08:39:40Z", now)).toBe("just now");
    expect(formatRelative("2026-11-28T08:40:00Z", now)).toBe("yesterday");
    expect(formatShortDuration(2 * 86_400 + 5)).toBe("2 d");
    expect(formatShortDuration(86_400)).toBe("1 d");
    expect(formatShortDuration(3 * 3600 + 1)).toBe("3 h");
    expect(formatShortDuration(30)).toBe("1 min");
  });
});

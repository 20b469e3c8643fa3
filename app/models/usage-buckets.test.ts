import { parse } from "csv-parse/sync";
import { describe, expect, it } from "vitest";
import { HOUR_MS, periodOf } from "~/utils/period";
import {
  bucketSnapshots,
  parseHistoryRange,
  usageExportCsv,
  usageExportFilename,
  usageExportRows,
  type UsageSnapshotValue,
} from "./usage-buckets.server";

/** Cumulative hourly snapshots from `start`, the month's count growing by `perHour[i]` and restarting each month. */
function snapshots(start: string, perHour: number[]): UsageSnapshotValue[] {
  const out: UsageSnapshotValue[] = [];
  let used = 0;
  perHour.forEach((calls, i) => {
    const hour = new Date(Date.parse(start) + i * HOUR_MS);
    const period = periodOf(hour);
    if (out.length > 0 && out.at(-1)!.period !== period) used = 0;
    used += calls;
    out.push({ hour, period, used });
  });
  return out;
}

const iso = (date: Date) => date.toISOString();

describe("bucketSnapshots", () => {
  it("turns the running total into calls per hour", () => {
    const buckets = bucketSnapshots(snapshots("2026-11-10T05:00:00Z", [3, 0, 7, 1]), "hour");
    expect(buckets.map((b) => [iso(b.start), b.used, b.calls])).toEqual([
      ["2026-11-10T05:00:00.000Z", 3, 3],
      ["2026-11-10T06:00:00.000Z", 3, 0],
      ["2026-11-10T07:00:00.000Z", 10, 7],
      ["2026-11-10T08:00:00.000Z", 11, 1],
    ]);
  });

  it("sums hours into UTC days, the day's used being the total at its end", () => {
    // 22:00 on the 10th to 01:00 on the 12th: two hours on the 10th, 24 on the 11th, two on the 12th.
    const buckets = bucketSnapshots(snapshots("2026-11-10T22:00:00Z", Array(28).fill(2)), "day");
    expect(buckets.map((b) => [iso(b.start), b.used, b.calls])).toEqual([
      ["2026-11-10T00:00:00.000Z", 4, 4],
      ["2026-11-11T00:00:00.000Z", 52, 48],
      ["2026-11-12T00:00:00.000Z", 56, 4],
    ]);
  });

  it("restarts at a month boundary instead of showing a negative drop", () => {
    const series = snapshots("2026-11-30T22:00:00Z", [5, 5, 4, 6]);
    expect(series.map((s) => s.used)).toEqual([5, 10, 4, 10]);
    const hours = bucketSnapshots(series, "hour");
    expect(hours.map((b) => [b.period, b.used, b.calls])).toEqual([
      ["2026-11", 5, 5],
      ["2026-11", 10, 5],
      ["2026-12", 4, 4],
      ["2026-12", 10, 6],
    ]);
    const days = bucketSnapshots(series, "day");
    expect(days.map((b) => [b.period, iso(b.start), b.used, b.calls])).toEqual([
      ["2026-11", "2026-11-30T00:00:00.000Z", 10, 10],
      ["2026-12", "2026-12-01T00:00:00.000Z", 10, 10],
    ]);
  });

  it("starts a mid-month range from the month's count before it", () => {
    const series = snapshots("2026-11-10T05:00:00Z", [3, 4]).map((s) => ({ ...s, used: s.used + 100 }));
    expect(bucketSnapshots(series, "hour", { period: "2026-11", used: 100 }).map((b) => b.calls)).toEqual([3, 4]);
    // A count from another month is no baseline: the range's month started from zero.
    expect(bucketSnapshots(series, "hour", { period: "2026-10", used: 100 }).map((b) => b.calls)).toEqual([103, 4]);
  });

  it("clamps at zero when a snapshot reads lower, and counts from the highest so far", () => {
    const series: UsageSnapshotValue[] = [10, 8, 12].map((used, i) => ({
      hour: new Date(Date.parse("2026-11-10T05:00:00Z") + i * HOUR_MS),
      period: "2026-11",
      used,
    }));
    const buckets = bucketSnapshots(series, "hour");
    expect(buckets.map((b) => b.calls)).toEqual([10, 0, 2]);
    expect(buckets.map((b) => b.used)).toEqual([10, 10, 12]);
    expect(buckets.reduce((sum, b) => sum + b.calls, 0)).toBe(12);
  });

  it("has nothing to show for no snapshots", () => {
    expect(bucketSnapshots([], "day")).toEqual([]);
  });
});

describe("parseHistoryRange", () => {
  const now = new Date("2026-11-29T08:40:00Z");
  const ok = (input: Parameters<typeof parseHistoryRange>[0]) => {
    const parsed = parseHistoryRange(input, now);
    if (!parsed.ok) throw new Error(parsed.detail);
    return { from: iso(parsed.range.from), to: iso(parsed.range.to), granularity: parsed.range.granularity };
  };
  const failure = (input: Parameters<typeof parseHistoryRange>[0]) => {
    const parsed = parseHistoryRange(input, now);
    if (parsed.ok) throw new Error("expected a failure");
    return parsed;
  };

  it("defaults to this month by the hour", () => {
    expect(ok({})).toEqual({ from: "2026-11-01T00:00:00.000Z", to: "2026-12-01T00:00:00.000Z", granularity: "hour" });
    expect(ok({ to: "2026-11-01" })).toMatchObject({ from: "2026-10-01T00:00:00.000Z" });
  });

  it("reads dates and datetimes as UTC and widens them to whole buckets", () => {
    expect(ok({ from: "2026-11-05", to: "2026-11-06" })).toMatchObject({
      from: "2026-11-05T00:00:00.000Z",
      to: "2026-11-06T00:00:00.000Z",
    });
    expect(ok({ from: "2026-11-05T08:30", to: "2026-11-05T10:15:00Z" })).toMatchObject({
      from: "2026-11-05T08:00:00.000Z",
      to: "2026-11-05T11:00:00.000Z",
    });
    expect(ok({ from: "2026-11-05T08:00:00+02:00", to: "2026-11-05T12:00:00Z" }).from).toBe("2026-11-05T06:00:00.000Z");
    expect(ok({ from: "2026-11-05T08:30:00Z", to: "2026-11-06T01:00:00Z", granularity: "day" })).toEqual({
      from: "2026-11-05T00:00:00.000Z",
      to: "2026-11-07T00:00:00.000Z",
      granularity: "day",
    });
  });

  it("names the parameter to fix", () => {
    expect(failure({ granularity: "week" })).toMatchObject({ parameter: "granularity" });
    expect(failure({ from: "yesterday" })).toMatchObject({ parameter: "from" });
    expect(failure({ to: "2026-02-30" })).toMatchObject({ parameter: "to" });
    expect(failure({ from: "2026-11-10", to: "2026-11-10" })).toMatchObject({ parameter: "to" });
    expect(failure({ from: "2027-01-01" })).toMatchObject({ parameter: "from" });
  });

  it("bounds the range: 92 days of hours, 400 of days", () => {
    expect(ok({ from: "2026-09-01", to: "2026-12-02" }).granularity).toBe("hour");
    expect(failure({ from: "2026-09-01", to: "2026-12-03" })).toMatchObject({ parameter: "to" });
    expect(failure({ from: "2026-09-01", to: "2026-12-03" }).detail).toContain("granularity=day");
    expect(ok({ from: "2025-11-01", to: "2026-12-06", granularity: "day" }).granularity).toBe("day");
    expect(failure({ from: "2025-11-01", to: "2026-12-07", granularity: "day" })).toMatchObject({ parameter: "to" });
    expect(failure({ from: "2026-01-01" })).toMatchObject({ parameter: "from" });
  });
});

describe("export shapes", () => {
  const buckets = bucketSnapshots(snapshots("2026-11-30T23:00:00Z", [5, 2]), "day");

  it("labels days by date and hours by datetime, and quotes CSV by RFC 4180", () => {
    expect(usageExportRows(buckets, "day")).toEqual([
      { period: "2026-11", day: "2026-11-30", used: 5, calls: 5 },
      { period: "2026-12", day: "2026-12-01", used: 2, calls: 2 },
    ]);
    const csv = usageExportCsv(buckets, "day");
    expect(csv).toBe("period,day,used,calls\r\n2026-11,2026-11-30,5,5\r\n2026-12,2026-12-01,2,2\r\n");
    expect(parse(csv, { columns: true })).toEqual([
      { period: "2026-11", day: "2026-11-30", used: "5", calls: "5" },
      { period: "2026-12", day: "2026-12-01", used: "2", calls: "2" },
    ]);
    expect(usageExportCsv([], "hour")).toBe("period,hour,used,calls\r\n");
  });

  it("names the file after the range", () => {
    expect(usageExportFilename({ from: new Date("2026-11-01T00:00:00Z"), to: new Date("2026-12-01T00:00:00Z") })).toBe(
      "sheetmeter-usage-2026-11-01-2026-12-01.csv",
    );
    expect(usageExportFilename({ from: new Date("2026-11-05T08:00:00Z"), to: new Date("2026-11-06T00:00:00Z") })).toBe(
      "sheetmeter-usage-2026-11-05T0800Z-2026-11-06.csv",
    );
  });
});

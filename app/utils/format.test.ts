import { describe, expect, it } from "vitest";
import { formatDateTime, formatPercent, formatResetsAt, formatShortDuration } from "./format";

describe("formatPercent", () => {
  it("shows small shares with one decimal, rounded down", () => {
    expect(formatPercent(6, 1000)).toBe("0.6 %");
    expect(formatPercent(29, 1000)).toBe("2.9 %");
    expect(formatPercent(412, 1000)).toBe("41.2 %");
    expect(formatPercent(1, 3)).toBe("33.3 %");
    expect(formatPercent(2, 3)).toBe("66.6 %");
  });

  it("drops a trailing .0", () => {
    expect(formatPercent(800, 1000)).toBe("80 %");
    expect(formatPercent(1, 10)).toBe("10 %");
  });

  it("never says 0 % for non-zero usage", () => {
    expect(formatPercent(1, 1000)).toBe("0.1 %");
    expect(formatPercent(1, 1001)).toBe("< 0.1 %");
    expect(formatPercent(6, 1_000_000)).toBe("< 0.1 %");
    expect(formatPercent(0, 1000)).toBe("0 %");
  });

  it("says 100 % only at or over the limit", () => {
    expect(formatPercent(999, 1000)).toBe("99.9 %");
    expect(formatPercent(999_999, 1_000_000)).toBe("99.9 %");
    expect(formatPercent(1000, 1000)).toBe("100 %");
    expect(formatPercent(1200, 1000)).toBe("100 %");
    // A plan with no calls at all is used up from the start.
    expect(formatPercent(0, 0)).toBe("100 %");
  });
});

describe("times read as 24-hour UTC everywhere", () => {
  it("formats a date and time without AM/PM", () => {
    expect(formatDateTime(new Date("2026-11-29T00:07:00Z"))).toBe("Nov 29, 2026, 00:07 UTC");
    expect(formatDateTime(new Date("2026-11-29T20:15:59Z"))).toBe("Nov 29, 2026, 20:15 UTC");
  });

  it("says when the quota resets, with the date in the text and a short countdown", () => {
    expect(formatResetsAt("2026-12-01T00:00:00.000Z", "2026-11-30T00:30:00.000Z")).toBe(
      "Resets Dec 1, 00:00 UTC (in 23 h)",
    );
    expect(formatResetsAt("2026-12-01T00:00:00.000Z", "2026-11-28T00:00:00.000Z")).toBe(
      "Resets Dec 1, 00:00 UTC (in 3 d)",
    );
    expect(formatResetsAt("2026-12-01T00:00:00.000Z", "2026-11-30T23:58:30.000Z")).toBe(
      "Resets Dec 1, 00:00 UTC (in 1 min)",
    );
  });

  it("keeps the countdown short", () => {
    expect(formatShortDuration(59)).toBe("1 min");
    expect(formatShortDuration(3599)).toBe("59 min");
    expect(formatShortDuration(3600)).toBe("1 h");
    expect(formatShortDuration(86_400 * 30)).toBe("30 d");
  });
});

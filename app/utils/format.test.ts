import { describe, expect, it } from "vitest";
import { formatPercent } from "./format";

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

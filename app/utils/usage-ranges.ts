/**
 * The ranges the usage chart offers. Plain values with no server code, so the page's components and the loader that
 * reads the history agree on them.
 */
export const USAGE_RANGES = {
  "24h": { hours: 24 },
  "7d": { hours: 7 * 24 },
  "30d": { hours: 30 * 24 },
} as const;

export type UsageRange = keyof typeof USAGE_RANGES;

// A week shows the shape of the month (weekday peaks, the climb toward the limit) without downsampling, and still
// has a point per hour; 24 h is too short to tell a trend from a burst, 30 d is a click away.
export const DEFAULT_RANGE: UsageRange = "7d";

export function isUsageRange(value: unknown): value is UsageRange {
  return typeof value === "string" && Object.hasOwn(USAGE_RANGES, value);
}

/** The range asked for in the URL, or the default for anything missing or unknown (a stale bookmark, a typo). */
export function parseRange(value: string | null | undefined): UsageRange {
  return isUsageRange(value) ? value : DEFAULT_RANGE;
}

/**
 * How the chart shows the range: the month's running total (against the limit), or bars of the calls made in each
 * hour or day. Also in the URL, like the range.
 */
export const USAGE_VIEWS = {
  cumulative: { label: "Cumulative", granularity: "hour" },
  hour: { label: "Per hour", granularity: "hour" },
  day: { label: "Per day", granularity: "day" },
} as const;

export type UsageView = keyof typeof USAGE_VIEWS;

export const DEFAULT_VIEW: UsageView = "cumulative";

export function parseView(value: string | null | undefined): UsageView {
  return typeof value === "string" && Object.hasOwn(USAGE_VIEWS, value) ? (value as UsageView) : DEFAULT_VIEW;
}

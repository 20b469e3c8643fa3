/**
 * The dashboard's data as it crosses the wire: plain JSON, dates as ISO strings. The loader and the live resource
 * route both produce these shapes, so the page and its polling agree on what a value means.
 */

export interface LiveUsage {
  used: number;
  limit: number;
  remaining: number;
  /** The UTC month the count belongs to, "YYYY-MM". */
  period: string;
  /** When the quota resets (the first instant of the next UTC month). */
  resetsAt: string;
  /** When the server read the count; also the clock that "resets in …" is measured from. */
  at: string;
}

export interface ChartPoint {
  hour: string;
  used: number;
  period: string;
  /** The monthly limit in force when the hour was synced; null when not recorded (the current limit applies). */
  limit: number | null;
}

/** One API key's calls this month, for the dashboard's breakdown and the chart's key picker. */
export interface KeyUsageView {
  id: string;
  name: string;
  prefix: string;
  revoked: boolean;
  used: number;
}

export interface SyncRunView {
  status: string;
  startedAt: string;
  finishedAt: string | null;
}

export interface SheetSummaryView {
  id: string;
  name: string;
  rowCount: number;
  /** When the rows last changed (upload or replacement), ISO 8601. */
  dataUpdatedAt: string;
}

/** One part of the page: its data, or the fact that it could not be loaded (the part renders its own message). */
export type Part<T> = { ok: true; data: T } | { ok: false };

export type ChartGranularity = "hour" | "day";

/** Calls in one hour or day, from the same bucketing as the export (`app/models/usage-buckets.server.ts`). */
export interface ChartBucket {
  /** The first instant of the hour or day. */
  start: string;
  period: string;
  /** The month's running total at the end of the bucket. */
  used: number;
  calls: number;
}

/** The bar views' range, in whole buckets (a "7 d" range by day covers the eight days it touches). */
export interface ChartBars {
  from: string;
  to: string;
  granularity: ChartGranularity;
  buckets: ChartBucket[];
}

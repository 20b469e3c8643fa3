import type { RequestLogEntry } from "~/models/request-outcomes.server";

/** Requests kept per account (Redis `requestlog:{userId}`); here, not in a .server module, so the page can say it. */
export const REQUEST_LOG_LENGTH = 100;

/**
 * The /logs page's filters: by status (one, or every refused one) and by key prefix. Pure, so the page and its tests
 * share it; the values come from a query string and are checked, never trusted.
 */
export const STATUS_FILTERS = [
  { value: "all", label: "All statuses" },
  { value: "refused", label: "Refused (4xx, 5xx)" },
  { value: "200", label: "200 OK" },
  { value: "304", label: "304 Not modified" },
  { value: "400", label: "400 Bad parameter" },
  { value: "401", label: "401 Bad key" },
  { value: "404", label: "404 Not found" },
  { value: "429", label: "429 Over quota" },
  { value: "503", label: "503 Unavailable" },
] as const;

export type StatusFilter = (typeof STATUS_FILTERS)[number]["value"];

export interface LogFilter {
  status: StatusFilter;
  /** A key's display prefix, or "" for every key. */
  key: string;
}

const KEY_PREFIX = /^sm_live_[A-Za-z0-9_-]{6}$/;

export function parseLogFilter(params: URLSearchParams): LogFilter {
  const status = params.get("status") ?? "all";
  const key = params.get("key") ?? "";
  return {
    status: STATUS_FILTERS.some((option) => option.value === status) ? (status as StatusFilter) : "all",
    key: KEY_PREFIX.test(key) ? key : "",
  };
}

export function filterRequests(entries: readonly RequestLogEntry[], filter: LogFilter): RequestLogEntry[] {
  return entries.filter((entry) => {
    if (filter.key && entry.keyPrefix !== filter.key) return false;
    if (filter.status === "all") return true;
    if (filter.status === "refused") return entry.status >= 400;
    return String(entry.status) === filter.status;
  });
}

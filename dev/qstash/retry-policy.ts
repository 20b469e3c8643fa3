/**
 * When, and whether, a failed delivery is tried again — the rules of https://upstash.com/docs/qstash/features/retry.
 */

// QStash caps every wait before a retry at one day, whichever rule produced it.
export const MAX_RETRY_DELAY_MS = 24 * 60 * 60 * 1000;

/**
 * QStash's documented default backoff, `min(86400, e^(2.5·n))` seconds, where n counts the retries including the one
 * being scheduled: the documented table starts at n = 1 → 12 s, then 2m28s, 30m8s, 6h7m6s, 24h.
 */
export function qstashBackoff(retried: number): number {
  return Math.min(86_400, Math.exp(2.5 * (retried + 1))) * 1000;
}

/** The stand-in's quick spacing (200 ms · 2ⁿ): retries within a second, for tests and local runs that want no wait. */
export function quickBackoff(retried: number): number {
  return 200 * 2 ** retried;
}

/**
 * A 489 answer carrying `Upstash-NonRetryable-Error: true` asks QStash to give up at once: the message goes straight
 * to the DLQ (and its failure callback) whatever retries it has left.
 */
export function isNonRetryable(status: number, headers: Headers): boolean {
  return status === 489 && headers.get("upstash-nonretryable-error")?.trim().toLowerCase() === "true";
}

// The answer headers QStash reads as "retry after" (in this order), per the docs' "Retry-After Headers" section.
const RETRY_AFTER_HEADERS = [
  "retry-after",
  "x-ratelimit-reset",
  "x-ratelimit-reset-requests",
  "x-ratelimit-reset-tokens",
];

const GO_DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** One header value as QStash accepts it: whole seconds, an RFC 1123 date, or a Go duration (`6m5s`). */
function parseRetryAfterValue(value: string, now: number): number | undefined {
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const parts = [...trimmed.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|μs|ms|s|m|h)/g)];
  if (parts.length > 0 && parts.map((part) => part[0]).join("") === trimmed) {
    return parts.reduce((total, [, amount, unit]) => total + Number(amount) * GO_DURATION_UNITS[unit], 0);
  }
  const date = Date.parse(trimmed);
  if (/[A-Za-z]{3},/.test(trimmed) && !Number.isNaN(date)) return Math.max(0, date - now);
  return undefined;
}

/**
 * The wait a destination asked for in its answer, if any it asked for is one QStash keeps: a value beyond the one-day
 * cap is ignored and the regular backoff applies, as documented.
 */
export function requestedRetryDelay(headers: Headers, now: number): number | undefined {
  for (const name of RETRY_AFTER_HEADERS) {
    const value = headers.get(name);
    if (value === null) continue;
    const wait = parseRetryAfterValue(value, now);
    if (wait !== undefined) return wait <= MAX_RETRY_DELAY_MS ? wait : undefined;
  }
  return undefined;
}

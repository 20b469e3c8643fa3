/**
 * Quota periods are UTC calendar months ("YYYY-MM"); usage history is bucketed by UTC hour. Everything that names
 * a period or an hour goes through here so the API, the sync and the dashboard agree on boundaries.
 */
export const HOUR_MS = 3_600_000;

export function periodOf(date: Date): string {
  return date.toISOString().slice(0, 7);
}

export function periodStart(period: string): Date {
  const [year, month] = period.split("-").map(Number);
  return new Date(Date.UTC(year, month - 1, 1));
}

/** The first instant of the next month: when this period's quota resets. */
export function periodEnd(period: string): Date {
  const [year, month] = period.split("-").map(Number);
  return new Date(Date.UTC(year, month, 1));
}

export function previousPeriod(period: string): string {
  return periodOf(new Date(periodStart(period).getTime() - 1));
}

export function nextPeriod(period: string): string {
  return periodOf(periodEnd(period));
}

export function isPeriod(value: string): boolean {
  return /^\d{4}-(0[1-9]|1[0-2])$/.test(value);
}

/** The start of the UTC hour that `date` falls in. */
export function hourBucket(date: Date): Date {
  const bucket = new Date(date);
  bucket.setUTCMinutes(0, 0, 0);
  return bucket;
}

/** Whole seconds from `now` until the period resets (at least 1, so a Retry-After is never 0). */
export function secondsUntilReset(period: string, now: Date): number {
  return Math.max(1, Math.ceil((periodEnd(period).getTime() - now.getTime()) / 1000));
}

export function secondsInPeriod(period: string): number {
  return (periodEnd(period).getTime() - periodStart(period).getTime()) / 1000;
}

/** Redis key of a user's live count for a month; the sync finds counters by the "quota:" prefix alone. */
export function quotaKey(userId: string, period: string): string {
  return `quota:${userId}:${period}`;
}

export const QUOTA_KEY_PATTERN = "quota:*";

export function parseQuotaKey(key: string): { userId: string; period: string } | null {
  const match = /^quota:(.+):(\d{4}-\d{2})$/.exec(key);
  return match ? { userId: match[1], period: match[2] } : null;
}

/**
 * The user id of a counter's name, without the objects `parseQuotaKey` makes (the sync splits a million names an
 * hour): null unless the name is `quota:{userId}:{period}` with a valid month (`isPeriod`), which is then the
 * name's last seven characters.
 */
export function quotaKeyUserId(key: string): string | null {
  const length = key.length;
  // 58 is ":"; "quota:" + at least one character + ":" + "YYYY-MM".
  if (length < 15 || !key.startsWith("quota:") || key.charCodeAt(length - 8) !== 58) return null;
  return isPeriod(key.slice(-7)) ? key.slice(6, -8) : null;
}

/**
 * Redis hash of a user's calls per API key for a month (field = key id), counted by the quota script beside the
 * counter. Not under "quota:": the sync's SCAN must meet counters only; it reads this hash beside each counter.
 */
export function keyUsageKey(userId: string, period: string): string {
  return `keyusage:${userId}:${period}`;
}

/** Redis mark that a month's usage threshold (80 or 100 % of the limit) has been reported, set once by the script. */
export function thresholdMarkKey(userId: string, period: string, threshold: 80 | 100): string {
  return `alert:${userId}:${period}:${threshold}`;
}

/**
 * Formatting for people. Everything is fixed to en-US and UTC: quota months are UTC months, and the server and the
 * browser must print the same text or React's hydration would disagree with the server's HTML.
 */
const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });
const relative = new Intl.RelativeTimeFormat("en-US", { numeric: "auto" });
const mediumDate = new Intl.DateTimeFormat("en-US", { dateStyle: "medium", timeZone: "UTC" });
const shortDay = new Intl.DateTimeFormat("en-US", { month: "short", day: "numeric", timeZone: "UTC" });

export function formatCount(value: number): string {
  return integer.format(value);
}

/** Axis ticks stay narrow on a phone: separators up to six digits, "1.5M" beyond. */
export function formatAxisCount(value: number): string {
  return Math.abs(value) >= 1_000_000 ? compact.format(value) : integer.format(value);
}

/**
 * The share of the quota used, as true as one decimal allows: "0.6 %", "41.2 %", "80 %". Rounded down, so a share
 * never reads as more than it is; "< 0.1 %" for usage too small to show, so non-zero usage never reads "0 %"; and
 * "100 %" only at or over the limit (999 of 1,000 reads "99.9 %", not a rounded-up "100 %" while calls still pass).
 */
export function formatPercent(used: number, limit: number): string {
  if (limit <= 0 || used >= limit) return "100 %";
  if (used <= 0) return "0 %";
  // Tenths of a percent from integers, so 29 of 1,000 is 2.9 and not 2.8 from 0.029 * 100 = 2.8999….
  const tenths = Math.floor((used * 1000) / limit);
  if (tenths === 0) return "< 0.1 %";
  return `${tenths % 10 === 0 ? tenths / 10 : (tenths / 10).toFixed(1)} %`;
}

/** "November 2026" */
export function formatMonth(period: string): string {
  const [year, month] = period.split("-").map(Number);
  return new Date(Date.UTC(year, month - 1, 1)).toLocaleString("en-US", {
    month: "long",
    year: "numeric",
    timeZone: "UTC",
  });
}

/** "Nov 29, 2026" */
export function formatDate(date: Date): string {
  return mediumDate.format(date);
}

/** "Nov 29, 2026, 08:12 UTC": 24-hour like every other time on the pages, never "8:12 AM". */
export function formatDateTime(date: Date): string {
  return `${mediumDate.format(date)}, ${formatClock(date)} UTC`;
}

/** "December 1, 2026 at 00:00 UTC" */
export function formatResetDate(iso: string): string {
  const date = new Date(iso);
  const day = date.toLocaleString("en-US", { month: "long", day: "numeric", year: "numeric", timeZone: "UTC" });
  return `${day} at ${formatClock(date)} UTC`;
}

/** "Nov 29, 08:00 UTC" */
export function formatHour(date: Date | number): string {
  const d = new Date(date);
  return `${shortDay.format(d)}, ${formatClock(d)} UTC`;
}

/**
 * "Resets Dec 1, 00:00 UTC (in 23 h)": the date in the text itself, not only in a hover title a phone never shows.
 * The countdown is measured from `nowIso` (the server's clock when it read the count), so server and browser agree.
 */
export function formatResetsAt(resetsAtIso: string, nowIso: string): string {
  const resetsAt = new Date(resetsAtIso);
  const seconds = Math.max(1, Math.round((resetsAt.getTime() - Date.parse(nowIso)) / 1000));
  return `Resets ${formatHour(resetsAt)} (in ${formatShortDuration(seconds)})`;
}

/** "2026-11-29 08:12:05 UTC", for the exact time behind a relative one. */
export function formatExact(iso: string): string {
  return `${formatUtcTimestamp(iso)} UTC`;
}

/** "2026-11-29 08:12:05": the same, where a column heading already says UTC. */
export function formatUtcTimestamp(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
}

/** "08:00" in UTC, 24-hour, so it reads the same everywhere. */
export function formatClock(date: Date | number): string {
  return new Date(date).toISOString().slice(11, 16);
}

/** Axis tick for a time: the hour on a one-day range, the day otherwise. */
export function formatTick(ms: number, hourly: boolean): string {
  if (hourly) return formatClock(ms);
  return shortDay.format(ms);
}

/** "12 minutes ago", "yesterday", "just now". */
export function formatRelative(iso: string, nowMs: number): string {
  const seconds = Math.round((new Date(iso).getTime() - nowMs) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 45) return "just now";
  if (abs < 3600) return relative.format(Math.round(seconds / 60), "minute");
  if (abs < 86_400) return relative.format(Math.round(seconds / 3600), "hour");
  return relative.format(Math.round(seconds / 86_400), "day");
}

/** "3 d", "23 h", "12 min": the countdown in a sentence's parentheses, rounded down. */
export function formatShortDuration(seconds: number): string {
  if (seconds >= 86_400) return `${formatCount(Math.floor(seconds / 86_400))} d`;
  if (seconds >= 3600) return `${Math.floor(seconds / 3600)} h`;
  return `${Math.max(1, Math.floor(seconds / 60))} min`;
}

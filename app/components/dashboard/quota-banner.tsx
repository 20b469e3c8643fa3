import { formatCount, formatMonth, formatPercent, formatResetDate } from "~/utils/format";
import { usageLevel } from "./live-counter";
import type { LiveUsage } from "./types";

/**
 * Says what happens next, not just the percentage: at 80 % that calls will start failing at the limit, at 100 %
 * that they are failing now and until when. Driven by the live count, so it appears without a reload.
 */
export function QuotaBanner({ usage }: { usage: LiveUsage | null }) {
  if (!usage) return null;
  const level = usageLevel(usage);
  if (level === "ok") return null;
  const resets = formatResetDate(usage.resetsAt);

  if (level === "exhausted") {
    return (
      <div
        role="alert"
        data-testid="quota-banner"
        data-level="exhausted"
        className="rounded-lg border border-red-300 bg-red-50 px-4 py-3 text-sm text-red-900"
      >
        <p className="font-semibold">
          You have used all {formatCount(usage.limit)} calls for {formatMonth(usage.period)}.
        </p>
        <p className="mt-1">
          API calls are now answered with <strong>429 Too Many Requests</strong> (with a Retry-After header) until your
          quota resets on <strong>{resets}</strong>. Calls to <code>/api/v1/usage</code> still work.
        </p>
      </div>
    );
  }

  return (
    <div
      role="status"
      data-testid="quota-banner"
      data-level="warning"
      className="rounded-lg border border-amber-300 bg-amber-50 px-4 py-3 text-sm text-amber-900"
    >
      <p className="font-semibold">
        You have used {formatPercent(usage.used, usage.limit)} of this month's quota ({formatCount(usage.used)} of{" "}
        {formatCount(usage.limit)} calls).
      </p>
      <p className="mt-1">
        After the remaining {formatCount(usage.remaining)} calls, API calls will be answered with 429 Too Many Requests
        until your quota resets on {resets}.
      </p>
    </div>
  );
}

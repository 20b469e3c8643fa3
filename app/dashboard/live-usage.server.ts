import type { LiveUsage } from "~/components/dashboard/types";
import type { QuotaState } from "~/models/quota.server";

/**
 * The live counter as the dashboard's loader and its polling route both send it, so the page and each refresh agree
 * on what a value means.
 */
export function liveUsageFrom(usage: QuotaState, at: Date): LiveUsage {
  return {
    used: usage.used,
    limit: usage.limit,
    remaining: usage.remaining,
    period: usage.period,
    resetsAt: usage.resetsAt.toISOString(),
    at: at.toISOString(),
  };
}

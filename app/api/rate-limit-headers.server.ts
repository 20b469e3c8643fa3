import type { QuotaState } from "~/models/quota.server";
import { secondsInPeriod } from "~/utils/period";

/** The quota headers of the IETF RateLimit draft, on every metered response. */
export function rateLimitHeaders(state: QuotaState): Record<string, string> {
  return {
    "RateLimit-Limit": String(state.limit),
    "RateLimit-Remaining": String(state.remaining),
    "RateLimit-Reset": String(state.resetSeconds),
    "RateLimit-Policy": `"monthly";q=${state.limit};w=${secondsInPeriod(state.period)}`,
    RateLimit: `"monthly";r=${state.remaining};t=${state.resetSeconds}`,
  };
}

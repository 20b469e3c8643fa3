import type { UsageThreshold } from "./quota.server";

/**
 * What happens when a call is the one that brought its owner's month to 80 % or 100 % of the limit. The quota script
 * decides that (a SET NX mark per user, month and threshold, in the same atomic run that counts the call), so each
 * threshold reaches this module once a month, from exactly one call, whatever the concurrency.
 *
 * This module is the seam between detection and delivery: the webhook module (`publishThresholdEvent` in
 * webhooks.server.ts: signed event through QStash, deduplicated per user, month and threshold) plugs in as the
 * `deliver` step below. Until it does, a crossing is written to the log as one JSON line, so operators can see it.
 */

export interface ThresholdCrossing {
  userId: string;
  threshold: UsageThreshold;
  /** The month's count right after the call that reached the threshold. */
  used: number;
  /** The limit in force for that call. */
  limit: number;
  /** The UTC month, "YYYY-MM". */
  period: string;
  /** When the call was counted (the API server's clock). */
  at: Date;
}

type Deliver = (crossing: ThresholdCrossing) => Promise<unknown> | unknown;

function logCrossing(crossing: ThresholdCrossing): void {
  console.info(JSON.stringify({ event: "usage.threshold", ...crossing, at: crossing.at.toISOString() }));
}

let deliver: Deliver = logCrossing;

/**
 * Reports the thresholds one call crossed. Returns at once: the API caller never waits for delivery, and a failure
 * is logged, never thrown, since the call itself has already been answered for.
 */
export function notifyThresholdsCrossed(
  base: Omit<ThresholdCrossing, "threshold">,
  thresholds: readonly UsageThreshold[],
): void {
  for (const threshold of thresholds) {
    const crossing: ThresholdCrossing = { ...base, threshold };
    // A microtask later, so a synchronous throw in `deliver` is caught like a rejection.
    void Promise.resolve()
      .then(() => deliver(crossing))
      .catch((error: unknown) => {
        console.error(`usage threshold ${threshold} % for user ${base.userId} (${base.period}) not delivered:`, error);
      });
  }
}

/**
 * Test seam: replaces what a crossing does (the tests count the calls), or restores the default with `null`. Tests
 * capture what reaches this point from the real script on real Redis; nothing in the quota path is replaced.
 */
export function setThresholdDelivery(replacement: Deliver | null): void {
  deliver = replacement ?? logCrossing;
}

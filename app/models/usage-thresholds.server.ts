import type { UsageThreshold } from "./quota.server";
import { publishThresholdEvent, type ThresholdCrossing } from "./webhook-events.server";

export type { ThresholdCrossing };

/**
 * What happens when a call is the one that brought its owner's month to 80 % or 100 % of the limit. The quota script
 * decides that (a SET NX mark per user, month and threshold, in the same atomic run that counts the call), so each
 * threshold reaches this module once a month, from exactly one call, whatever the concurrency.
 *
 * This module is the seam between detection and delivery: each crossing is written to the log as one JSON line, so
 * operators see it, and handed to `publishThresholdEvent` (webhook-events.server.ts), which sends the customer's
 * signed event through QStash, deduplicated per user, month and threshold, or does nothing without a webhook URL.
 * A publish QStash could not take is recorded and published again by the next hourly sync.
 */

type Deliver = (crossing: ThresholdCrossing) => Promise<unknown> | unknown;

function logCrossing(crossing: ThresholdCrossing): void {
  console.info(JSON.stringify({ event: "usage.threshold", ...crossing, at: crossing.at.toISOString() }));
}

async function logAndPublish(crossing: ThresholdCrossing): Promise<void> {
  logCrossing(crossing);
  const outcome = await publishThresholdEvent(crossing);
  if (outcome.status === "failed_to_queue") {
    console.warn(JSON.stringify({ event: "usage.threshold.unqueued", userId: crossing.userId, error: outcome.error }));
  }
}

let deliver: Deliver = logAndPublish;

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
  deliver = replacement ?? logAndPublish;
}

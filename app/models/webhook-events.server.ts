import { randomBytes } from "node:crypto";
import type { DeliveryStatus } from "./webhook-deliveries.server";
import {
  appWebhookDeps,
  deliveryForPublish,
  firstLine,
  type PublishOutcome,
  publishDelivery,
  type WebhookDeps,
} from "./webhook-publish.server";

export { appWebhookDeps, type PublishOutcome, type WebhookDeps } from "./webhook-publish.server";

/**
 * Usage alerts: which events exist, and the rule that a threshold is sent once per month. The quota path calls `publishThresholdEvent` once when a call crosses 80 %
 * or reaches 100 % of the month's limit; the settings page calls `sendTestEvent`. Neither throws: whatever happens
 * (no endpoint, QStash down, Postgres down) comes back as a result, because the caller is serving an API call.
 */
export type Threshold = 80 | 100;

export interface ThresholdCrossing {
  userId: string;
  threshold: Threshold;
  /** The count after the crossing call, and the limit it was measured against. */
  used: number;
  limit: number;
  /** UTC month, "YYYY-MM". */
  period: string;
  /** When the crossing call was counted. */
  at: Date;
}

export function thresholdDeduplicationId(crossing: Pick<ThresholdCrossing, "userId" | "period" | "threshold">): string {
  return `threshold-${crossing.userId}-${crossing.period}-${crossing.threshold}`;
}

/** The documented body, byte for byte: key order is fixed by this literal. */
export function thresholdEventBody(crossing: Omit<ThresholdCrossing, "userId">): string {
  const { threshold, used, limit, period, at } = crossing;
  return JSON.stringify({ type: "usage.threshold", threshold, used, limit, period, at: at.toISOString() });
}

export function testEventBody(at: Date): string {
  return JSON.stringify({ type: "webhook.test", at: at.toISOString() });
}

function newEventId(): string {
  return `evt_${randomBytes(16).toString("base64url")}`;
}

/**
 * Publishes the threshold event for this user, month and threshold, once: the delivery row's unique deduplication id
 * admits one event per (user, month, threshold) however many calls race past the threshold, and QStash's
 * `Upstash-Deduplication-Id` (the same id) makes a re-publish of that event, after a lost answer, deliver nothing
 * twice. Without a webhook URL nothing is published.
 */
export async function publishThresholdEvent(crossing: ThresholdCrossing, deps?: WebhookDeps): Promise<PublishOutcome> {
  const deduplicationId = thresholdDeduplicationId(crossing);
  try {
    deps ??= appWebhookDeps();
    const endpoint = await deps.db.webhookEndpoint.findUnique({
      where: { userId: crossing.userId },
      select: { url: true, secret: true },
    });
    if (!endpoint) return { status: "no_endpoint" };
    const existing = await deps.db.webhookDelivery.findUnique({
      where: { deduplicationId },
      select: { id: true, status: true },
    });
    if (existing)
      return { status: "already_sent", deliveryId: existing.id, deliveryStatus: existing.status as DeliveryStatus };
    let delivery;
    try {
      delivery = await deps.db.webhookDelivery.create({
        data: {
          userId: crossing.userId,
          eventId: newEventId(),
          type: "usage.threshold",
          threshold: crossing.threshold,
          period: crossing.period,
          deduplicationId,
          url: endpoint.url,
          body: thresholdEventBody(crossing),
        },
        select: deliveryForPublish,
      });
    } catch (error) {
      // Another call crossed the same threshold between our read and this insert, and its row won.
      if ((error as { code?: string }).code !== "P2002") throw error;
      const winner = await deps.db.webhookDelivery.findUniqueOrThrow({
        where: { deduplicationId },
        select: { id: true, status: true },
      });
      return { status: "already_sent", deliveryId: winner.id, deliveryStatus: winner.status as DeliveryStatus };
    }
    return await publishDelivery(deps, delivery, endpoint.secret);
  } catch (error) {
    return unrecorded(error, { event: "webhook.threshold_unrecorded", deduplicationId });
  }
}

/** A `webhook.test` event to the user's endpoint, recorded and reported like any other. */
export async function sendTestEvent(userId: string, deps?: WebhookDeps, at = new Date()): Promise<PublishOutcome> {
  try {
    deps ??= appWebhookDeps();
    const endpoint = await deps.db.webhookEndpoint.findUnique({
      where: { userId },
      select: { url: true, secret: true },
    });
    if (!endpoint) return { status: "no_endpoint" };
    const delivery = await deps.db.webhookDelivery.create({
      data: { userId, eventId: newEventId(), type: "webhook.test", url: endpoint.url, body: testEventBody(at) },
      select: deliveryForPublish,
    });
    return await publishDelivery(deps, delivery, endpoint.secret);
  } catch (error) {
    return unrecorded(error, { event: "webhook.test_unrecorded", userId });
  }
}

/**
 * Threshold events that never reached QStash (it was down, or the process died between the insert and the
 * publish), published again with the same event id, body and deduplication id: if an earlier attempt did reach
 * QStash after all, QStash answers with that message instead of delivering twice. Meant for the hourly sync, which
 * already runs with QStash at hand. Only events of the current and previous month qualify.
 */
export async function republishPendingThresholdEvents(
  deps: WebhookDeps,
  { olderThanMs = 60_000, limit = 200, now = new Date() } = {},
): Promise<{ attempted: number; queued: number }> {
  const pending = await deps.db.webhookDelivery.findMany({
    where: {
      type: "usage.threshold",
      OR: [{ status: "failed_to_queue" }, { status: "queued", messageId: null }],
      createdAt: { lt: new Date(now.getTime() - olderThanMs), gt: new Date(now.getTime() - 40 * 86_400_000) },
    },
    select: { ...deliveryForPublish, user: { select: { webhookEndpoint: { select: { secret: true, url: true } } } } },
    orderBy: { createdAt: "asc" },
    take: limit,
  });
  let queued = 0;
  for (const { user, ...delivery } of pending) {
    const endpoint = user.webhookEndpoint;
    if (!endpoint) continue;
    const outcome = await publishDelivery(deps, { ...delivery, url: endpoint.url }, endpoint.secret);
    // QStash still not taking them: each further try would wait out its own deadline inside the sync's request
    // (200 × 2 s). The rest wait for the next run.
    if (outcome.status === "failed_to_queue") break;
    queued++;
  }
  return { attempted: pending.length, queued };
}

function unrecorded(error: unknown, context: Record<string, string>): PublishOutcome {
  const message = firstLine(error);
  console.error(JSON.stringify({ ...context, error: message }));
  return { status: "failed_to_queue", deliveryId: null, error: message };
}

import { randomBytes } from "node:crypto";
import type { Client } from "@upstash/qstash";
import { type Db, getDb } from "~/utils/db.server";
import { WEBHOOK_STATUS_ROUTE_PATH } from "~/utils/endpoints";
import { getEnv } from "~/utils/env.server";
import { getQstash } from "~/utils/qstash.server";
import type { DeliveryStatus } from "./webhook-deliveries.server";
import { EVENT_ID_HEADER, SIGNATURE_HEADER, signWebhookBody } from "./webhook-signature.server";

/**
 * Publishing usage alerts through QStash. The quota path calls `publishThresholdEvent` once when a call crosses 80 %
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

export interface WebhookDeps {
  db: Db;
  qstash: Pick<Client, "publish">;
  /** The app's public URL: QStash calls back to `appUrl + WEBHOOK_STATUS_ROUTE_PATH`. */
  appUrl: string;
  /** How long a publish may wait for QStash before it is recorded as failed to queue. */
  publishDeadlineMs?: number;
}

/** The app's own clients; tests and scripts pass theirs. */
export function appWebhookDeps(): WebhookDeps {
  return { db: getDb(), qstash: getQstash(), appUrl: getEnv().APP_URL };
}

export type PublishOutcome =
  | { status: "queued"; deliveryId: string; eventId: string; messageId: string; deduplicated: boolean }
  /** The user has no webhook URL: nothing was published or recorded. */
  | { status: "no_endpoint" }
  /** This threshold was already published for this user and month; nothing was sent again. */
  | { status: "already_sent"; deliveryId: string; deliveryStatus: DeliveryStatus }
  /** QStash (or Postgres) could not take the event in time; recorded when Postgres allowed, re-publishable. */
  | { status: "failed_to_queue"; deliveryId: string | null; error: string };

/**
 * QStash retries reuse the headers of the publish, so every retry carries the signature made now. Receivers reject a
 * `t` older than 5 minutes (docs/webhooks.md), so the retries must land inside that window: 4 retries 5, 10, 20 and
 * 40 s apart, each attempt given at most 15 s, end within about 2.5 minutes of publishing. A receiver that stays
 * down longer gets a "failed" row and the customer sees it, rather than late events its own check would refuse.
 */
export const WEBHOOK_RETRIES = 4;
export const WEBHOOK_RETRY_DELAY = "min(40000, 5000 * pow(2, retried))";
export const WEBHOOK_TIMEOUT_SECONDS = 15;
/** An API call waits at most this long for QStash on the one call a month that crosses a threshold. */
export const DEFAULT_PUBLISH_DEADLINE_MS = 2000;

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
    if (outcome.status === "queued") queued++;
  }
  return { attempted: pending.length, queued };
}

const deliveryForPublish = { id: true, eventId: true, url: true, body: true, deduplicationId: true } as const;

interface DeliveryToPublish {
  id: string;
  eventId: string;
  url: string;
  body: string;
  deduplicationId: string | null;
}

async function publishDelivery(
  deps: WebhookDeps,
  delivery: DeliveryToPublish,
  secret: string,
): Promise<PublishOutcome> {
  const callback = `${deps.appUrl}${WEBHOOK_STATUS_ROUTE_PATH}?event=${encodeURIComponent(delivery.eventId)}`;
  // `publish` with the body as a string, not `publishJSON`: publishJSON JSON.stringify()s whatever it is given, so
  // the bytes QStash delivers would be a second serialisation of the event rather than the exact string we signed.
  // The signature covers raw bytes; one different space or escape and every receiver rejects the event.
  const publishing = deps.qstash.publish({
    url: delivery.url,
    body: delivery.body,
    headers: {
      "Content-Type": "application/json",
      [SIGNATURE_HEADER]: signWebhookBody(secret, delivery.body),
      [EVENT_ID_HEADER]: delivery.eventId,
    },
    deduplicationId: delivery.deduplicationId ?? undefined,
    retries: WEBHOOK_RETRIES,
    retryDelay: WEBHOOK_RETRY_DELAY,
    timeout: WEBHOOK_TIMEOUT_SECONDS,
    callback,
    failureCallback: `${callback}&outcome=failure`,
    label: "webhook",
  });
  const deadlineMs = deps.publishDeadlineMs ?? DEFAULT_PUBLISH_DEADLINE_MS;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<"deadline">((resolve) => {
    timer = setTimeout(() => resolve("deadline"), deadlineMs);
  });
  try {
    const answer = await Promise.race([publishing, deadline]);
    if (answer === "deadline") {
      // The publish may still land (the SDK keeps trying); if it does, note its message id. Its callbacks find the
      // row by event id either way, and a re-publish is deduplicated.
      publishing
        .then(({ messageId }) => noteQueued(deps.db, delivery.id, messageId, ["failed_to_queue"]))
        .catch(() => {});
      return await noteFailedToQueue(deps.db, delivery.id, `QStash did not answer within ${deadlineMs} ms`);
    }
    await noteQueued(deps.db, delivery.id, answer.messageId, ["queued", "failed_to_queue"]);
    return {
      status: "queued",
      deliveryId: delivery.id,
      eventId: delivery.eventId,
      messageId: answer.messageId,
      deduplicated: "deduplicated" in answer && answer.deduplicated === true,
    };
  } catch (error) {
    return await noteFailedToQueue(deps.db, delivery.id, `QStash refused the event: ${firstLine(error)}`);
  } finally {
    clearTimeout(timer);
  }
}

async function noteQueued(db: Db, id: string, messageId: string, from: DeliveryStatus[]): Promise<void> {
  // A callback may have arrived first and settled the row; only an open row becomes "queued".
  await db.webhookDelivery.updateMany({ where: { id, status: { in: from } }, data: { status: "queued", messageId } });
}

async function noteFailedToQueue(db: Db, id: string, error: string): Promise<PublishOutcome> {
  console.error(JSON.stringify({ event: "webhook.failed_to_queue", deliveryId: id, error }));
  try {
    await db.webhookDelivery.updateMany({
      where: { id, status: { in: ["queued", "failed_to_queue"] }, messageId: null },
      data: { status: "failed_to_queue", error },
    });
  } catch {
    // The row stays "queued" without a message id, which the re-publish also picks up.
  }
  return { status: "failed_to_queue", deliveryId: id, error };
}

function unrecorded(error: unknown, context: Record<string, string>): PublishOutcome {
  const message = firstLine(error);
  console.error(JSON.stringify({ ...context, error: message }));
  return { status: "failed_to_queue", deliveryId: null, error: message };
}

function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error)
    .split("\n")[0]
    .slice(0, 300);
}

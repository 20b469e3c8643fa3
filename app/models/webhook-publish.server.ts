import type { Client } from "@upstash/qstash";
import { type Db, getDb } from "~/utils/db.server";
import { WEBHOOK_STATUS_ROUTE_PATH } from "~/utils/endpoints";
import { getEnv } from "~/utils/env.server";
import { getQstash } from "~/utils/qstash.server";
import type { DeliveryStatus } from "./webhook-deliveries.server";
import { EVENT_ID_HEADER, SIGNATURE_HEADER, signWebhookBody } from "./webhook-signature.server";

/**
 * Hands one recorded event to QStash, signed, with a deadline, and notes on its delivery row what came of it. What
 * events exist and when they are sent is webhook-events.server.ts's business.
 */
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

export const deliveryForPublish = { id: true, eventId: true, url: true, body: true, deduplicationId: true } as const;

export interface DeliveryToPublish {
  id: string;
  eventId: string;
  url: string;
  body: string;
  deduplicationId: string | null;
}

export async function publishDelivery(
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

export function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error)
    .split("\n")[0]
    .slice(0, 300);
}

/** How long account deletion waits for QStash to cancel an account's waiting events, all of them together. */
export const CANCEL_DEADLINE_MS = 3000;

/**
 * Cancels in QStash every event of the user's that may still be on its way (queued, or between retries), so that
 * once an account is deleted its receiver hears nothing more of it. Best effort, within one deadline: QStash
 * answers 404 for a message it already finished, and an event that could not be cancelled stops by itself within
 * the ~2.5 minutes its retries last. Returns how many QStash confirmed cancelled.
 */
export async function cancelQueuedDeliveries(
  deps: { db: Db; qstash: Pick<Client, "messages"> },
  userId: string,
  deadlineMs = CANCEL_DEADLINE_MS,
): Promise<number> {
  const queued = await deps.db.webhookDelivery.findMany({
    where: { userId, status: "queued", messageId: { not: null } },
    select: { messageId: true },
  });
  if (queued.length === 0) return 0;
  const cancelling = Promise.allSettled(queued.map(({ messageId }) => deps.qstash.messages.cancel(messageId!)));
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<"deadline">((resolve) => {
    timer = setTimeout(() => resolve("deadline"), deadlineMs);
  });
  try {
    const settled = await Promise.race([cancelling, deadline]);
    if (settled === "deadline") return 0;
    return settled.filter((result) => result.status === "fulfilled").length;
  } finally {
    clearTimeout(timer);
  }
}

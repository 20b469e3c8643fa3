import type { Db } from "~/utils/db.server";

/**
 * The delivery log: one row per event, moved along by QStash's callbacks. `queued` until an answer settles it;
 * `failed_to_queue` when QStash itself could not be reached in time (the event can be re-published, see
 * webhook-events.server.ts); `delivered` and `failed` are final.
 */
export type DeliveryStatus = "queued" | "delivered" | "failed" | "failed_to_queue";

const OPEN_STATUSES: DeliveryStatus[] = ["queued", "failed_to_queue"];
// What the receiver answered is the customer's own text shown back to them; a bound keeps a chatty server's error
// page out of our table.
const MAX_ANSWER_EXCERPT = 300;

export interface DeliveryReport {
  /** From the callback URL we published (signed with it), when present. */
  eventId?: string;
  /** QStash's id of the message the callback is about (`sourceMessageId`). */
  messageId: string;
  /** The receiver's HTTP status; 0 when it gave no answer (refused, timed out). */
  httpStatus: number;
  /** Retries made before this attempt (`retried ?? 0`), and how many QStash would make. */
  retried: number;
  maxRetries: number;
  /** From Upstash-Failure-Callback: QStash has given up on the message. */
  finalFailure: boolean;
  /** A 489 with `Upstash-NonRetryable-Error: true`: QStash does not retry it. */
  nonRetryable: boolean;
  /** The start of the receiver's answer, decoded. */
  answer?: string;
}

export type RecordResult = { recorded: false } | { recorded: true; deliveryId: string; status: DeliveryStatus };

export function statusAfter(report: DeliveryReport): DeliveryStatus {
  if (report.httpStatus >= 200 && report.httpStatus < 300) return "delivered";
  if (report.finalFailure || report.nonRetryable || report.retried >= report.maxRetries) return "failed";
  return "queued";
}

/**
 * Applies one callback. QStash reports every attempt, possibly out of order and more than once (callbacks are
 * messages too, delivered at least once), so the updates are conditional: a final status is never undone, and an
 * attempt older than the one already recorded changes nothing. Unknown events and messages are not ours to record.
 */
export async function recordDeliveryReport(db: Db, report: DeliveryReport, now = new Date()): Promise<RecordResult> {
  const delivery = await db.webhookDelivery.findFirst({
    where: report.eventId ? { eventId: report.eventId } : { messageId: report.messageId },
    select: { id: true },
  });
  if (!delivery) return { recorded: false };
  const status = statusAfter(report);
  const attempts = report.retried + 1;
  const outcome = {
    // A publish whose answer we never got (past its deadline) is known from here on by the message QStash made.
    messageId: report.messageId,
    lastHttpStatus: report.httpStatus > 0 ? report.httpStatus : undefined,
    error: status === "delivered" ? null : describeFailure(report),
  };
  if (status === "queued") {
    await db.webhookDelivery.updateMany({
      where: { id: delivery.id, status: { in: OPEN_STATUSES }, attempts: { lt: attempts } },
      data: { ...outcome, status, attempts },
    });
  } else {
    await db.webhookDelivery.updateMany({
      where: { id: delivery.id, status: { in: OPEN_STATUSES } },
      data: { ...outcome, status, attempts, deliveredAt: status === "delivered" ? now : undefined },
    });
  }
  const current = await db.webhookDelivery.findUniqueOrThrow({ where: { id: delivery.id }, select: { status: true } });
  return { recorded: true, deliveryId: delivery.id, status: current.status as DeliveryStatus };
}

function describeFailure(report: DeliveryReport): string {
  const said = report.answer ? `: ${report.answer.slice(0, MAX_ANSWER_EXCERPT)}` : "";
  return report.httpStatus === 0 ? "No answer (connection failed or timed out)" : `HTTP ${report.httpStatus}${said}`;
}

export interface DeliverySummary {
  id: string;
  eventId: string;
  type: string;
  threshold: number | null;
  period: string | null;
  status: DeliveryStatus;
  lastHttpStatus: number | null;
  attempts: number;
  error: string | null;
  createdAt: Date;
  deliveredAt: Date | null;
}

/** The user's latest deliveries, newest first, for the settings page. */
export async function listRecentDeliveries(db: Db, userId: string, take = 20): Promise<DeliverySummary[]> {
  const rows = await db.webhookDelivery.findMany({
    where: { userId },
    select: {
      id: true,
      eventId: true,
      type: true,
      threshold: true,
      period: true,
      status: true,
      lastHttpStatus: true,
      attempts: true,
      error: true,
      createdAt: true,
      deliveredAt: true,
    },
    orderBy: [{ createdAt: "desc" }, { id: "desc" }],
    take,
  });
  return rows.map((row) => ({ ...row, status: row.status as DeliveryStatus }));
}

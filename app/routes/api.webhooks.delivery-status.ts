import type { ActionFunctionArgs } from "@remix-run/node";
import { z } from "zod";
import { methodNotAllowed, problem } from "~/api/problem.server";
import { acceptQstashDelivery } from "~/api/qstash-delivery.server";
import { QSTASH_CALLBACK_BODY_LIMIT_BYTES } from "~/utils/request-guard.server";
import { type DeliveryReport, recordDeliveryReport } from "~/models/webhook-deliveries.server";
import { getDb } from "~/utils/db.server";
import { getEnv } from "~/utils/env.server";
import { getRedis } from "~/utils/redis.server";
import { withSecurityHeaders } from "~/utils/resource-route.server";

// QStash's callback body (https://upstash.com/docs/qstash/features/callbacks); only what the log needs is checked,
// the rest (sourceHeader, sourceBody, url …) may come and go. `retried` is absent while it is 0.
const callbackSchema = z.object({
  status: z.number().int().min(0).max(999),
  retried: z.number().int().min(0).optional(),
  maxRetries: z.number().int().min(0),
  sourceMessageId: z.string().min(1).max(200),
  header: z.record(z.string(), z.array(z.string())).optional(),
  body: z.string().optional(),
});

/**
 * `POST /api/webhooks/delivery-status` — QStash's Upstash-Callback and Upstash-Failure-Callback for webhook events
 * (webhook-events.server.ts publishes them with `?event=<id>`, and `&outcome=failure` for the latter). Verified like
 * the cron route: the signature covers this exact URL, query included, and the raw body; each token is used once.
 */
export const action = withSecurityHeaders(async ({ request }: ActionFunctionArgs) => {
  if (request.method !== "POST") return methodNotAllowed(["POST"]);
  const requested = new URL(request.url);
  // APP_URL, not the Host header: QStash signed the public URL, whatever proxies rewrote on the way in.
  const url = getEnv().APP_URL + requested.pathname + requested.search;
  const delivery = await acceptQstashDelivery(request, {
    url,
    redis: getRedis(),
    logPrefix: "webhook.callback",
    bodyLimitBytes: QSTASH_CALLBACK_BODY_LIMIT_BYTES,
    rejectDetail: "This endpoint only accepts callbacks signed by QStash for this URL and body.",
    unavailable,
  });
  if (delivery instanceof Response) return delivery;
  const { body, messageId } = delivery;

  let report: DeliveryReport;
  try {
    report = toReport(callbackSchema.parse(JSON.parse(body)), requested.searchParams);
  } catch {
    return problem({
      status: 400,
      type: "invalid-body",
      title: "Invalid callback body",
      detail: "Expected QStash's callback JSON with status, maxRetries and sourceMessageId.",
    });
  }

  try {
    const result = await recordDeliveryReport(getDb(), report);
    // Unknown ids are acknowledged: a 2xx is the only answer that stops QStash retrying a callback we cannot use.
    return Response.json(result);
  } catch (error) {
    console.error(JSON.stringify({ event: "webhook.callback.error", messageId, error: (error as Error).message }));
    await delivery.release();
    return unavailable();
  }
});

export const loader = withSecurityHeaders(() => methodNotAllowed(["POST"]));

function toReport(callback: z.infer<typeof callbackSchema>, query: URLSearchParams): DeliveryReport {
  const header = (name: string) =>
    Object.entries(callback.header ?? {}).find(([key]) => key.toLowerCase() === name.toLowerCase())?.[1]?.[0];
  const answer = callback.body ? Buffer.from(callback.body, "base64").toString("utf8") : undefined;
  return {
    eventId: query.get("event") ?? undefined,
    messageId: callback.sourceMessageId,
    httpStatus: callback.status,
    retried: callback.retried ?? 0,
    maxRetries: callback.maxRetries,
    finalFailure: query.get("outcome") === "failure",
    nonRetryable: callback.status === 489 && header("Upstash-NonRetryable-Error") === "true",
    answer: answer?.trim() || undefined,
  };
}

function unavailable() {
  return problem(
    {
      status: 503,
      type: "callback-unavailable",
      title: "Callback not recorded",
      detail: "The delivery status could not be recorded; QStash will retry.",
    },
    { "Retry-After": "5" },
  );
}

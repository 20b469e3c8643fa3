import type http from "node:http";
import { HttpError, readBoundedBody } from "../http-error";
import type { Deduplication } from "./deduplication";
import type { DeliveryQueue } from "./delivery";
import { toHeaderLists } from "./header-names";
import { parseDestination, readPublishHeaders } from "./publish-request";
import type { ScheduleBook } from "./schedules";

// QStash's own limit on a message body.
const MAX_BODY_BYTES = 1024 * 1024;

const readBody = (req: http.IncomingMessage) =>
  readBoundedBody(req, MAX_BODY_BYTES, "message body too large (QStash allows 1 MB)");

/**
 * `GET /v2/messages/<id>` (`client.messages.get`): QStash holds a message there only until it is delivered or has
 * failed for good (after that it lives on in logs and the DLQ), so a finished one is a 404 as it is on QStash.
 */
function messageView(queue: DeliveryQueue, messageId: string) {
  const message = queue.message(messageId);
  if (!message || message.state === "delivered" || message.state === "failed" || message.state === "cancelled") {
    throw new HttpError(404, `message ${messageId} not found`);
  }
  return {
    messageId: message.messageId,
    url: message.destination,
    method: message.method,
    header: toHeaderLists(Object.entries(message.headers)),
    body: message.body,
    maxRetries: message.maxRetries,
    notBefore: Date.parse(message.notBefore),
    createdAt: Date.parse(message.createdAt),
    ...(message.callback && { callback: message.callback }),
    ...(message.failureCallback && { failureCallback: message.failureCallback }),
    ...(message.retryDelayExpression && { retryDelayExpression: message.retryDelayExpression }),
    ...(message.scheduleId && { scheduleId: message.scheduleId }),
    // `label` is the first label, kept for older clients; `labels` has them all (see @upstash/qstash's Message type).
    ...(message.labels.length > 0 && { label: message.labels[0], labels: message.labels }),
  };
}

/**
 * The routes of QStash's REST API that `@upstash/qstash`'s `Client` calls for publish, messages and schedules, answered with
 * the bodies and statuses QStash gives.
 */
export function createQstashRoutes(parts: {
  token: string;
  queue: DeliveryQueue;
  schedules: ScheduleBook;
  deduplication: Deduplication;
}) {
  const { token, queue, schedules, deduplication } = parts;

  return async function route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const send = (status: number, body?: unknown) => {
      const json = body === undefined ? "" : JSON.stringify(body);
      res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(json) });
      res.end(json);
    };
    const rawUrl = req.url ?? "/";
    if (req.headers.authorization !== `Bearer ${token}`) {
      throw new HttpError(401, "Unauthorized: missing or wrong bearer token");
    }
    const method = req.method ?? "GET";
    if (rawUrl.startsWith("/v2/publish/") && method === "POST") {
      const destination = parseDestination(rawUrl.slice("/v2/publish/".length));
      const request = readPublishHeaders(req);
      if (request.cron) throw new HttpError(400, "use /v2/schedules for messages with a cron");
      const body = await readBody(req);
      const key = deduplication.keyOf(destination, body, request);
      const earlier = deduplication.earlierMessageId(key);
      // "We'll send HTTP 202 Accepted in case of a duplicate message", with the first message's id
      // (https://upstash.com/docs/qstash/features/deduplication).
      if (earlier) return send(202, { messageId: earlier, url: destination, deduplicated: true });
      const { messageId } = queue.enqueue({
        destination,
        body,
        method: request.method,
        headers: request.forwarded,
        retries: request.retries,
        delayMs: request.delayMs,
        notBeforeMs: request.notBeforeMs,
        timeoutMs: request.timeoutMs,
        retryDelay: request.retryDelay,
        callback: request.callback,
        failureCallback: request.failureCallback,
        labels: request.labels,
        // An IPv4 publisher reaches a dual-stack socket as ::ffff:a.b.c.d; QStash reports the plain address.
        callerIp: req.socket.remoteAddress?.replace(/^::ffff:/, ""),
      });
      deduplication.remember(key, messageId);
      return send(201, { messageId, url: destination });
    }
    const path = rawUrl.split("?")[0].replace(/\/+$/, "");
    if (path === "/v2/schedules" && method === "GET") return send(200, schedules.list());
    if (rawUrl.startsWith("/v2/schedules/") && method === "POST") {
      const destination = parseDestination(rawUrl.slice("/v2/schedules/".length));
      return send(200, schedules.upsert(destination, await readBody(req), readPublishHeaders(req)));
    }
    const messageMatch = /^\/v2\/messages\/([^/]+)$/.exec(path);
    if (messageMatch && method === "GET") return send(200, messageView(queue, decodeURIComponent(messageMatch[1])));
    if (messageMatch && method === "DELETE") {
      if (!queue.cancel(decodeURIComponent(messageMatch[1]))) throw new HttpError(404, "message not found");
      return send(200, { cancelled: 1 });
    }
    const scheduleMatch = /^\/v2\/schedules\/([^/]+)(?:\/(pause|resume))?$/.exec(path);
    if (scheduleMatch) {
      const scheduleId = decodeURIComponent(scheduleMatch[1]);
      const action = scheduleMatch[2];
      if (!action && method === "GET") return send(200, schedules.get(scheduleId));
      if (!action && method === "DELETE") {
        schedules.remove(scheduleId);
        return send(200);
      }
      if (action && method === "PATCH") {
        schedules.setPaused(scheduleId, action === "pause");
        return send(200);
      }
    }
    throw new HttpError(404, `${method} ${path} is not implemented by the local QStash stand-in`);
  };
}

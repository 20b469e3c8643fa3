import http from "node:http";
import type { AddressInfo } from "node:net";
import { HttpError } from "./http-error";
import { createDeduplication } from "./qstash/deduplication";
import { createDeliveryQueue, type MessageInfo } from "./qstash/delivery";
import { createQstashRoutes } from "./qstash/http-api";
import { MAX_RETRY_DELAY_MS, qstashBackoff } from "./qstash/retry-policy";
import { createScheduleBook, type ScheduleInfo } from "./qstash/schedules";
import { createDeliverySigner } from "./qstash/signing";

export type { DeliveryAttempt, MessageInfo, MessageState } from "./qstash/delivery";
export type { ScheduleInfo } from "./qstash/schedules";
export { parseDuration } from "./qstash/publish-request";
export { qstashBackoff, quickBackoff } from "./qstash/retry-policy";

/**
 * A local stand-in for the part of QStash's REST API that the app reaches through `@upstash/qstash`'s `Client`:
 * publish (`POST /v2/publish/<url>`), messages (`GET` and `DELETE /v2/messages/<id>`) and schedules (`/v2/schedules`). It delivers
 * messages the way QStash does — the original body and forwarded headers, an `Upstash-Signature` JWT that the SDK's
 * `Receiver` verifies, retries under the same message id spaced as QStash spaces them, signed callbacks and failure
 * callbacks — so the cron route is exercised locally exactly as in production. Everything lives in memory; schedules are re-created by `npm run dev` at each start.
 *
 * This file only assembles the server; each concern has its module under `dev/qstash/`.
 */
export interface QstashOptions {
  token: string;
  currentSigningKey: string;
  nextSigningKey: string;
  host?: string;
  port?: number;
  /**
   * Wait before retry number `retried + 1`, given the retries already made (0 before the first retry), for a message
   * without `Upstash-Retry-Delay` whose destination's answer named no wait (`Retry-After` …). Default: QStash's
   * documented backoff, `qstashBackoff` (12 s, 2m28s, 30m8s, …); `quickBackoff` (200 ms · 2ⁿ) retries within a second.
   */
  retryDelayMs?: (retried: number) => number;
  /**
   * The longest the stand-in waits before any retry, whatever set the wait (backoff, `Upstash-Retry-Delay`, or a
   * `Retry-After` in the answer). Default: QStash's own cap, one day. Tests set it low so a route answering
   * `503 Retry-After: 30` is retried at once instead of half a minute later.
   */
  maxRetryDelayMs?: number;
  /** The clock used for signatures and schedules; tests pass a fast one. */
  now?: () => Date;
  log?: (line: string) => void;
}

export interface QstashServer {
  url: string;
  port: number;
  close(): Promise<void>;
  /**
   * Fires every schedule whose cron matches the minute of `at` (once per schedule and minute) and resolves when
   * each fired message has had its first delivery attempt.
   */
  fireDueSchedules(at: Date): Promise<void>;
  messages(): MessageInfo[];
  schedules(): ScheduleInfo[];
  /** Resolves when no message is waiting for (another) delivery attempt. */
  idle(): Promise<void>;
}

export async function startQstash(options: QstashOptions): Promise<QstashServer> {
  const now = options.now ?? (() => new Date());
  const queue = createDeliveryQueue({
    now,
    log: options.log ?? ((line: string) => console.log(`[qstash] ${line}`)),
    retryDelayMs: options.retryDelayMs ?? qstashBackoff,
    maxRetryDelayMs: Math.min(options.maxRetryDelayMs ?? MAX_RETRY_DELAY_MS, MAX_RETRY_DELAY_MS),
    signDelivery: createDeliverySigner(options.currentSigningKey, now),
  });
  const schedules = createScheduleBook(queue, now);
  const route = createQstashRoutes({
    token: options.token,
    queue,
    schedules,
    deduplication: createDeduplication(now),
  });

  const server = http.createServer((req, res) => {
    route(req, res).catch((error: unknown) => {
      const status = error instanceof HttpError ? error.status : 500;
      const json = JSON.stringify({ error: (error as Error).message });
      if (!res.headersSent) res.writeHead(status, { "Content-Type": "application/json" });
      res.end(json);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host ?? "127.0.0.1";

  return {
    url: `http://${host}:${port}`,
    port,
    fireDueSchedules: schedules.fireDueSchedules,
    messages: queue.messages,
    schedules: schedules.list,
    idle: queue.idle,
    async close() {
      schedules.close();
      queue.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

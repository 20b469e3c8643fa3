import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { CronExpressionParser, type CronExpression } from "cron-parser";
import { SignJWT } from "jose";

/**
 * A local stand-in for the part of QStash's REST API that the app reaches through `@upstash/qstash`'s `Client`:
 * publish (`POST /v2/publish/<url>`) and schedules (`/v2/schedules`). It delivers messages the way QStash does —
 * the original body and forwarded headers, an `Upstash-Signature` JWT that the SDK's `Receiver` verifies, retries
 * with backoff on non-2xx under the same message id — so the cron route is exercised locally exactly as in
 * production. Everything lives in memory; schedules are re-created by `npm run dev` at each start.
 */
export interface QstashOptions {
  token: string;
  currentSigningKey: string;
  nextSigningKey: string;
  host?: string;
  port?: number;
  /** Wait before retry number `retried + 1`, given the retries already made (0 before the first retry). */
  retryDelayMs?: (retried: number) => number;
  /** The clock used for signatures and schedules; tests pass a fast one. */
  now?: () => Date;
  log?: (line: string) => void;
}

export type MessageState = "scheduled" | "delivering" | "retrying" | "delivered" | "failed" | "cancelled";

export interface DeliveryAttempt {
  retried: number;
  at: string;
  status?: number;
  error?: string;
  durationMs: number;
}

export interface MessageInfo {
  messageId: string;
  destination: string;
  method: string;
  body: string;
  headers: Record<string, string>;
  maxRetries: number;
  notBefore: string;
  scheduleId?: string;
  state: MessageState;
  attempts: DeliveryAttempt[];
}

export interface ScheduleInfo {
  scheduleId: string;
  cron: string;
  createdAt: number;
  destination: string;
  method: string;
  header: Record<string, string[]>;
  body: string;
  retries: number;
  delay: number;
  isPaused: boolean;
  lastScheduleTime?: number;
  nextScheduleTime?: number;
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

// QStash's own defaults: 3 retries, and a signature valid for five minutes.
const DEFAULT_RETRIES = 3;
const SIGNATURE_LIFETIME_SECONDS = 5 * 60;
// Production QStash keeps deduplication ids for a while; ten minutes covers any local retry loop.
const DEDUPLICATION_WINDOW_MS = 10 * 60 * 1000;
const DEFAULT_DELIVERY_TIMEOUT_MS = 60_000;
const MAX_BODY_BYTES = 1024 * 1024;

// Features that would change what the app observes if silently ignored, so a request using them fails loudly.
const UNSUPPORTED_HEADERS: Record<string, string> = {
  "upstash-callback": "callbacks",
  "upstash-failure-callback": "failure callbacks",
  "upstash-flow-control-key": "flow control",
  "upstash-queue-name": "queues",
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

interface StoredMessage {
  messageId: string;
  destination: string;
  method: string;
  body: Buffer;
  headers: Record<string, string>;
  maxRetries: number;
  notBefore: number;
  timeoutMs: number;
  scheduleId?: string;
  state: MessageState;
  attempts: DeliveryAttempt[];
  firstAttempt: Promise<void>;
  markFirstAttempt: () => void;
}

interface StoredSchedule extends Omit<ScheduleInfo, "body"> {
  body: Buffer;
  expression: CronExpression;
  timeoutMs: number;
  lastFiredMinute?: number;
}

function newId(prefix: string): string {
  return `${prefix}_${randomBytes(18).toString("base64url")}`;
}

/** Go-style durations as QStash accepts them in `Upstash-Delay` / `Upstash-Timeout`: `30s`, `5m`, `1h30m`, `2d`. */
export function parseDuration(value: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const parts = [...trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
  if (parts.length === 0 || parts.map((part) => part[0]).join("") !== trimmed) {
    throw new HttpError(400, `invalid duration: ${value}`);
  }
  return parts.reduce((total, [, amount, unit]) => total + Number(amount) * units[unit], 0);
}

/** QStash crons are five fields in UTC, optionally prefixed with `CRON_TZ=<zone>`. */
function parseCron(cron: string, now: Date): CronExpression {
  const match = /^(?:CRON_TZ=(\S+)\s+)?(.+)$/.exec(cron.trim());
  const fields = match?.[2].trim().split(/\s+/) ?? [];
  if (!match || fields.length !== 5) throw new HttpError(400, `invalid cron expression (need 5 fields): ${cron}`);
  try {
    return CronExpressionParser.parse(fields.join(" "), { tz: match[1] ?? "UTC", currentDate: now });
  } catch (error) {
    throw new HttpError(400, `invalid cron expression ${cron}: ${(error as Error).message}`);
  }
}

function nextOccurrence(expression: CronExpression, after: Date): number {
  expression.reset(after);
  return expression.next().getTime();
}

function floorToMinute(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 60_000) * 60_000);
}

function parseDestination(raw: string): string {
  const decoded = /^https?%3A/i.test(raw) ? decodeURIComponent(raw) : raw;
  let url: URL;
  try {
    url = new URL(decoded);
  } catch {
    throw new HttpError(
      400,
      `destination must be an absolute http(s) URL; URL groups are not supported locally: ${raw}`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new HttpError(400, `destination must be an http(s) URL: ${raw}`);
  }
  return decoded;
}

/** The publish-time headers QStash acts on, and the ones it forwards to the destination. */
function readPublishHeaders(req: http.IncomingMessage) {
  const forwarded: Record<string, string> = {};
  const single = (name: string) => {
    const value = req.headers[name];
    return Array.isArray(value) ? value.join(", ") : value;
  };
  for (const [name, feature] of Object.entries(UNSUPPORTED_HEADERS)) {
    if (single(name) !== undefined)
      throw new HttpError(400, `${feature} are not supported by the local QStash stand-in`);
  }
  for (const name of Object.keys(req.headers)) {
    const value = single(name);
    if (value === undefined) continue;
    if (name.startsWith("upstash-forward-")) forwarded[name.slice("upstash-forward-".length)] = value;
    else if (name === "content-type") forwarded[name] = value;
  }
  const retriesHeader = single("upstash-retries");
  const retries = retriesHeader === undefined ? DEFAULT_RETRIES : Number(retriesHeader);
  if (!Number.isInteger(retries) || retries < 0) throw new HttpError(400, `invalid Upstash-Retries: ${retriesHeader}`);
  const notBeforeHeader = single("upstash-not-before");
  const delayHeader = single("upstash-delay");
  const timeoutHeader = single("upstash-timeout");
  return {
    forwarded,
    method: (single("upstash-method") ?? "POST").toUpperCase(),
    retries,
    delayMs: delayHeader ? parseDuration(delayHeader) : 0,
    notBeforeMs: notBeforeHeader ? Number(notBeforeHeader) * 1000 : undefined,
    timeoutMs: timeoutHeader ? parseDuration(timeoutHeader) : DEFAULT_DELIVERY_TIMEOUT_MS,
    cron: single("upstash-cron"),
    scheduleId: single("upstash-schedule-id"),
    deduplicationId: single("upstash-deduplication-id"),
    contentBasedDeduplication: single("upstash-content-based-deduplication") === "true",
  };
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, "message body too large (QStash allows 1 MB)");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export async function startQstash(options: QstashOptions): Promise<QstashServer> {
  const now = options.now ?? (() => new Date());
  const log = options.log ?? ((line: string) => console.log(`[qstash] ${line}`));
  const retryDelayMs = options.retryDelayMs ?? ((retried: number) => 200 * 2 ** retried);
  const signingKey = new TextEncoder().encode(options.currentSigningKey);

  const messages = new Map<string, StoredMessage>();
  const schedules = new Map<string, StoredSchedule>();
  const deduplication = new Map<string, { messageId: string; expiresAt: number }>();
  const timers = new Set<NodeJS.Timeout>();
  const inFlight = new Set<AbortController>();
  const idleWaiters: Array<() => void> = [];
  let closed = false;

  const later = (ms: number, run: () => void) => {
    const timer = setTimeout(
      () => {
        timers.delete(timer);
        run();
      },
      Math.max(0, ms),
    );
    timers.add(timer);
  };

  const pending = () =>
    [...messages.values()].some((m) => m.state === "scheduled" || m.state === "delivering" || m.state === "retrying");
  const notifyIfIdle = () => {
    if (pending()) return;
    for (const resolve of idleWaiters.splice(0)) resolve();
  };

  async function sign(destination: string, body: Buffer): Promise<string> {
    const issuedAt = Math.floor(now().getTime() / 1000);
    // Standard (padded) base64url, as QStash sends it; the SDK's Receiver strips padding before comparing.
    const bodyHash = createHash("sha256").update(body).digest("base64").replace(/\+/g, "-").replace(/\//g, "_");
    return new SignJWT({ body: bodyHash })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setIssuer("Upstash")
      .setSubject(destination)
      .setIssuedAt(issuedAt)
      .setNotBefore(issuedAt)
      .setExpirationTime(issuedAt + SIGNATURE_LIFETIME_SECONDS)
      .setJti(newId("jwt"))
      .sign(signingKey);
  }

  // One attempt at a time per message, so a destination never sees retry n+1 before retry n has finished.
  async function attempt(message: StoredMessage): Promise<void> {
    if (closed) return;
    const retried = message.attempts.length;
    message.state = "delivering";
    const headers: Record<string, string> = {
      ...message.headers,
      "upstash-message-id": message.messageId,
      "upstash-retried": String(retried),
      "upstash-signature": await sign(message.destination, message.body),
      "user-agent": "Upstash-QStash",
    };
    if (message.scheduleId) headers["upstash-schedule-id"] = message.scheduleId;

    const controller = new AbortController();
    inFlight.add(controller);
    const timeout = setTimeout(
      () => controller.abort(new Error(`timed out after ${message.timeoutMs}ms`)),
      message.timeoutMs,
    );
    const started = Date.now();
    const record: DeliveryAttempt = { retried, at: now().toISOString(), durationMs: 0 };
    let detail = "";
    try {
      const response = await fetch(message.destination, {
        method: message.method,
        headers,
        body: message.method === "GET" || message.method === "HEAD" ? undefined : new Uint8Array(message.body),
        signal: controller.signal,
      });
      record.status = response.status;
      const text = await response.text().catch(() => "");
      if (!response.ok && text) detail = ` ${JSON.stringify(text.slice(0, 160))}`;
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      record.error = cause?.code ?? cause?.message ?? (error as Error).message;
    } finally {
      clearTimeout(timeout);
      inFlight.delete(controller);
    }
    record.durationMs = Date.now() - started;
    message.attempts.push(record);
    if (closed) return;

    const outcome = record.status !== undefined ? `${record.status}${detail}` : `error ${record.error}`;
    const head = `${message.messageId} ${message.method} ${message.destination} retried=${retried}${
      message.scheduleId ? ` schedule=${message.scheduleId}` : ""
    } → ${outcome} in ${record.durationMs}ms`;
    if (record.status !== undefined && record.status >= 200 && record.status < 300) {
      message.state = "delivered";
      log(head);
    } else if (retried < message.maxRetries) {
      const wait = retryDelayMs(retried);
      message.state = "retrying";
      log(`${head}; retry ${retried + 1}/${message.maxRetries} in ${wait}ms`);
      later(wait, () => void attempt(message));
    } else {
      message.state = "failed";
      log(`${head}; giving up after ${retried + 1} attempt(s)`);
    }
    message.markFirstAttempt();
    notifyIfIdle();
  }

  function enqueue(input: {
    destination: string;
    method: string;
    body: Buffer;
    headers: Record<string, string>;
    retries: number;
    delayMs: number;
    notBeforeMs?: number;
    timeoutMs: number;
    scheduleId?: string;
  }): StoredMessage {
    let markFirstAttempt = () => {};
    const firstAttempt = new Promise<void>((resolve) => (markFirstAttempt = resolve));
    const notBefore = input.notBeforeMs ?? now().getTime() + input.delayMs;
    const message: StoredMessage = {
      messageId: newId("msg"),
      destination: input.destination,
      method: input.method,
      body: input.body,
      headers: input.headers,
      maxRetries: input.retries,
      notBefore,
      timeoutMs: input.timeoutMs,
      scheduleId: input.scheduleId,
      state: "scheduled",
      attempts: [],
      firstAttempt,
      markFirstAttempt,
    };
    messages.set(message.messageId, message);
    later(notBefore - now().getTime(), () => void attempt(message));
    return message;
  }

  function deduplicationKey(destination: string, body: Buffer, publish: ReturnType<typeof readPublishHeaders>) {
    if (publish.deduplicationId) return `id:${publish.deduplicationId}`;
    if (!publish.contentBasedDeduplication) return undefined;
    const hash = createHash("sha256").update(destination).update(JSON.stringify(publish.forwarded)).update(body);
    return `content:${hash.digest("hex")}`;
  }

  function publish(destination: string, body: Buffer, headers: ReturnType<typeof readPublishHeaders>) {
    const key = deduplicationKey(destination, body, headers);
    const current = now().getTime();
    const previous = key ? deduplication.get(key) : undefined;
    if (previous && previous.expiresAt > current) {
      return { messageId: previous.messageId, url: destination, deduplicated: true };
    }
    const message = enqueue({
      destination,
      body,
      method: headers.method,
      headers: headers.forwarded,
      retries: headers.retries,
      delayMs: headers.delayMs,
      notBeforeMs: headers.notBeforeMs,
      timeoutMs: headers.timeoutMs,
    });
    if (key) deduplication.set(key, { messageId: message.messageId, expiresAt: current + DEDUPLICATION_WINDOW_MS });
    return { messageId: message.messageId, url: destination };
  }

  function upsertSchedule(destination: string, body: Buffer, headers: ReturnType<typeof readPublishHeaders>) {
    if (!headers.cron) throw new HttpError(400, "Upstash-Cron header is required");
    const expression = parseCron(headers.cron, now());
    const scheduleId = headers.scheduleId ?? newId("scd");
    const existing = schedules.get(scheduleId);
    const header = Object.fromEntries(Object.entries(headers.forwarded).map(([name, value]) => [name, [value]]));
    schedules.set(scheduleId, {
      scheduleId,
      cron: headers.cron,
      createdAt: existing?.createdAt ?? now().getTime(),
      destination,
      method: headers.method,
      header,
      body,
      retries: headers.retries,
      delay: Math.round(headers.delayMs / 1000),
      isPaused: existing?.isPaused ?? false,
      lastScheduleTime: existing?.lastScheduleTime,
      nextScheduleTime: nextOccurrence(expression, now()),
      expression,
      timeoutMs: headers.timeoutMs,
      lastFiredMinute: existing?.lastFiredMinute,
    });
    return { scheduleId };
  }

  function describeSchedule(schedule: StoredSchedule): ScheduleInfo {
    const { expression, timeoutMs, lastFiredMinute, body, ...visible } = schedule;
    return { ...visible, body: body.toString("utf8") };
  }

  async function fireDueSchedules(at: Date): Promise<void> {
    const minute = floorToMinute(at);
    const fired: StoredMessage[] = [];
    for (const schedule of schedules.values()) {
      if (schedule.isPaused || schedule.lastFiredMinute === minute.getTime()) continue;
      if (!schedule.expression.includesDate(minute)) continue;
      schedule.lastFiredMinute = minute.getTime();
      schedule.lastScheduleTime = at.getTime();
      schedule.nextScheduleTime = nextOccurrence(schedule.expression, minute);
      fired.push(
        enqueue({
          destination: schedule.destination,
          method: schedule.method,
          body: schedule.body,
          headers: Object.fromEntries(
            Object.entries(schedule.header).map(([name, values]) => [name, values.join(", ")]),
          ),
          retries: schedule.retries,
          delayMs: schedule.delay * 1000,
          timeoutMs: schedule.timeoutMs,
          scheduleId: schedule.scheduleId,
        }),
      );
    }
    await Promise.all(fired.map((message) => message.firstAttempt));
  }

  // Real time: wake at every minute boundary of `now()` and fire what is due, like QStash's scheduler.
  let minuteTimer: NodeJS.Timeout | undefined;
  const scheduleTick = () => {
    const wait = 60_000 - (now().getTime() % 60_000) + 5;
    minuteTimer = setTimeout(() => {
      void fireDueSchedules(now());
      scheduleTick();
    }, wait);
    minuteTimer.unref();
  };
  scheduleTick();

  async function route(req: http.IncomingMessage, res: http.ServerResponse) {
    const send = (status: number, body?: unknown) => {
      const json = body === undefined ? "" : JSON.stringify(body);
      res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(json) });
      res.end(json);
    };
    const rawUrl = req.url ?? "/";
    if (req.headers.authorization !== `Bearer ${options.token}`) {
      throw new HttpError(401, "Unauthorized: missing or wrong bearer token");
    }
    const method = req.method ?? "GET";
    if (rawUrl.startsWith("/v2/publish/") && method === "POST") {
      const destination = parseDestination(rawUrl.slice("/v2/publish/".length));
      const headers = readPublishHeaders(req);
      if (headers.cron) throw new HttpError(400, "use /v2/schedules for messages with a cron");
      return send(201, publish(destination, await readBody(req), headers));
    }
    const path = rawUrl.split("?")[0].replace(/\/+$/, "");
    if (path === "/v2/schedules" && method === "GET") {
      return send(200, [...schedules.values()].map(describeSchedule));
    }
    if (rawUrl.startsWith("/v2/schedules/") && method === "POST") {
      const destination = parseDestination(rawUrl.slice("/v2/schedules/".length));
      return send(200, upsertSchedule(destination, await readBody(req), readPublishHeaders(req)));
    }
    const scheduleMatch = /^\/v2\/schedules\/([^/]+)(?:\/(pause|resume))?$/.exec(path);
    if (scheduleMatch) {
      const scheduleId = decodeURIComponent(scheduleMatch[1]);
      const schedule = schedules.get(scheduleId);
      if (!schedule) throw new HttpError(404, `schedule ${scheduleId} not found`);
      const action = scheduleMatch[2];
      if (!action && method === "GET") return send(200, describeSchedule(schedule));
      if (!action && method === "DELETE") {
        schedules.delete(scheduleId);
        return send(200);
      }
      if (action && method === "PATCH") {
        schedule.isPaused = action === "pause";
        return send(200);
      }
    }
    throw new HttpError(404, `${method} ${path} is not implemented by the local QStash stand-in`);
  }

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
    fireDueSchedules,
    messages: () =>
      [...messages.values()].map((m) => ({
        messageId: m.messageId,
        destination: m.destination,
        method: m.method,
        body: m.body.toString("utf8"),
        headers: { ...m.headers },
        maxRetries: m.maxRetries,
        notBefore: new Date(m.notBefore).toISOString(),
        scheduleId: m.scheduleId,
        state: m.state,
        attempts: m.attempts.map((a) => ({ ...a })),
      })),
    schedules: () => [...schedules.values()].map(describeSchedule),
    idle: () =>
      new Promise<void>((resolve) => {
        idleWaiters.push(resolve);
        notifyIfIdle();
      }),
    async close() {
      closed = true;
      clearTimeout(minuteTimer);
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const controller of inFlight) controller.abort(new Error("QStash stand-in closed"));
      for (const message of messages.values()) {
        if (message.state !== "delivered" && message.state !== "failed") message.state = "cancelled";
        message.markFirstAttempt();
      }
      for (const resolve of idleWaiters.splice(0)) resolve();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

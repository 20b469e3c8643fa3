import type http from "node:http";
import { HttpError } from "../http-error";
import { compileRetryDelay } from "./retry-delay-expression";

// QStash's default retry count; the local delivery timeout is documented in docs/local-stack.md.
const DEFAULT_RETRIES = 3;
const DEFAULT_DELIVERY_TIMEOUT_MS = 60_000;

// Features that would change what the app observes if silently ignored, so a request using them fails loudly.
const UNSUPPORTED_HEADERS: Record<string, string> = {
  "upstash-flow-control-key": "flow control",
  "upstash-queue-name": "queues",
};

export type PublishRequest = ReturnType<typeof readPublishHeaders>;

/** Where and how a callback (or failure callback) message is published: QStash treats it as a publish of its own. */
export interface CallbackTarget {
  url: string;
  method: string;
  retries: number;
  delayMs: number;
  timeoutMs: number;
  forwarded: Record<string, string>;
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

/** The destination in a publish or schedule path, which the SDK may send percent-encoded. */
export function parseDestination(raw: string): string {
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

type HeaderReader = (name: string) => string | undefined;

function readRetries(single: HeaderReader, name: string): number {
  const header = single(name);
  const retries = header === undefined ? DEFAULT_RETRIES : Number(header);
  if (!Number.isInteger(retries) || retries < 0) throw new HttpError(400, `invalid ${name}: ${header}`);
  return retries;
}

/**
 * `Upstash-Callback: <url>` (or `Upstash-Failure-Callback`) and the headers that configure its own message, named
 * with that prefix instead of `Upstash-` (https://upstash.com/docs/qstash/features/callbacks#configuring-callbacks).
 */
function readCallback(req: http.IncomingMessage, single: HeaderReader, prefix: string): CallbackTarget | undefined {
  const url = single(prefix);
  if (url === undefined) return undefined;
  const forwarded: Record<string, string> = {};
  const forwardPrefix = `${prefix}-forward-`;
  for (const name of Object.keys(req.headers)) {
    const value = single(name);
    if (value !== undefined && name.startsWith(forwardPrefix)) forwarded[name.slice(forwardPrefix.length)] = value;
  }
  const delay = single(`${prefix}-delay`);
  const timeout = single(`${prefix}-timeout`);
  return {
    url: parseDestination(url),
    method: (single(`${prefix}-method`) ?? "POST").toUpperCase(),
    retries: readRetries(single, `${prefix}-retries`),
    delayMs: delay ? parseDuration(delay) : 0,
    timeoutMs: timeout ? parseDuration(timeout) : DEFAULT_DELIVERY_TIMEOUT_MS,
    forwarded,
  };
}

/** The publish-time headers QStash acts on, and the ones it forwards to the destination. */
export function readPublishHeaders(req: http.IncomingMessage) {
  const forwarded: Record<string, string> = {};
  const single: HeaderReader = (name) => {
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
  const notBeforeHeader = single("upstash-not-before");
  const delayHeader = single("upstash-delay");
  const timeoutHeader = single("upstash-timeout");
  const retryDelayHeader = single("upstash-retry-delay");
  const labelHeader = single("upstash-label");
  return {
    forwarded,
    method: (single("upstash-method") ?? "POST").toUpperCase(),
    retries: readRetries(single, "upstash-retries"),
    delayMs: delayHeader ? parseDuration(delayHeader) : 0,
    notBeforeMs: notBeforeHeader ? Number(notBeforeHeader) * 1000 : undefined,
    timeoutMs: timeoutHeader ? parseDuration(timeoutHeader) : DEFAULT_DELIVERY_TIMEOUT_MS,
    retryDelay:
      retryDelayHeader === undefined
        ? undefined
        : { expression: retryDelayHeader, delayMs: compileRetryDelay(retryDelayHeader) },
    callback: readCallback(req, single, "upstash-callback"),
    failureCallback: readCallback(req, single, "upstash-failure-callback"),
    // The SDK sends several labels comma-separated in one header (`label: string[]`).
    labels:
      labelHeader === undefined
        ? []
        : labelHeader
            .split(",")
            .map((label) => label.trim())
            .filter(Boolean),
    cron: single("upstash-cron"),
    scheduleId: single("upstash-schedule-id"),
    deduplicationId: single("upstash-deduplication-id"),
    contentBasedDeduplication: single("upstash-content-based-deduplication") === "true",
  };
}

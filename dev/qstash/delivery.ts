import { callbackBody, callbackHeaders, type AttemptResponse } from "./callbacks";
import { newId } from "./ids";
import type { CallbackTarget } from "./publish-request";
import { isNonRetryable, MAX_RETRY_DELAY_MS, requestedRetryDelay } from "./retry-policy";
import type { SignDelivery } from "./signing";

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
  createdAt: string;
  scheduleId?: string;
  /** Labels from `Upstash-Label`, in the order given. */
  labels: string[];
  callback?: string;
  failureCallback?: string;
  retryDelayExpression?: string;
  /** Set on a message QStash published itself to report on another: which one, and as what. */
  callbackFor?: { sourceMessageId: string; kind: "callback" | "failure-callback" };
  state: MessageState;
  attempts: DeliveryAttempt[];
}

/** A compiled `Upstash-Retry-Delay`: the expression as sent, and the wait in ms it gives for `retried`. */
export interface RetryDelayExpression {
  expression: string;
  delayMs: (retried: number) => number;
}

export interface NewMessage {
  destination: string;
  method: string;
  body: Buffer;
  /** Headers forwarded to the destination as they are. */
  headers: Record<string, string>;
  retries: number;
  delayMs: number;
  /** An absolute time (ms) that wins over `delayMs`, as `Upstash-Not-Before` does. */
  notBeforeMs?: number;
  timeoutMs: number;
  scheduleId?: string;
  retryDelay?: RetryDelayExpression;
  callback?: CallbackTarget;
  failureCallback?: CallbackTarget;
  labels?: string[];
  /** The publisher's address, which QStash reports in callback bodies as `callerIP`. */
  callerIp?: string;
  callbackFor?: MessageInfo["callbackFor"];
}

interface StoredMessage {
  messageId: string;
  destination: string;
  method: string;
  body: Buffer;
  headers: Record<string, string>;
  maxRetries: number;
  notBefore: number;
  createdAt: number;
  timeoutMs: number;
  scheduleId?: string;
  retryDelay?: RetryDelayExpression;
  callback?: CallbackTarget;
  failureCallback?: CallbackTarget;
  labels: string[];
  callerIp: string;
  callbackFor?: MessageInfo["callbackFor"];
  state: MessageState;
  attempts: DeliveryAttempt[];
  firstAttempt: Promise<void>;
  markFirstAttempt: () => void;
}

export interface DeliveryQueueOptions {
  now: () => Date;
  log: (line: string) => void;
  /** The backoff for a message without `Upstash-Retry-Delay` whose destination asked for no particular wait. */
  retryDelayMs: (retried: number) => number;
  /** A ceiling on every wait before a retry, below QStash's own one day, so tests need not sit out a Retry-After. */
  maxRetryDelayMs: number;
  signDelivery: SignDelivery;
}

function toMessageInfo(m: StoredMessage): MessageInfo {
  return {
    messageId: m.messageId,
    destination: m.destination,
    method: m.method,
    body: m.body.toString("utf8"),
    headers: { ...m.headers },
    maxRetries: m.maxRetries,
    notBefore: new Date(m.notBefore).toISOString(),
    createdAt: new Date(m.createdAt).toISOString(),
    scheduleId: m.scheduleId,
    labels: [...m.labels],
    callback: m.callback?.url,
    failureCallback: m.failureCallback?.url,
    retryDelayExpression: m.retryDelay?.expression,
    callbackFor: m.callbackFor,
    state: m.state,
    attempts: m.attempts.map((a) => ({ ...a })),
  };
}

/**
 * The message queue: delivers each message to its destination at its time, retrying a failed attempt with
 * backoff under the same message id until its retry count is spent, and reporting attempts to the message's
 * callbacks, as QStash does (https://upstash.com/docs/qstash/features/retry, …/features/callbacks).
 */
export function createDeliveryQueue({ now, log, retryDelayMs, maxRetryDelayMs, signDelivery }: DeliveryQueueOptions) {
  const messages = new Map<string, StoredMessage>();
  let dlqSequence = 0;
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

  // One attempt at a time per message, so a destination never sees retry n+1 before retry n has finished.
  async function attempt(message: StoredMessage): Promise<void> {
    if (closed || message.state === "cancelled") return;
    const retried = message.attempts.length;
    message.state = "delivering";
    const headers: Record<string, string> = {
      ...message.headers,
      "upstash-message-id": message.messageId,
      "upstash-retried": String(retried),
      "upstash-signature": await signDelivery(message.destination, message.body),
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
    let response: AttemptResponse | undefined;
    let detail = "";
    try {
      const answer = await fetch(message.destination, {
        method: message.method,
        headers,
        body: message.method === "GET" || message.method === "HEAD" ? undefined : new Uint8Array(message.body),
        signal: controller.signal,
      });
      record.status = answer.status;
      const body = Buffer.from(await answer.arrayBuffer().catch(() => new ArrayBuffer(0)));
      response = { status: answer.status, headers: answer.headers, body };
      if (!answer.ok && body.length > 0) detail = ` ${JSON.stringify(body.toString("utf8").slice(0, 160))}`;
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      record.error = cause?.code ?? cause?.message ?? (error as Error).message;
    } finally {
      clearTimeout(timeout);
      inFlight.delete(controller);
    }
    record.durationMs = Date.now() - started;
    message.attempts.push(record);
    // Cancelled while this attempt was on its way: it was made, but nothing follows it (no callback, no retry).
    // (`cancel()` changes the state while the attempt awaits; TypeScript only sees the "delivering" set above.)
    if (closed || (message.state as MessageState) === "cancelled") {
      message.markFirstAttempt();
      notifyIfIdle();
      return;
    }

    const outcome = record.status !== undefined ? `${record.status}${detail}` : `error ${record.error}`;
    const head = `${message.messageId} ${message.method} ${message.destination} retried=${retried}${
      message.scheduleId ? ` schedule=${message.scheduleId}` : ""
    }${message.callbackFor ? ` ${message.callbackFor.kind}-of=${message.callbackFor.sourceMessageId}` : ""} → ${outcome} in ${record.durationMs}ms`;
    // QStash calls the callback with every answer the destination gives, not only the final one: "the callback might
    // be called multiple times for each retry until the endpoint returns success or retries are exhausted".
    if (response && message.callback) publishCallback(message, message.callback, "callback", retried, response);

    if (response && response.status >= 200 && response.status < 300) {
      message.state = "delivered";
      log(head);
    } else if (response && isNonRetryable(response.status, response.headers)) {
      log(`${head}; non-retryable (Upstash-NonRetryable-Error), giving up`);
      fail(message, retried, response);
    } else if (retried < message.maxRetries) {
      const asked = response ? requestedRetryDelay(response.headers, now().getTime()) : undefined;
      const planned = asked ?? (message.retryDelay?.delayMs ?? retryDelayMs)(retried);
      const wait = Math.round(Math.min(planned, MAX_RETRY_DELAY_MS, maxRetryDelayMs));
      const why = asked !== undefined ? " (asked by the answer)" : message.retryDelay ? " (Upstash-Retry-Delay)" : "";
      message.state = "retrying";
      log(`${head}; retry ${retried + 1}/${message.maxRetries} in ${wait}ms${why}`);
      later(wait, () => void attempt(message));
    } else {
      log(`${head}; giving up after ${retried + 1} attempt(s)`);
      fail(message, retried, response);
    }
    message.markFirstAttempt();
    notifyIfIdle();
  }

  // A message that will not be tried again goes to QStash's DLQ; its failure callback (if any) hears of it once.
  function fail(message: StoredMessage, retried: number, response: AttemptResponse | undefined): void {
    message.state = "failed";
    if (message.failureCallback) {
      const dlqId = `${now().getTime()}-${dlqSequence++}`;
      publishCallback(message, message.failureCallback, "failure-callback", retried, response, dlqId);
    }
  }

  // A callback is a message of its own (own id, retries and signature, subject the callback URL), as QStash does it.
  function publishCallback(
    source: StoredMessage,
    target: CallbackTarget,
    kind: "callback" | "failure-callback",
    retried: number,
    response: AttemptResponse | undefined,
    dlqId?: string,
  ): void {
    enqueue({
      destination: target.url,
      method: target.method,
      body: callbackBody(source, retried, response, dlqId),
      headers: callbackHeaders(target),
      retries: target.retries,
      delayMs: target.delayMs,
      timeoutMs: target.timeoutMs,
      callerIp: source.callerIp,
      callbackFor: { sourceMessageId: source.messageId, kind },
    });
  }

  /** Queues a message; the returned promise resolves once its first delivery attempt has finished. */
  function enqueue(input: NewMessage): { messageId: string; firstAttempt: Promise<void> } {
    let markFirstAttempt = () => {};
    const firstAttempt = new Promise<void>((resolve) => (markFirstAttempt = resolve));
    const createdAt = now().getTime();
    const notBefore = input.notBeforeMs ?? createdAt + input.delayMs;
    const message: StoredMessage = {
      messageId: newId("msg"),
      destination: input.destination,
      method: input.method,
      body: input.body,
      headers: input.headers,
      maxRetries: input.retries,
      notBefore,
      createdAt,
      timeoutMs: input.timeoutMs,
      scheduleId: input.scheduleId,
      retryDelay: input.retryDelay,
      callback: input.callback,
      failureCallback: input.failureCallback,
      labels: input.labels ?? [],
      callerIp: input.callerIp ?? "127.0.0.1",
      callbackFor: input.callbackFor,
      state: "scheduled",
      attempts: [],
      firstAttempt,
      markFirstAttempt,
    };
    messages.set(message.messageId, message);
    later(notBefore - now().getTime(), () => void attempt(message));
    return { messageId: message.messageId, firstAttempt };
  }

  return {
    enqueue,

    /** One message as the inspection API shows it, or undefined if the id is unknown. */
    message(messageId: string): MessageInfo | undefined {
      const stored = messages.get(messageId);
      return stored && toMessageInfo(stored);
    },

    messages(): MessageInfo[] {
      return [...messages.values()].map(toMessageInfo);
    },

    /**
     * `DELETE /v2/messages/<id>` (`client.messages.cancel`): a message still waiting for an attempt is never tried
     * (again). False for an unknown id or a message already delivered or failed, which QStash no longer holds.
     */
    cancel(messageId: string): boolean {
      const message = messages.get(messageId);
      if (!message || message.state === "delivered" || message.state === "failed" || message.state === "cancelled") {
        return false;
      }
      message.state = "cancelled";
      message.markFirstAttempt();
      notifyIfIdle();
      return true;
    },

    /** Resolves when no message is waiting for (another) delivery attempt. */
    idle(): Promise<void> {
      return new Promise<void>((resolve) => {
        idleWaiters.push(resolve);
        notifyIfIdle();
      });
    },

    close(): void {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const controller of inFlight) controller.abort(new Error("QStash stand-in closed"));
      for (const message of messages.values()) {
        if (message.state !== "delivered" && message.state !== "failed") message.state = "cancelled";
        message.markFirstAttempt();
      }
      for (const resolve of idleWaiters.splice(0)) resolve();
    },
  };
}

export type DeliveryQueue = ReturnType<typeof createDeliveryQueue>;

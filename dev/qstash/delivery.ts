import { newId } from "./ids";
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
  scheduleId?: string;
  state: MessageState;
  attempts: DeliveryAttempt[];
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

export interface DeliveryQueueOptions {
  now: () => Date;
  log: (line: string) => void;
  retryDelayMs: (retried: number) => number;
  signDelivery: SignDelivery;
}

/**
 * The message queue: delivers each message to its destination at its time, retrying a failed attempt with
 * backoff under the same message id until its retry count is spent, as QStash does.
 */
export function createDeliveryQueue({ now, log, retryDelayMs, signDelivery }: DeliveryQueueOptions) {
  const messages = new Map<string, StoredMessage>();
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
    if (closed) return;
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

  return {
    /** Queues a message; the returned promise resolves once its first delivery attempt has finished. */
    enqueue(input: NewMessage): { messageId: string; firstAttempt: Promise<void> } {
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
      return { messageId: message.messageId, firstAttempt };
    },

    messages(): MessageInfo[] {
      return [...messages.values()].map((m) => ({
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
      }));
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

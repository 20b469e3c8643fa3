import { CronExpressionParser, type CronExpression } from "cron-parser";
import { HttpError } from "../http-error";
import type { DeliveryQueue, RetryDelayExpression } from "./delivery";
import { canonicalHeaderName } from "./header-names";
import { newId } from "./ids";
import type { CallbackTarget, PublishRequest } from "./publish-request";

export interface ScheduleInfo {
  scheduleId: string;
  cron: string;
  createdAt: number;
  destination: string;
  method: string;
  header: Record<string, string[]>;
  /** Absent for a schedule created without a body, as on QStash (not `""`). */
  body?: string;
  retries: number;
  delay: number;
  callback?: string;
  failureCallback?: string;
  retryDelayExpression?: string;
  /** `label` is the first label, kept for older clients; `labels` has them all. */
  label?: string;
  labels?: string[];
  isPaused: boolean;
  lastScheduleTime?: number;
  nextScheduleTime?: number;
}

interface StoredSchedule {
  info: Omit<ScheduleInfo, "body">;
  body: Buffer;
  /** The headers delivered with each fired message, as the publisher sent them. */
  forwarded: Record<string, string>;
  expression: CronExpression;
  timeoutMs: number;
  retryDelay?: RetryDelayExpression;
  callbackTarget?: CallbackTarget;
  failureCallbackTarget?: CallbackTarget;
  labels: string[];
  lastFiredMinute?: number;
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

function toScheduleInfo(schedule: StoredSchedule): ScheduleInfo {
  const { info, body } = schedule;
  return { ...info, header: structuredClone(info.header), ...(body.length > 0 && { body: body.toString("utf8") }) };
}

/**
 * The schedule book: turns each cron schedule into a message on the delivery queue at every minute its cron
 * matches, in real time or when a test asks for a given minute.
 */
export function createScheduleBook(queue: DeliveryQueue, now: () => Date) {
  const schedules = new Map<string, StoredSchedule>();

  function find(scheduleId: string): StoredSchedule {
    const schedule = schedules.get(scheduleId);
    if (!schedule) throw new HttpError(404, `schedule ${scheduleId} not found`);
    return schedule;
  }

  async function fireDueSchedules(at: Date): Promise<void> {
    const minute = floorToMinute(at);
    const firstAttempts: Promise<void>[] = [];
    for (const schedule of schedules.values()) {
      const { info } = schedule;
      // Once per schedule and minute, however often the minute is ticked.
      if (info.isPaused || schedule.lastFiredMinute === minute.getTime()) continue;
      if (!schedule.expression.includesDate(minute)) continue;
      schedule.lastFiredMinute = minute.getTime();
      info.lastScheduleTime = at.getTime();
      info.nextScheduleTime = nextOccurrence(schedule.expression, minute);
      const { firstAttempt } = queue.enqueue({
        destination: info.destination,
        method: info.method,
        body: schedule.body,
        headers: schedule.forwarded,
        retries: info.retries,
        delayMs: info.delay * 1000,
        timeoutMs: schedule.timeoutMs,
        scheduleId: info.scheduleId,
        retryDelay: schedule.retryDelay,
        callback: schedule.callbackTarget,
        failureCallback: schedule.failureCallbackTarget,
        labels: schedule.labels,
      });
      firstAttempts.push(firstAttempt);
    }
    await Promise.all(firstAttempts);
  }

  // Real time: wake at every minute boundary of `now()` and fire what is due, like QStash's scheduler.
  let minuteTimer: NodeJS.Timeout | undefined;
  const tick = () => {
    const wait = 60_000 - (now().getTime() % 60_000) + 5;
    minuteTimer = setTimeout(() => {
      void fireDueSchedules(now());
      tick();
    }, wait);
    minuteTimer.unref();
  };
  tick();

  return {
    /** Creates a schedule, or updates it in place when `Upstash-Schedule-Id` names an existing one. */
    upsert(destination: string, body: Buffer, request: PublishRequest): { scheduleId: string } {
      if (!request.cron) throw new HttpError(400, "Upstash-Cron header is required");
      const expression = parseCron(request.cron, now());
      const scheduleId = request.scheduleId ?? newId("scd");
      const existing = schedules.get(scheduleId);
      const header: Record<string, string[]> = {};
      for (const [name, value] of Object.entries(request.forwarded)) header[canonicalHeaderName(name)] = [value];
      schedules.set(scheduleId, {
        info: {
          scheduleId,
          cron: request.cron,
          createdAt: existing?.info.createdAt ?? now().getTime(),
          destination,
          method: request.method,
          header,
          retries: request.retries,
          delay: Math.round(request.delayMs / 1000),
          ...(request.callback && { callback: request.callback.url }),
          ...(request.failureCallback && { failureCallback: request.failureCallback.url }),
          ...(request.retryDelay && { retryDelayExpression: request.retryDelay.expression }),
          ...(request.labels.length > 0 && { label: request.labels[0], labels: request.labels }),
          isPaused: existing?.info.isPaused ?? false,
          lastScheduleTime: existing?.info.lastScheduleTime,
          nextScheduleTime: nextOccurrence(expression, now()),
        },
        body,
        forwarded: request.forwarded,
        expression,
        timeoutMs: request.timeoutMs,
        retryDelay: request.retryDelay,
        callbackTarget: request.callback,
        failureCallbackTarget: request.failureCallback,
        labels: request.labels,
        lastFiredMinute: existing?.lastFiredMinute,
      });
      return { scheduleId };
    },
    list: (): ScheduleInfo[] => [...schedules.values()].map(toScheduleInfo),
    get: (scheduleId: string): ScheduleInfo => toScheduleInfo(find(scheduleId)),
    remove(scheduleId: string): void {
      find(scheduleId);
      schedules.delete(scheduleId);
    },
    setPaused(scheduleId: string, paused: boolean): void {
      find(scheduleId).info.isPaused = paused;
    },
    fireDueSchedules,
    close(): void {
      clearTimeout(minuteTimer);
    },
  };
}

export type ScheduleBook = ReturnType<typeof createScheduleBook>;

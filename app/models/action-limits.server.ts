import { randomUUID } from "node:crypto";
import type { Redis } from "@upstash/redis";
import { admitAttempt } from "./attempt-throttle.server";

/**
 * Limits on the things a customer can do that cost us work but are not metered: sending a test event (a QStash
 * publish and a request to their receiver), exporting usage history (a Postgres aggregate over up to a year) and
 * fetching a sheet from its URL by hand.
 * Both go through the same atomic set-per-window script as the log-in throttle (attempt-throttle.server.ts), so a
 * burst of concurrent requests cannot slip past the limit, and a resent request is not counted twice.
 *
 * The keys start with the user id (or hold a key id of that user), so account deletion can name them all.
 */
export const MAX_TEST_EVENTS = 5;
export const TEST_EVENT_WINDOW_SECONDS = 10 * 60;

// An export is one query; 30 a minute is far more than a script polling it needs, and bounds what a leaked key
// can make Postgres do without costing the owner any quota.
export const MAX_HISTORY_EXPORTS = 30;
export const HISTORY_EXPORT_WINDOW_SECONDS = 60;

// Creating a sheet from a URL or refreshing one fetches up to 10 MB and may rewrite 100 000 rows; the schedules'
// own refreshes are not counted (QStash calls them, not the customer).
export const MAX_SHEET_FETCHES = 20;
export const SHEET_FETCH_WINDOW_SECONDS = 10 * 60;

export function sheetFetchLimitKey(userId: string): string {
  return `sheet-fetches:${userId}`;
}

export function testEventLimitKey(userId: string): string {
  return `test-events:${userId}`;
}

export function historyExportLimitKey(userId: string, keyId: string): string {
  return `history-exports:${userId}:${keyId}`;
}

export type ActionAdmission = { admitted: true } | { admitted: false; retryAfterSeconds: number };

async function admit(redis: Redis, key: string, limit: number, windowSeconds: number): Promise<ActionAdmission> {
  const admission = await admitAttempt(redis, randomUUID(), [{ key, limit }], windowSeconds);
  return admission.admitted ? admission : { admitted: false, retryAfterSeconds: admission.retryAfterSeconds };
}

/** Throws when Redis cannot answer in time; the caller refuses rather than skip the limit. */
export function admitTestEvent(redis: Redis, userId: string): Promise<ActionAdmission> {
  return admit(redis, testEventLimitKey(userId), MAX_TEST_EVENTS, TEST_EVENT_WINDOW_SECONDS);
}

/** Per key: each of a customer's integrations gets its own allowance. Throws when Redis cannot answer in time. */
export function admitHistoryExport(redis: Redis, userId: string, keyId: string): Promise<ActionAdmission> {
  return admit(redis, historyExportLimitKey(userId, keyId), MAX_HISTORY_EXPORTS, HISTORY_EXPORT_WINDOW_SECONDS);
}

/** "Create from URL" and "Refresh now" together, per user. Throws when Redis cannot answer in time. */
export function admitSheetFetch(redis: Redis, userId: string): Promise<ActionAdmission> {
  return admit(redis, sheetFetchLimitKey(userId), MAX_SHEET_FETCHES, SHEET_FETCH_WINDOW_SECONDS);
}

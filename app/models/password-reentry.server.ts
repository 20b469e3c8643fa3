import { createHash, randomUUID } from "node:crypto";
import type { Redis } from "@upstash/redis";
import { admitAttempt } from "./attempt-throttle.server";

/**
 * Account changes made from a signed-in browser (new email, new password, deleting the account) ask for the
 * password again, so a borrowed or stolen session is not enough. That check is a password guess like a log-in, so
 * it is throttled like one: 5 attempts per 15 minutes, counted before argon2 runs, cleared by a right password.
 *
 * The bucket is per session, not per account: whoever holds a stolen cookie gets 5 guesses per window, while the
 * owner, signed in elsewhere with their own session, can still change the password and end the thief's session.
 * The session id is a secret (it is what the cookie carries), so the key holds a digest of it; the user id comes
 * first so account deletion can name every such key (see account-deletion.server.ts).
 */
export const MAX_PASSWORD_REENTRIES = 5;
export const PASSWORD_REENTRY_WINDOW_SECONDS = 15 * 60;

export function passwordReentryKey(userId: string, sessionId: string): string {
  const digest = createHash("sha256").update(sessionId).digest("base64url").slice(0, 22);
  return `password-reentry:${userId}:${digest}`;
}

export type PasswordReentryAdmission = { admitted: true } | { admitted: false; retryAfterSeconds: number };

/** Throws when Redis cannot answer in time; the caller refuses the change rather than skip the throttle. */
export async function admitPasswordReentry(
  redis: Redis,
  userId: string,
  sessionId: string,
): Promise<PasswordReentryAdmission> {
  const admission = await admitAttempt(
    redis,
    randomUUID(),
    [{ key: passwordReentryKey(userId, sessionId), limit: MAX_PASSWORD_REENTRIES }],
    PASSWORD_REENTRY_WINDOW_SECONDS,
  );
  return admission.admitted ? admission : { admitted: false, retryAfterSeconds: admission.retryAfterSeconds };
}

/** After the right password: the session's earlier mistakes are forgiven, as a successful log-in forgives them. */
export async function clearPasswordReentries(redis: Redis, userId: string, sessionId: string): Promise<void> {
  await redis.del(passwordReentryKey(userId, sessionId));
}

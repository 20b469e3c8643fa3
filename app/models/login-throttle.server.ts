import { randomUUID } from "node:crypto";
import type { Redis } from "@upstash/redis";

/**
 * Failed log-ins are counted per email in Redis over a sliding window: after MAX_FAILED_LOGINS failures the email
 * is locked until the window expires, whatever password is tried, so guessing is capped at a few attempts per
 * quarter hour. A successful log-in clears the count. The key does not start with "quota:", so the usage sync
 * never sees it.
 *
 * The failures are a set of attempt ids, not an INCR'd number: the Redis transport resends a request whose reply
 * was lost, and adding the same attempt twice to a set changes nothing, where a resent INCR would lock the
 * account one attempt early. (The key's name changed with its type, so counters left by the old scheme simply
 * expire instead of meeting WRONGTYPE.)
 */
export const MAX_FAILED_LOGINS = 5;
export const LOCKOUT_SECONDS = 15 * 60;

const keyFor = (email: string) => `login-failed-attempts:${email}`;

export interface LoginLock {
  locked: boolean;
  retryAfterSeconds: number;
}

/** Throws when Redis cannot answer in time; the caller refuses the log-in rather than skip the throttle. */
export async function checkLoginLock(redis: Redis, email: string): Promise<LoginLock> {
  const [failures, ttl] = await redis.pipeline().scard(keyFor(email)).ttl(keyFor(email)).exec<[number, number]>();
  const locked = failures >= MAX_FAILED_LOGINS;
  return { locked, retryAfterSeconds: locked ? Math.max(ttl, 1) : 0 };
}

export async function recordFailedLogin(redis: Redis, email: string): Promise<void> {
  const tx = redis.multi();
  tx.sadd(keyFor(email), randomUUID());
  tx.expire(keyFor(email), LOCKOUT_SECONDS, "NX");
  await tx.exec();
}

export async function clearFailedLogins(redis: Redis, email: string): Promise<void> {
  await redis.del(keyFor(email));
}

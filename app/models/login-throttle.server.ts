import type { Redis } from "@upstash/redis";

/**
 * Failed log-ins are counted per email in Redis over a sliding window: after MAX_FAILED_LOGINS failures the email
 * is locked until the window expires, whatever password is tried, so guessing is capped at a few attempts per
 * quarter hour. A successful log-in clears the count. The key does not start with "quota:", so the usage sync
 * never sees it.
 */
export const MAX_FAILED_LOGINS = 5;
export const LOCKOUT_SECONDS = 15 * 60;

const keyFor = (email: string) => `login-failures:${email}`;

export interface LoginLock {
  locked: boolean;
  retryAfterSeconds: number;
}

export async function checkLoginLock(redis: Redis, email: string): Promise<LoginLock> {
  const [failures, ttl] = await Promise.all([redis.get<number>(keyFor(email)), redis.ttl(keyFor(email))]);
  const locked = Number(failures ?? 0) >= MAX_FAILED_LOGINS;
  return { locked, retryAfterSeconds: locked ? Math.max(ttl, 1) : 0 };
}

export async function recordFailedLogin(redis: Redis, email: string): Promise<void> {
  const tx = redis.multi();
  tx.incr(keyFor(email));
  tx.expire(keyFor(email), LOCKOUT_SECONDS, "NX");
  await tx.exec();
}

export async function clearFailedLogins(redis: Redis, email: string): Promise<void> {
  await redis.del(keyFor(email));
}

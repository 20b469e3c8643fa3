import { randomUUID } from "node:crypto";
import type { Redis } from "@upstash/redis";
import { UNKNOWN_CLIENT_ADDRESS } from "~/utils/client-address.server";
import { admitAttempt } from "./attempt-throttle.server";

/**
 * Every sign-up costs an argon2 hash and creates a row, so each client address may attempt 10 an hour, counted
 * before the hash (successful or not: a taken email tells the attempter something, too).
 */
export const MAX_SIGNUPS_PER_ADDRESS = 10;
export const SIGNUP_WINDOW_SECONDS = 60 * 60;

export type SignupAdmission = { admitted: true } | { admitted: false; retryAfterSeconds: number };

/** Throws when Redis cannot answer in time; the caller refuses the sign-up rather than skip the throttle. */
export async function admitSignupAttempt(redis: Redis, address: string): Promise<SignupAdmission> {
  // Without a trusted client address every visitor would share one bucket, and ten sign-ups an hour would close
  // sign-up for the whole service: the limit applies only where TRUST_PROXY names the client.
  if (address === UNKNOWN_CLIENT_ADDRESS) return { admitted: true };
  const admission = await admitAttempt(
    redis,
    randomUUID(),
    [{ key: `signup-attempts-from:${address}`, limit: MAX_SIGNUPS_PER_ADDRESS }],
    SIGNUP_WINDOW_SECONDS,
  );
  return admission.admitted ? admission : { admitted: false, retryAfterSeconds: admission.retryAfterSeconds };
}

import { randomUUID } from "node:crypto";
import type { Redis } from "@upstash/redis";
import { UNKNOWN_CLIENT_ADDRESS } from "~/utils/client-address.server";
import { admitAttempt } from "./attempt-throttle.server";

/**
 * Log-in attempts are counted before the password is checked, so the limit caps argon2 work as well as guesses,
 * in two buckets (see docs/decisions/0005-login-throttling.md):
 * - per email and client address: 5 failures lock that email for that address only, so a stranger who knows an
 *   owner's email cannot lock the owner out when the owner logs in from elsewhere;
 * - per client address: 20 failures lock the address for every email, so spraying a common password over many
 *   emails from one address is stopped too.
 * An unknown email is counted exactly like a known one, so the throttle reveals no more than the form does.
 * A successful log-in clears its email-and-address bucket and takes back its own attempt from the address bucket.
 * No key starts with "quota:", so the usage sync never sees them.
 */
export const MAX_FAILED_LOGINS = 5;
export const MAX_FAILED_LOGINS_PER_ADDRESS = 20;
export const LOCKOUT_SECONDS = 15 * 60;

// The key names changed with their meaning, so sets left by the per-email scheme simply expire.
const emailAndAddressKey = (email: string, address: string) => `login-attempts:${address}:${email}`;
const addressKey = (address: string) => `login-attempts-from:${address}`;

export type LoginAdmission =
  | { admitted: true; attemptId: string }
  | { admitted: false; retryAfterSeconds: number; lockedFor: "email" | "address" };

/** Throws when Redis cannot answer in time; the caller refuses the log-in rather than skip the throttle. */
export async function admitLoginAttempt(redis: Redis, email: string, address: string): Promise<LoginAdmission> {
  const attemptId = randomUUID();
  const perEmail = { key: emailAndAddressKey(email, address), limit: MAX_FAILED_LOGINS };
  const perAddress = { key: addressKey(address), limit: MAX_FAILED_LOGINS_PER_ADDRESS };
  // Without a trusted client address the address bucket would be one bucket for every visitor, and 20 failures by
  // anyone would stop log-in for everyone; the per-email limit still holds (TRUST_PROXY turns the rest on).
  const buckets = address === UNKNOWN_CLIENT_ADDRESS ? [perEmail] : [perEmail, perAddress];
  const admission = await admitAttempt(redis, attemptId, buckets, LOCKOUT_SECONDS);
  if (admission.admitted) return { admitted: true, attemptId };
  return {
    admitted: false,
    retryAfterSeconds: admission.retryAfterSeconds,
    lockedFor: admission.refusedBy === perEmail ? "email" : "address",
  };
}

/** After the right password: DEL and SREM are idempotent, so a resend of this transaction changes nothing. */
export async function recordSuccessfulLogin(
  redis: Redis,
  email: string,
  address: string,
  attemptId: string,
): Promise<void> {
  const tx = redis.multi();
  tx.del(emailAndAddressKey(email, address));
  tx.srem(addressKey(address), attemptId);
  await tx.exec();
}

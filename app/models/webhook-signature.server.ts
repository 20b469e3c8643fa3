import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * How a receiver knows an event came from Sheetmeter: `Sheetmeter-Signature: t=<unix seconds>,v1=<hex>` where the hex
 * is HMAC-SHA256 keyed with the endpoint's whole secret (prefix included, as UTF-8) over `t + "." + raw body`. The
 * timestamp is inside the MAC, so an old delivery cannot be replayed with a fresh `t`. See docs/webhooks.md.
 */
export const SIGNATURE_HEADER = "Sheetmeter-Signature";
/** Same on every retry of one event: what a receiver deduplicates on, since QStash delivers at least once. */
export const EVENT_ID_HEADER = "Sheetmeter-Event-Id";
/** How old a `t` the docs tell receivers to accept; QStash's retries are spaced to arrive within it. */
export const SIGNATURE_TOLERANCE_SECONDS = 5 * 60;

const SECRET_PREFIX = "whsec_";

/** 32 random bytes: not guessable, and long enough that HMAC's key is never the weak part. */
export function generateWebhookSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(32).toString("base64url")}`;
}

export function webhookSignatureHex(secret: string, timestamp: number, body: string): string {
  return createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex");
}

/** The `Sheetmeter-Signature` header value for `body` sent at `at`. */
export function signWebhookBody(secret: string, body: string, at: Date = new Date()): string {
  const timestamp = Math.floor(at.getTime() / 1000);
  return `t=${timestamp},v1=${webhookSignatureHex(secret, timestamp, body)}`;
}

/**
 * What a receiver does (docs/webhooks.md has it as a standalone snippet): the header parses, `t` is recent, and one
 * `v1` matches under a constant-time compare. Used by the tests and by anyone who wants a reference to check against.
 */
export function verifyWebhookSignature(
  secret: string,
  body: string,
  header: string | null | undefined,
  { now = new Date(), toleranceSeconds = SIGNATURE_TOLERANCE_SECONDS } = {},
): boolean {
  if (!header) return false;
  const parts = header.split(",").map((part) => part.trim().split("="));
  const timestamps = parts.filter(([key]) => key === "t").map(([, value]) => value);
  const signatures = parts.filter(([key]) => key === "v1").map(([, value]) => value ?? "");
  if (timestamps.length !== 1 || !/^\d{1,12}$/.test(timestamps[0] ?? "")) return false;
  const timestamp = Number(timestamps[0]);
  if (Math.abs(now.getTime() / 1000 - timestamp) > toleranceSeconds) return false;
  const expected = Buffer.from(webhookSignatureHex(secret, timestamp, body), "hex");
  return signatures.some((signature) => {
    const given = Buffer.from(signature, "hex");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

import type { Db } from "~/utils/db.server";
import { allowsInsecureLocal, type Env, isLoopbackUrl } from "~/utils/env.server";
import { generateWebhookSecret } from "./webhook-signature.server";

/** Browsers and proxies handle far longer URLs, but nobody's receiver needs one; this bounds what we store and show. */
export const MAX_WEBHOOK_URL_LENGTH = 2048;

export interface WebhookUrlPolicy {
  /**
   * Plain `http://` to this machine. On in development and tests, and in production only under the same loopback
   * escape hatch as the app's own URLs (SHEETMETER_ALLOW_INSECURE_LOCAL with every URL loopback: the browser tests).
   */
  allowLoopbackHttp: boolean;
}

export function webhookUrlPolicy(env: Pick<Env, "NODE_ENV"> & Partial<Record<string, unknown>>): WebhookUrlPolicy {
  return { allowLoopbackHttp: env.NODE_ENV !== "production" || allowsInsecureLocal(env) };
}

export type WebhookUrlCheck = { ok: true; url: string } | { ok: false; error: string };

/**
 * A URL QStash can deliver to and that leaks nothing: https (the secret's signatures and the customer's usage travel
 * in it), no user:password (it would be shown on the page and stored in QStash's logs), bounded length. Loopback
 * hosts are refused unless plain http to them is allowed: QStash calls from Upstash's network, where "localhost" is
 * not the customer's machine.
 */
export function checkWebhookUrl(input: string, policy: WebhookUrlPolicy): WebhookUrlCheck {
  const value = input.trim();
  if (value === "") return { ok: false, error: "Enter the URL that should receive the events." };
  if (value.length > MAX_WEBHOOK_URL_LENGTH) {
    return { ok: false, error: `Use a URL of at most ${MAX_WEBHOOK_URL_LENGTH} characters.` };
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { ok: false, error: "Enter a full URL, like https://example.com/hooks/sheetmeter." };
  }
  if (url.username || url.password) {
    return { ok: false, error: "Leave the user name and password out of the URL; check the signature instead." };
  }
  const loopback = isLoopbackUrl(url.href);
  if (url.protocol === "https:" && (!loopback || policy.allowLoopbackHttp)) return { ok: true, url: url.href };
  if (url.protocol === "http:" && loopback && policy.allowLoopbackHttp) return { ok: true, url: url.href };
  if (loopback) return { ok: false, error: "QStash cannot reach this machine; use your server's public https:// URL." };
  return { ok: false, error: "Use an https:// URL, so events and their signatures cannot be read on the way." };
}

export interface WebhookEndpointView {
  url: string;
  secret: string;
  createdAt: Date;
  updatedAt: Date;
  secretRotatedAt: Date;
}

const endpointSelect = { url: true, secret: true, createdAt: true, updatedAt: true, secretRotatedAt: true } as const;

export function getWebhookEndpoint(db: Db, userId: string): Promise<WebhookEndpointView | null> {
  return db.webhookEndpoint.findUnique({ where: { userId }, select: endpointSelect });
}

export type SetWebhookUrlResult = { ok: true; endpoint: WebhookEndpointView } | { ok: false; error: string };

/**
 * Points the user's alerts at `input`. A new endpoint gets a new secret; changing the URL keeps the secret, so a
 * receiver that moves does not have to be reconfigured.
 */
export async function setWebhookUrl(
  db: Db,
  userId: string,
  input: string,
  policy: WebhookUrlPolicy,
): Promise<SetWebhookUrlResult> {
  const checked = checkWebhookUrl(input, policy);
  if (!checked.ok) return checked;
  const endpoint = await db.webhookEndpoint.upsert({
    where: { userId },
    create: { userId, url: checked.url, secret: generateWebhookSecret() },
    update: { url: checked.url },
    select: endpointSelect,
  });
  return { ok: true, endpoint };
}

/** Stops alerts; the secret goes with the URL. Removing twice is not an error. */
export async function removeWebhookEndpoint(db: Db, userId: string): Promise<boolean> {
  const { count } = await db.webhookEndpoint.deleteMany({ where: { userId } });
  return count > 0;
}

/**
 * A new secret, in force at once: every event published from now on is signed with it, and the old one signs
 * nothing more (retries already queued in QStash keep the signature they were published with). Null without an
 * endpoint.
 */
export async function rotateWebhookSecret(db: Db, userId: string, now = new Date()): Promise<string | null> {
  const secret = generateWebhookSecret();
  const { count } = await db.webhookEndpoint.updateMany({
    where: { userId },
    data: { secret, secretRotatedAt: now },
  });
  return count > 0 ? secret : null;
}

/** The signing secret, for its owner who asked to see it (the settings page does not load it otherwise). */
export async function revealWebhookSecret(db: Db, userId: string): Promise<string | null> {
  const endpoint = await db.webhookEndpoint.findUnique({ where: { userId }, select: { secret: true } });
  return endpoint?.secret ?? null;
}

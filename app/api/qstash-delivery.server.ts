import type { Redis } from "@upstash/redis";
import { claimDeliveryToken, releaseDeliveryToken, verifyQstashSignature } from "~/utils/qstash.server";
import { CRON_BODY_LIMIT_BYTES, readBoundedText } from "~/utils/request-guard.server";
import { problem } from "./problem.server";

/**
 * What every route QStash calls checks before it looks at a body: the body is bounded (64 KB by default, read before the
 * signature is known, so a forged caller cannot make us buffer more), the signature covers this exact URL and
 * those exact bytes, and the token is used once (a replay is acknowledged without running anything again).
 */
export interface QstashDelivery {
  /** The raw body the signature covers; parse it only now. */
  body: string;
  messageId: string | null;
  /** Forgets the token, so QStash's retry of a delivery that failed is accepted and runs again. */
  release(): Promise<void>;
}

export interface QstashDeliveryOptions {
  /** The public URL QStash signed (APP_URL's, never the Host header's), query included. */
  url: string;
  /** Where used tokens are remembered. */
  redis: Redis;
  /** Log lines are `{event: "<logPrefix>.rejected" | ".replayed" | ".error", …}`. */
  logPrefix: string;
  /** The 401's detail: what this endpoint accepts. */
  rejectDetail: string;
  /** The answer when the token cannot be recorded: a 5xx, so QStash retries. */
  unavailable: () => Response;
  /** The largest body accepted (413 past it); the cron route's 64 KB unless the route's deliveries carry more. */
  bodyLimitBytes?: number;
}

export async function acceptQstashDelivery(
  request: Request,
  { url, redis, logPrefix, rejectDetail, unavailable, bodyLimitBytes = CRON_BODY_LIMIT_BYTES }: QstashDeliveryOptions,
): Promise<QstashDelivery | Response> {
  const messageId = request.headers.get("Upstash-Message-Id");
  const body = await readBoundedText(request, bodyLimitBytes);

  try {
    await verifyQstashSignature(request, body, url);
  } catch (error) {
    const reason = (error as Error).message;
    console.warn(JSON.stringify({ event: `${logPrefix}.rejected`, reason, messageId, bytes: body.length }));
    return problem({ status: 401, type: "invalid-signature", title: "Invalid signature", detail: rejectDetail });
  }

  // Verified above, so the header is there.
  const signature = request.headers.get("Upstash-Signature")!;
  try {
    if (!(await claimDeliveryToken(redis, signature))) {
      console.warn(JSON.stringify({ event: `${logPrefix}.replayed`, messageId }));
      // 2xx: this token's delivery was (or is being) handled; anything else would only make a sender try again.
      return Response.json({ replayed: true });
    }
  } catch (error) {
    console.error(
      JSON.stringify({ event: `${logPrefix}.error`, messageId, error: (error as Error).message.split("\n")[0] }),
    );
    return unavailable();
  }
  return { body, messageId, release: () => releaseDeliveryToken(redis, signature).catch(() => {}) };
}

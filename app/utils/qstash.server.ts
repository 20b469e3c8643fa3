import { Client, Receiver } from "@upstash/qstash";
import type { Redis } from "@upstash/redis";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { getEnv } from "./env.server";
import { releaseSingleton, singleton } from "./singleton.server";

const QSTASH = "qstash";

function createQstash() {
  const env = getEnv();
  return {
    // devMode false: never let the SDK swap in its own dev-server keys or try to start Upstash's binary.
    client: new Client({ baseUrl: env.QSTASH_URL, token: env.QSTASH_TOKEN, devMode: false, enableTelemetry: false }),
    receiver: new Receiver({
      currentSigningKey: env.QSTASH_CURRENT_SIGNING_KEY,
      nextSigningKey: env.QSTASH_NEXT_SIGNING_KEY,
      devMode: false,
    }),
  };
}

export function getQstash(): Client {
  return singleton(QSTASH, createQstash).client;
}

export function getReceiver(): Receiver {
  return singleton(QSTASH, createQstash).receiver;
}

/** Forgets the client and receiver; like Redis's, they are stateless HTTP with nothing to end. */
export function closeQstash(): void {
  releaseSingleton(QSTASH);
}

/** A request that QStash did not sign for this URL and body. */
export class InvalidSignatureError extends Error {}

/**
 * `Receiver.verify` checks the HS256 signature with either key, the issuer, `exp`/`nbf` when present, the subject
 * against our URL and the body hash. It accepts a token without `exp` (valid forever if it ever leaked) and any
 * HS* algorithm; QStash always signs HS256 with an expiry, so anything else is not QStash and is refused too.
 * Throws InvalidSignatureError with a reason fit for a log line (never a key or the token).
 */
export async function verifyQstashSignature(request: Request, body: string, url: string): Promise<void> {
  const signature = request.headers.get("Upstash-Signature");
  if (!signature) throw new InvalidSignatureError("no Upstash-Signature header");
  try {
    await getReceiver().verify({ signature, body, url });
    if (decodeProtectedHeader(signature).alg !== "HS256") throw new InvalidSignatureError("algorithm is not HS256");
    const { exp, jti } = decodeJwt(signature);
    if (typeof exp !== "number") throw new InvalidSignatureError("token has no expiry");
    // QStash gives every delivery its own token id; without one a replay could not be told from a new delivery.
    if (typeof jti !== "string" || jti === "") throw new InvalidSignatureError("token has no id (jti)");
  } catch (error) {
    if (error instanceof InvalidSignatureError) throw error;
    // The SDK's messages name the failed check (subject, body hash…) and never include a key, but after a failed
    // claim check with the current key it retries the next one and reports only that key's signature mismatch;
    // the claims say what really happened, which is what an operator needs from the log.
    throw new InvalidSignatureError(claimProblem(signature) ?? (error as Error).message.split("\n")[0].slice(0, 200));
  }
}

function claimProblem(token: string): string | undefined {
  try {
    const { iss, exp, nbf } = decodeJwt(token);
    const now = Date.now() / 1000;
    if (iss !== "Upstash") return "issuer is not Upstash";
    if (typeof exp === "number" && exp <= now) return "signature expired";
    if (typeof nbf === "number" && nbf > now) return "signature not valid yet";
  } catch {
    return undefined;
  }
  return undefined;
}

/** Outside `quota:`, so nothing that scans the quota counters (the sync) ever meets these. */
const SEEN_TOKEN_PREFIX = "qstash-token:";

/**
 * A signed token stays valid for minutes, so anyone who saw one (a proxy log, a leaked request) could otherwise
 * send it again and start a run each time. The first delivery of a token id claims it, with Redis's own expiry
 * set to what is left of the token's life: once the token has expired the signature check refuses it anyway.
 * Returns false when the token was claimed before. Call only after `verifyQstashSignature` accepted the token.
 */
export async function claimDeliveryToken(redis: Pick<Redis, "set">, signature: string): Promise<boolean> {
  const { jti, exp } = decodeJwt(signature);
  const secondsLeft = Math.max(1, Math.ceil((exp ?? 0) - Date.now() / 1000));
  return (await redis.set(`${SEEN_TOKEN_PREFIX}${jti}`, "1", { nx: true, ex: secondsLeft })) !== null;
}

/**
 * Gives a token id back after its delivery failed: should QStash ever retry with the same token, the retry must run,
 * or a failed sync would be acknowledged as a replay and never redone.
 */
export async function releaseDeliveryToken(redis: Pick<Redis, "del">, signature: string): Promise<void> {
  await redis.del(`${SEEN_TOKEN_PREFIX}${decodeJwt(signature).jti}`);
}

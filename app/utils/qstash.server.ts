import { Client, Receiver } from "@upstash/qstash";
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
    if (typeof decodeJwt(signature).exp !== "number") throw new InvalidSignatureError("token has no expiry");
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

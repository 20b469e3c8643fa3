import { createHash } from "node:crypto";
import { SignJWT } from "jose";
import { newId } from "./ids";

// QStash's own lifetime for a delivery's signature.
const SIGNATURE_LIFETIME_SECONDS = 5 * 60;

/**
 * Signs one delivery attempt the way QStash does, so the app's `Receiver` verifies it unchanged: an HS256 JWT with
 * iss "Upstash", the destination as subject and the body's SHA-256 as the `body` claim.
 */
export function createDeliverySigner(currentSigningKey: string, now: () => Date) {
  const key = new TextEncoder().encode(currentSigningKey);
  return async function signDelivery(destination: string, body: Buffer): Promise<string> {
    const issuedAt = Math.floor(now().getTime() / 1000);
    // Standard (padded) base64url, as QStash sends it; the SDK's Receiver strips padding before comparing.
    const bodyHash = createHash("sha256").update(body).digest("base64").replace(/\+/g, "-").replace(/\//g, "_");
    return new SignJWT({ body: bodyHash })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setIssuer("Upstash")
      .setSubject(destination)
      .setIssuedAt(issuedAt)
      .setNotBefore(issuedAt)
      .setExpirationTime(issuedAt + SIGNATURE_LIFETIME_SECONDS)
      .setJti(newId("jwt"))
      .sign(key);
  };
}

export type SignDelivery = ReturnType<typeof createDeliverySigner>;

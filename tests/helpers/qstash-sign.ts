import { createHash, randomUUID } from "node:crypto";
import { base64url, SignJWT } from "jose";

/**
 * Signs a request body the way QStash does (HS256 JWT: iss "Upstash", sub = destination URL, body = base64url
 * SHA-256 of the raw body, iat/nbf/exp, jti), with knobs to forge each part for the signature tests.
 */
export interface SignOptions {
  key: string;
  url: string;
  body: string;
  /** Seconds since the epoch; defaults to now. */
  now?: number;
  issuer?: string;
  expiresIn?: number;
  notBeforeOffset?: number;
  omitExpiry?: boolean;
  omitTokenId?: boolean;
  /** Hash this instead of `body`, to forge a signature for other content. */
  signedBody?: string;
}

export function bodyHash(body: string): string {
  return createHash("sha256").update(body).digest("base64url");
}

export async function signQstash(options: SignOptions): Promise<string> {
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ body: bodyHash(options.signedBody ?? options.body) })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer(options.issuer ?? "Upstash")
    .setSubject(options.url)
    .setIssuedAt(now)
    .setNotBefore(now + (options.notBeforeOffset ?? 0));
  if (!options.omitTokenId) jwt.setJti(`jwt_${randomUUID()}`);
  if (!options.omitExpiry) jwt.setExpirationTime(now + (options.expiresIn ?? 300));
  return jwt.sign(new TextEncoder().encode(options.key));
}

/** An unsecured token ("alg": "none") with otherwise valid claims: what an attacker without the key can make. */
export function unsignedToken(url: string, body: string): string {
  const now = Math.floor(Date.now() / 1000);
  const encode = (value: object) => base64url.encode(JSON.stringify(value));
  const claims = { iss: "Upstash", sub: url, body: bodyHash(body), iat: now, nbf: now, exp: now + 300, jti: "x" };
  return `${encode({ alg: "none", typ: "JWT" })}.${encode(claims)}.`;
}

import { randomBytes } from "node:crypto";

/**
 * The headers every answer carries. Documents get a CSP that admits only our own files and Remix's inline scripts
 * (by a per-request nonce); everything else (data, JSON, errors) gets a CSP that admits nothing, so a response
 * opened directly in a tab can neither run script nor be framed.
 */

/** A fresh nonce per document: a nonce reused across responses would let an injected script copy it. */
export function createNonce(): string {
  return randomBytes(16).toString("base64");
}

export function documentContentSecurityPolicy(nonce: string, { development = false } = {}): string {
  return [
    "default-src 'self'",
    // Remix inlines the route manifest, the hydration data and the module bootstrap; only they carry the nonce.
    `script-src 'self' 'nonce-${nonce}'`,
    // recharts positions its tooltip and legend with style attributes, which a nonce cannot cover (CSP nonces
    // apply to <style> elements, not attributes). Inline styles cannot run code, so this costs little.
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self'",
    // `remix dev` pushes rebuilds over a WebSocket on its own port.
    development ? "connect-src 'self' ws:" : "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
}

const NON_DOCUMENT_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

// Nothing here uses these; denying them means an injected third-party frame or script cannot ask for them either.
const PERMISSIONS_POLICY = [
  "accelerometer=()",
  "camera=()",
  "geolocation=()",
  "gyroscope=()",
  "magnetometer=()",
  "microphone=()",
  "payment=()",
  "usb=()",
].join(", ");

export interface SecurityHeaderOptions {
  /** Set for an HTML document: its CSP admits scripts with this nonce. */
  nonce?: string;
  production: boolean;
}

export function applySecurityHeaders(headers: Headers, { nonce, production }: SecurityHeaderOptions): void {
  headers.set(
    "Content-Security-Policy",
    nonce ? documentContentSecurityPolicy(nonce, { development: !production }) : NON_DOCUMENT_POLICY,
  );
  // For browsers that predate frame-ancestors.
  headers.set("X-Frame-Options", "DENY");
  headers.set("X-Content-Type-Options", "nosniff");
  headers.set("Referrer-Policy", "strict-origin-when-cross-origin");
  headers.set("Permissions-Policy", PERMISSIONS_POLICY);
  // Only in production: on http://localhost a browser ignores it, and a developer's https:// host would be pinned.
  if (production) headers.set("Strict-Transport-Security", "max-age=63072000; includeSubDomains");
  // Pages and their data show the signed-in user (the header's email at least), so no shared cache may keep them
  // and the back button after log-out must not show them. A route that means to be cached says so itself.
  if (!headers.has("Cache-Control")) headers.set("Cache-Control", "private, no-store");
}

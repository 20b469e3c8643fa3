import { describe, expect, it } from "vitest";
import {
  generateWebhookSecret,
  signWebhookBody,
  verifyWebhookSignature,
  webhookSignatureHex,
} from "./webhook-signature.server";

// Computed independently of this code:
// printf '%s' '1700000000.{"type":"webhook.test","at":"2023-11-14T22:13:20.000Z"}' | openssl dgst -sha256 -hmac 'whsec_test-vector-secret'
const SECRET = "whsec_test-vector-secret";
const BODY = '{"type":"webhook.test","at":"2023-11-14T22:13:20.000Z"}';
const AT = new Date(1_700_000_000_000);
const EXPECTED_HEX = "043078b70fe567e09f666e72e54a408e6beaa176b8ac8a8d08a5339066e25f00";

describe("webhook signatures", () => {
  it("matches a known vector: HMAC-SHA256(secret, t + '.' + body) in hex", () => {
    expect(webhookSignatureHex(SECRET, 1_700_000_000, BODY)).toBe(EXPECTED_HEX);
    expect(signWebhookBody(SECRET, BODY, AT)).toBe(`t=1700000000,v1=${EXPECTED_HEX}`);
  });

  it("verifies its own signature within the tolerance, and not past it", () => {
    const header = signWebhookBody(SECRET, BODY, AT);
    expect(verifyWebhookSignature(SECRET, BODY, header, { now: new Date(AT.getTime() + 299_000) })).toBe(true);
    expect(verifyWebhookSignature(SECRET, BODY, header, { now: new Date(AT.getTime() + 301_000) })).toBe(false);
  });

  it("fails for a tampered body, a moved timestamp, another secret or a malformed header", () => {
    const header = signWebhookBody(SECRET, BODY, AT);
    const now = AT;
    expect(verifyWebhookSignature(SECRET, BODY.replace("test", "tezt"), header, { now })).toBe(false);
    expect(verifyWebhookSignature(SECRET, `${BODY} `, header, { now })).toBe(false);
    const movedT = header.replace("t=1700000000", "t=1700000001");
    expect(verifyWebhookSignature(SECRET, BODY, movedT, { now })).toBe(false);
    expect(verifyWebhookSignature(generateWebhookSecret(), BODY, header, { now })).toBe(false);
    expect(verifyWebhookSignature(SECRET, BODY, `v1=${EXPECTED_HEX}`, { now })).toBe(false);
    expect(verifyWebhookSignature(SECRET, BODY, "t=1700000000,v1=zz", { now })).toBe(false);
    expect(verifyWebhookSignature(SECRET, BODY, null, { now })).toBe(false);
  });

  it("makes whsec_ secrets of 32 random bytes, never the same twice", () => {
    const secret = generateWebhookSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(secret.slice(6), "base64url")).toHaveLength(32);
    expect(generateWebhookSecret()).not.toBe(secret);
  });
});

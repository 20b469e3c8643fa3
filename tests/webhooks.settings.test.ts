import { describe, expect, it } from "vitest";
import { recordDeliveryReport } from "~/models/webhook-deliveries.server";
import { action as settingsAction, loader as settingsLoader } from "~/routes/settings";
import { getDb } from "~/utils/db.server";
import { createUserSession } from "~/utils/session.server";
import { createTestUser } from "./factories";
import { cookieFrom, formRequest, getRequest, settle, TEST_ORIGIN } from "./helpers/requests";

/** The "Usage alerts" forms of /settings, through the page's own guard (same origin, bounded body). */
const args = (request: Request) => ({ request, params: {}, context: {} });
const db = getDb();

async function signedIn() {
  const user = await createTestUser(db);
  const response = await createUserSession(new Request(`${TEST_ORIGIN}/login`), user.id, "/settings", { db });
  return { userId: user.id, cookie: cookieFrom(response) };
}

const post = (cookie: string, fields: Record<string, string>) =>
  settle(settingsAction(args(formRequest("/settings", fields, cookie))));

describe("usage alerts on /settings", () => {
  it("sets a URL with a clear error for a bad one, shows the secret to its owner only, rotates and removes it", async () => {
    const owner = await signedIn();
    const stranger = await signedIn();

    const bad = await post(owner.cookie, { intent: "webhook-set", url: "http://hooks.example.com/x" });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ intent: "webhook-set", error: expect.stringMatching(/https:\/\//) });

    const saved = await post(owner.cookie, { intent: "webhook-set", url: "https://hooks.example.com/x" });
    expect(await saved.json()).toEqual({ intent: "webhook-set", saved: true });
    const page = await (await settle(settingsLoader(args(getRequest("/settings", { Cookie: owner.cookie }))))).json();
    expect(page.webhook).toMatchObject({ url: "https://hooks.example.com/x" });
    // The secret is not in the page's data; its owner asks for it (tests/account-settings.test.ts).
    const { secret } = await (await post(owner.cookie, { intent: "webhook-reveal" })).json();
    expect(secret).toMatch(/^whsec_/);
    const theirs = await (
      await settle(settingsLoader(args(getRequest("/settings", { Cookie: stranger.cookie }))))
    ).json();
    expect(theirs.webhook).toBeNull();

    expect(await (await post(owner.cookie, { intent: "webhook-rotate" })).json()).toEqual({
      intent: "webhook-rotate",
      rotated: true,
    });
    const after = await db.webhookEndpoint.findUniqueOrThrow({ where: { userId: owner.userId } });
    expect(after.secret).not.toBe(secret);

    expect(await (await post(owner.cookie, { intent: "webhook-remove" })).json()).toEqual({
      intent: "webhook-remove",
      removed: true,
    });
    expect(await db.webhookEndpoint.count({ where: { userId: owner.userId } })).toBe(0);
  });

  it("refuses a cross-site form and an oversized one without changing anything", async () => {
    const owner = await signedIn();
    const crossSite = formRequest("/settings", { intent: "webhook-set", url: "https://evil.example/x" }, owner.cookie);
    crossSite.headers.set("Origin", "https://evil.example");
    expect((await settle(settingsAction(args(crossSite)))).status).toBe(403);

    const huge = await post(owner.cookie, {
      intent: "webhook-set",
      url: `https://hooks.example.com/${"a".repeat(20_000)}`,
    });
    expect(huge.status).toBe(413);
    expect(await db.webhookEndpoint.count({ where: { userId: owner.userId } })).toBe(0);
  });

  it("says a test event needs a URL first", async () => {
    const owner = await signedIn();
    const response = await post(owner.cookie, { intent: "webhook-test" });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ outcome: "no_endpoint", error: "Save a webhook URL first." });
  });
});

describe("the delivery log", () => {
  it("never undoes a final status and ignores an attempt older than the one recorded", async () => {
    const { id: userId } = await createTestUser(db);
    const delivery = await db.webhookDelivery.create({
      data: {
        userId,
        eventId: "evt_order",
        type: "webhook.test",
        url: "https://x.example",
        body: "{}",
        messageId: "msg_order",
      },
    });
    const report = {
      eventId: "evt_order",
      messageId: "msg_order",
      maxRetries: 4,
      finalFailure: false,
      nonRetryable: false,
    };

    await recordDeliveryReport(db, { ...report, httpStatus: 502, retried: 1 });
    expect(await recordDeliveryReport(db, { ...report, httpStatus: 500, retried: 0 })).toMatchObject({
      status: "queued",
    });
    expect(await db.webhookDelivery.findUniqueOrThrow({ where: { id: delivery.id } })).toMatchObject({
      attempts: 2,
      lastHttpStatus: 502,
    });

    await recordDeliveryReport(db, { ...report, httpStatus: 200, retried: 2 });
    // A late failure callback (or a duplicate of an earlier attempt's) after the 2xx changes nothing.
    expect(await recordDeliveryReport(db, { ...report, httpStatus: 0, retried: 4, finalFailure: true })).toMatchObject({
      status: "delivered",
    });
    expect(await db.webhookDelivery.findUniqueOrThrow({ where: { id: delivery.id } })).toMatchObject({
      status: "delivered",
      attempts: 3,
      lastHttpStatus: 200,
      error: null,
    });

    // Found by message id when the callback URL names no event; unknown ids are not recorded.
    expect(
      await recordDeliveryReport(db, { ...report, eventId: undefined, httpStatus: 200, retried: 0 }),
    ).toMatchObject({
      recorded: true,
    });
    expect(
      await recordDeliveryReport(db, {
        ...report,
        eventId: undefined,
        messageId: "msg_other",
        httpStatus: 200,
        retried: 0,
      }),
    ).toEqual({
      recorded: false,
    });
  });
});

import http from "node:http";
import type { AddressInfo } from "node:net";
import { Client } from "@upstash/qstash";
import { afterAll, beforeEach, describe, expect, it, vi } from "vitest";
import { startQstash } from "../dev/qstash";
import { deleteAccount } from "~/models/account-deletion.server";
import { rotateWebhookSecret, setWebhookUrl, webhookUrlPolicy } from "~/models/webhook-endpoints.server";
import {
  appWebhookDeps,
  publishThresholdEvent,
  republishPendingThresholdEvents,
  sendTestEvent,
} from "~/models/webhook-events.server";
import { WEBHOOK_RETRIES } from "~/models/webhook-publish.server";
import { verifyWebhookSignature } from "~/models/webhook-signature.server";
import { setMonthlyLimit } from "~/models/user.server";
import * as cronRoute from "~/routes/api.cron.update-usage";
import { loader as sheetLoader } from "~/routes/api.v1.sheets.$sheetId";
import * as route from "~/routes/api.webhooks.delivery-status";
import { createPrismaClient, getDb, setDbForTests } from "~/utils/db.server";
import { periodOf } from "~/utils/period";
import { getRedis } from "~/utils/redis.server";
import { SYNC_ROUTE_PATH, WEBHOOK_STATUS_ROUTE_PATH } from "~/utils/endpoints";
import { loadRawEnv } from "~/utils/env.server";
import { createTestApiKey, createTestSheet, createTestUser } from "./factories";
import { signQstash } from "./helpers/qstash-sign";
import { serveRoute } from "./helpers/serve-action";

/**
 * Threshold alerts as they run in production: the real `@upstash/qstash` Client publishes to the QStash stand-in,
 * which delivers to a customer's receiver (a node:http server here) and reports each answer to the delivery-status
 * route over HTTP, signed; the route records it in Postgres.
 */
interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

async function startReceiver() {
  const received: Received[] = [];
  let answer = 200;
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    received.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
    res.writeHead(answer, { "Content-Type": "text/plain" });
    res.end(answer === 200 ? "ok" : "receiver broke");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/sheetmeter`,
    received,
    answerWith(status: number) {
      answer = status;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const served = await serveRoute(route);
const raw = loadRawEnv();
const qstash = await startQstash({
  token: raw.QSTASH_TOKEN!,
  currentSigningKey: raw.QSTASH_CURRENT_SIGNING_KEY!,
  nextSigningKey: raw.QSTASH_NEXT_SIGNING_KEY!,
  retryDelayMs: () => 20,
  // Webhook retries are spaced 5–40 s apart (inside the signature's 5-minute tolerance); a test need not wait.
  maxRetryDelayMs: 50,
  log: () => {},
});
process.env.APP_URL = served.origin;
process.env.QSTASH_URL = qstash.url;
const receiver = await startReceiver();
// The hourly sync's route, which verifies its signature against APP_URL's origin whatever host serves it.
const cron = await serveRoute(cronRoute);
const syncUrl = served.origin + SYNC_ROUTE_PATH;
const db = getDb();

afterAll(async () => {
  await receiver.close();
  await qstash.close();
  await served.close();
  await cron.close();
});

beforeEach(() => {
  receiver.received.length = 0;
  receiver.answerWith(200);
  vi.spyOn(console, "error").mockImplementation(() => {});
  vi.spyOn(console, "warn").mockImplementation(() => {});
});

async function userWithWebhook() {
  const user = await createTestUser(db);
  const set = await setWebhookUrl(db, user.id, receiver.url, webhookUrlPolicy({ NODE_ENV: "test" }));
  if (!set.ok) throw new Error(set.error);
  return { userId: user.id, secret: set.endpoint.secret };
}

const deliveryRow = (id: string) => db.webhookDelivery.findUniqueOrThrow({ where: { id } });
const AT = new Date("2026-11-20T10:15:00.000Z");

describe("threshold events through QStash", () => {
  it("delivers the documented bytes, signed with the endpoint's secret, and records the delivery", async () => {
    const { userId, secret } = await userWithWebhook();
    const outcome = await publishThresholdEvent({
      userId,
      threshold: 80,
      used: 800,
      limit: 1000,
      period: "2026-11",
      at: AT,
    });
    expect(outcome).toMatchObject({ status: "queued", deduplicated: false });
    await qstash.idle();

    expect(receiver.received).toHaveLength(1);
    const [event] = receiver.received;
    expect(event.body).toBe(
      '{"type":"usage.threshold","threshold":80,"used":800,"limit":1000,"period":"2026-11","at":"2026-11-20T10:15:00.000Z"}',
    );
    expect(event.headers["content-type"]).toBe("application/json");
    expect(verifyWebhookSignature(secret, event.body, event.headers["sheetmeter-signature"] as string)).toBe(true);
    expect(verifyWebhookSignature(secret, `${event.body} `, event.headers["sheetmeter-signature"] as string)).toBe(
      false,
    );
    if (outcome.status !== "queued") throw new Error("not queued");
    expect(event.headers["sheetmeter-event-id"]).toBe(outcome.eventId);
    expect(event.headers["upstash-message-id"]).toBe(outcome.messageId);

    expect(await deliveryRow(outcome.deliveryId)).toMatchObject({
      status: "delivered",
      lastHttpStatus: 200,
      attempts: 1,
      messageId: outcome.messageId,
      deduplicationId: `threshold-${userId}-2026-11-80`,
      deliveredAt: expect.any(Date),
    });
  });

  it("sends a threshold once per month: a second crossing and a re-publish after a lost answer deliver nothing", async () => {
    const { userId } = await userWithWebhook();
    const crossing = { userId, threshold: 100 as const, used: 1000, limit: 1000, period: "2026-11", at: AT };
    const first = await publishThresholdEvent(crossing);
    if (first.status !== "queued") throw new Error(`not queued: ${JSON.stringify(first)}`);
    await qstash.idle();

    const again = await Promise.all([publishThresholdEvent(crossing), publishThresholdEvent(crossing)]);
    expect(again.map((outcome) => outcome.status)).toEqual(["already_sent", "already_sent"]);

    // As if QStash took the event but its answer never reached us: the row is open without a message id, and the
    // re-publish sends the same deduplication id, which QStash answers with the first message.
    await db.webhookDelivery.update({
      where: { id: first.deliveryId },
      data: { status: "failed_to_queue", messageId: null, createdAt: new Date(Date.now() - 120_000) },
    });
    expect(await republishPendingThresholdEvents(appWebhookDeps())).toEqual({ attempted: 1, queued: 1 });
    await qstash.idle();
    expect(receiver.received).toHaveLength(1);
    expect(await deliveryRow(first.deliveryId)).toMatchObject({ status: "queued", messageId: first.messageId });

    // Another month is another event.
    const december = await publishThresholdEvent({ ...crossing, period: "2026-12" });
    expect(december.status).toBe("queued");
    await qstash.idle();
    expect(receiver.received).toHaveLength(2);
  });

  it("is published again by the hourly sync's last step when QStash could not take it at the crossing", async () => {
    const { userId } = await userWithWebhook();
    const crossing = { userId, threshold: 80 as const, used: 80, limit: 100, period: "2026-11", at: AT };
    const first = await publishThresholdEvent(crossing);
    if (first.status !== "queued") throw new Error(`not queued: ${JSON.stringify(first)}`);
    await qstash.idle();
    receiver.received.length = 0;
    // As if QStash had been down at the crossing: the row waits, unpublished, for the next sync.
    await db.webhookDelivery.update({
      where: { id: first.deliveryId },
      data: { status: "failed_to_queue", messageId: null, createdAt: new Date(Date.now() - 120_000) },
    });

    vi.spyOn(console, "info").mockImplementation(() => {});
    const body = "{}";
    const signature = await signQstash({ key: raw.QSTASH_CURRENT_SIGNING_KEY!, url: syncUrl, body });
    const response = await fetch(`${cron.origin}${SYNC_ROUTE_PATH}`, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "Upstash-Signature": signature,
        "Upstash-Message-Id": "msg_hourly",
      },
      body,
    });
    expect(response.status).toBe(200);
    expect(await deliveryRow(first.deliveryId)).toMatchObject({ status: "queued", messageId: first.messageId });
  });

  it("sends exactly one signed 80 % and one 100 % event when 300 concurrent API calls cross a 250-call limit", async () => {
    const { userId, secret } = await userWithWebhook();
    await setMonthlyLimit(getRedis(), db, userId, 250);
    const { key } = await createTestApiKey(db, userId);
    const { sheetId } = await createTestSheet(db, userId);
    const call = () =>
      sheetLoader({
        request: new Request(`http://localhost/api/v1/sheets/${sheetId}`, {
          headers: { Authorization: `Bearer ${key}` },
        }),
        params: { sheetId },
        context: {},
      }).then((response) => response.status);

    vi.spyOn(console, "info").mockImplementation(() => {});
    const statuses = await Promise.all(Array.from({ length: 300 }, call));
    expect(statuses.filter((status) => status === 200)).toHaveLength(250);
    // The crossing calls publish without making their callers wait: give them a moment, then let QStash deliver.
    await vi.waitFor(() => expect(receiver.received.length).toBeGreaterThanOrEqual(2), { timeout: 10_000 });
    await qstash.idle();

    const period = periodOf(new Date());
    const events = receiver.received.map(({ body }) => JSON.parse(body));
    expect(
      events
        .map(({ threshold, used, limit, period: p, type }) => ({ type, threshold, used, limit, p }))
        .sort((a, b) => a.threshold - b.threshold),
    ).toEqual([
      { type: "usage.threshold", threshold: 80, used: 200, limit: 250, p: period },
      { type: "usage.threshold", threshold: 100, used: 250, limit: 250, p: period },
    ]);
    for (const event of receiver.received) {
      expect(verifyWebhookSignature(secret, event.body, event.headers["sheetmeter-signature"] as string)).toBe(true);
    }
  });

  it("records a failure once QStash's retries are spent, with the receiver's last status", async () => {
    const { userId } = await userWithWebhook();
    receiver.answerWith(500);
    const outcome = await sendTestEvent(userId);
    if (outcome.status !== "queued") throw new Error("not queued");
    await qstash.idle();

    expect(receiver.received).toHaveLength(WEBHOOK_RETRIES + 1);
    expect(JSON.parse(receiver.received[0].body)).toMatchObject({ type: "webhook.test" });
    expect(await deliveryRow(outcome.deliveryId)).toMatchObject({
      status: "failed",
      lastHttpStatus: 500,
      attempts: WEBHOOK_RETRIES + 1,
      error: "HTTP 500: receiver broke",
      deliveredAt: null,
    });
  });

  it("signs with the new secret only, from the moment it is rotated; deleting the user deletes it all", async () => {
    const { userId, secret: old } = await userWithWebhook();
    const rotated = await rotateWebhookSecret(db, userId);
    expect(rotated).toMatch(/^whsec_/);
    expect(await sendTestEvent(userId)).toMatchObject({ status: "queued" });
    await qstash.idle();
    const [event] = receiver.received;
    const signature = event.headers["sheetmeter-signature"] as string;
    expect(verifyWebhookSignature(rotated!, event.body, signature)).toBe(true);
    expect(verifyWebhookSignature(old, event.body, signature)).toBe(false);

    await db.user.delete({ where: { id: userId } });
    expect(await db.webhookEndpoint.count({ where: { userId } })).toBe(0);
    expect(await db.webhookDelivery.count({ where: { userId } })).toBe(0);
  });

  it("publishes nothing without a webhook URL", async () => {
    const user = await createTestUser(db);
    const crossing = { userId: user.id, threshold: 80 as const, used: 8, limit: 10, period: "2026-11", at: AT };
    expect(await publishThresholdEvent(crossing)).toEqual({ status: "no_endpoint" });
    expect(await sendTestEvent(user.id)).toEqual({ status: "no_endpoint" });
    expect(await db.webhookDelivery.count({ where: { userId: user.id } })).toBe(0);
  });

  it("records 'failed to queue' within its deadline when QStash does not answer, and never throws", async () => {
    const { userId } = await userWithWebhook();
    // Accepts connections and never answers: the worst kind of outage for a caller without a deadline.
    const silent = http.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const hung = new Client({
      baseUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`,
      token: "t",
      devMode: false,
      enableTelemetry: false,
      retry: false,
    });
    try {
      const started = Date.now();
      const outcome = await publishThresholdEvent(
        { userId, threshold: 80, used: 80, limit: 100, period: "2026-11", at: AT },
        { db, qstash: hung, appUrl: served.origin, publishDeadlineMs: 300 },
      );
      expect(Date.now() - started).toBeLessThan(2000);
      expect(outcome).toMatchObject({ status: "failed_to_queue", error: "QStash did not answer within 300 ms" });
      if (outcome.status !== "failed_to_queue" || !outcome.deliveryId) throw new Error("not recorded");
      expect(await deliveryRow(outcome.deliveryId)).toMatchObject({ status: "failed_to_queue", messageId: null });

      // The hourly re-publish (through the working QStash) sends it.
      await db.webhookDelivery.update({
        where: { id: outcome.deliveryId },
        data: { createdAt: new Date(Date.now() - 120_000) },
      });
      expect(await republishPendingThresholdEvents(appWebhookDeps())).toEqual({ attempted: 1, queued: 1 });
      await qstash.idle();
      expect(receiver.received).toHaveLength(1);
      expect(await deliveryRow(outcome.deliveryId)).toMatchObject({ status: "delivered", lastHttpStatus: 200 });
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});

describe("deleting the account", () => {
  it("cancels its events still waiting in QStash, so the receiver hears nothing more", async () => {
    // A stand-in of its own whose retries wait long enough for the deletion to come between two attempts.
    const slow = await startQstash({
      token: raw.QSTASH_TOKEN!,
      currentSigningKey: raw.QSTASH_CURRENT_SIGNING_KEY!,
      nextSigningKey: raw.QSTASH_NEXT_SIGNING_KEY!,
      retryDelayMs: () => 1500,
      maxRetryDelayMs: 1500,
      log: () => {},
    });
    try {
      const client = new Client({
        baseUrl: slow.url,
        token: raw.QSTASH_TOKEN!,
        devMode: false,
        enableTelemetry: false,
      });
      const { userId } = await userWithWebhook();
      receiver.answerWith(503);
      const outcome = await sendTestEvent(userId, { db, qstash: client, appUrl: served.origin });
      expect(outcome.status).toBe("queued");
      await vi.waitFor(() => expect(receiver.received).toHaveLength(1), { timeout: 5_000 });

      const deleted = await deleteAccount({ db, redis: getRedis(), qstash: client }, userId);
      expect(deleted.deleted.webhookDeliveries).toBe(1);
      const messageId = outcome.status === "queued" ? outcome.messageId : "";
      expect(slow.messages().find((m) => m.messageId === messageId)?.state).toBe("cancelled");
      // Two retry delays later, still the one attempt made before the deletion.
      await new Promise((resolve) => setTimeout(resolve, 3200));
      expect(receiver.received).toHaveLength(1);
    } finally {
      await slow.close();
    }
  });
});

describe("the hourly re-publish while QStash is still down", () => {
  it("stops at the first publish that fails, so the sync's request waits out one deadline, not one per event", async () => {
    let requests = 0;
    const silent = http.createServer(() => {
      requests++;
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const hung = new Client({
      baseUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`,
      token: "t",
      devMode: false,
      enableTelemetry: false,
      retry: false,
    });
    const deps = { db, qstash: hung, appUrl: served.origin, publishDeadlineMs: 200 };
    try {
      const ids: string[] = [];
      for (const threshold of [80, 100] as const) {
        const { userId } = await userWithWebhook();
        const outcome = await publishThresholdEvent(
          { userId, threshold, used: threshold, limit: 100, period: "2026-11", at: AT },
          deps,
        );
        if (outcome.status !== "failed_to_queue" || !outcome.deliveryId) throw new Error("not recorded");
        ids.push(outcome.deliveryId);
      }
      await db.webhookDelivery.updateMany({
        where: { id: { in: ids } },
        data: { createdAt: new Date(Date.now() - 120_000) },
      });
      requests = 0;

      const republished = await republishPendingThresholdEvents(deps);
      expect(republished.queued).toBe(0);
      expect(requests).toBe(1);

      // Once QStash answers again, the next run sends both.
      expect(await republishPendingThresholdEvents(appWebhookDeps())).toMatchObject({ queued: 2 });
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});

describe("the delivery-status route", () => {
  const callbackUrl = (query: string) => `${served.origin}${WEBHOOK_STATUS_ROUTE_PATH}${query}`;
  const post = (url: string, body: string, signature?: string) =>
    fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...(signature && { "Upstash-Signature": signature }) },
      body,
    });

  it("refuses a forged callback with 401 and changes nothing", async () => {
    const { userId } = await userWithWebhook();
    receiver.answerWith(503);
    const outcome = await sendTestEvent(userId, { ...appWebhookDeps(), publishDeadlineMs: 2000 });
    if (outcome.status !== "queued") throw new Error("not queued");
    await qstash.idle();
    const before = await deliveryRow(outcome.deliveryId);
    expect(before.status).toBe("failed");

    const url = callbackUrl(`?event=${outcome.eventId}`);
    const body = JSON.stringify({ status: 200, maxRetries: 4, sourceMessageId: outcome.messageId });
    const forged = await signQstash({ key: "not-the-signing-key", url, body });
    const response = await post(url, body, forged);
    expect(response.status).toBe(401);
    expect(response.headers.get("Content-Type")).toBe("application/problem+json");
    expect(await post(url, body)).toHaveProperty("status", 401);
    // Signed with the real key but for another event's URL: the subject does not match.
    const elsewhere = await signQstash({ key: raw.QSTASH_CURRENT_SIGNING_KEY!, url: callbackUrl("?event=x"), body });
    expect(await post(url, body, elsewhere)).toHaveProperty("status", 401);
    expect(await deliveryRow(outcome.deliveryId)).toEqual(before);
  });

  it("takes a callback carrying a large receiver answer, and refuses one past 1 MB with 413", async () => {
    const url = callbackUrl("");
    // A receiver that answered 300 KB of text: QStash hands it back base64, 400 KB, far past the cron route's 64 KB.
    const large = JSON.stringify({
      status: 200,
      maxRetries: 3,
      sourceMessageId: "msg_large_answer",
      body: Buffer.from("x".repeat(300 * 1024)).toString("base64"),
    });
    const sign = (body: string) => signQstash({ key: raw.QSTASH_CURRENT_SIGNING_KEY!, url, body });
    const taken = await post(url, large, await sign(large));
    expect(taken.status).toBe(200);
    expect(await taken.json()).toEqual({ recorded: false });

    const huge = JSON.stringify({ status: 200, maxRetries: 3, sourceMessageId: "m", body: "x".repeat(1024 * 1024) });
    const refused = await post(url, huge, await sign(huge));
    expect(refused.status).toBe(413);
    expect(refused.headers.get("Content-Type")).toBe("application/problem+json");
  });

  it("acknowledges an unknown message with 200 and no effect, and answers a bad body with 400", async () => {
    const url = callbackUrl("");
    const unknown = JSON.stringify({ status: 200, maxRetries: 3, sourceMessageId: "msg_unknown" });
    const ok = await post(url, unknown, await signQstash({ key: raw.QSTASH_CURRENT_SIGNING_KEY!, url, body: unknown }));
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ recorded: false });

    const bad = JSON.stringify({ hello: "world" });
    const refused = await post(url, bad, await signQstash({ key: raw.QSTASH_CURRENT_SIGNING_KEY!, url, body: bad }));
    expect(refused.status).toBe(400);
    expect(refused.headers.get("Content-Type")).toBe("application/problem+json");
  });

  it("answers 503 with Retry-After when Postgres is down, and takes QStash's retry of the same token once it is back", async () => {
    const url = callbackUrl("");
    const body = JSON.stringify({ status: 200, maxRetries: 3, sourceMessageId: "msg_db_down" });
    const signature = await signQstash({ key: raw.QSTASH_CURRENT_SIGNING_KEY!, url, body });
    const down = createPrismaClient(`postgresql://postgres@127.0.0.1:${await deadPort()}/nowhere`);
    const quiet = vi.spyOn(console, "error").mockImplementation(() => {});
    setDbForTests(down);
    try {
      const refused = await post(url, body, signature);
      expect(refused.status).toBe(503);
      expect(refused.headers.get("Content-Type")).toBe("application/problem+json");
      expect(refused.headers.get("Retry-After")).toBe("5");
      expect((await refused.json()).type).toMatch(/#callback-unavailable$/);
    } finally {
      setDbForTests(undefined);
      quiet.mockRestore();
      await down.$disconnect();
    }
    // The token was released, so the retry is recorded rather than taken for a replay.
    expect(await (await post(url, body, signature)).json()).toEqual({ recorded: false });
  });

  it("uses each signed token once", async () => {
    const url = callbackUrl("");
    const body = JSON.stringify({ status: 200, maxRetries: 3, sourceMessageId: "msg_replayed" });
    const signature = await signQstash({ key: raw.QSTASH_CURRENT_SIGNING_KEY!, url, body });
    expect(await (await post(url, body, signature)).json()).toEqual({ recorded: false });
    expect(await (await post(url, body, signature)).json()).toEqual({ replayed: true });
  });
});

/** A port nothing listens on: connections to it are refused at once, like a Postgres that is down. */
async function deadPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

import http from "node:http";
import type { AddressInfo } from "node:net";
import { Client, Receiver } from "@upstash/qstash";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ensureHourlySchedule, HOURLY_CRON } from "../scripts/lib/schedule";
import { startQstash, type QstashServer } from "./qstash";

const token = "qstash-test-token";
const currentSigningKey = "sig_test_current_0123456789abcdef";
const nextSigningKey = "sig_test_next_0123456789abcdef0123";

interface Received {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
}

/** A destination that records every delivery and answers with whatever status the test queues up. */
async function startDestination() {
  const received: Received[] = [];
  const statuses: number[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    received.push({
      method: req.method ?? "",
      path: req.url ?? "",
      headers: req.headers,
      body: Buffer.concat(chunks).toString("utf8"),
      at: Date.now(),
    });
    res.writeHead(statuses.shift() ?? 200).end("ok");
    for (const waiter of waiters.filter((w) => received.length >= w.count)) waiter.resolve();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    respondWith: (...next: number[]) => statuses.push(...next),
    waitFor: (count: number) =>
      new Promise<void>((resolve) => {
        if (received.length >= count) resolve();
        else waiters.push({ count, resolve });
      }),
    reset: () => {
      received.length = 0;
      statuses.length = 0;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

let qstash: QstashServer;
let destination: Awaited<ReturnType<typeof startDestination>>;
let client: Client;
const logLines: string[] = [];
const receiver = new Receiver({ currentSigningKey, nextSigningKey, devMode: false });

beforeAll(async () => {
  destination = await startDestination();
  qstash = await startQstash({
    token,
    currentSigningKey,
    nextSigningKey,
    retryDelayMs: () => 20,
    maxRetryDelayMs: 100,
    log: (line) => logLines.push(line),
  });
  client = new Client({ baseUrl: qstash.url, token, devMode: false, enableTelemetry: false, retry: false });
});

afterEach(async () => {
  await qstash.idle();
  destination.reset();
});

afterAll(async () => {
  await qstash.close();
  await destination.close();
});

describe("publishing", () => {
  it("delivers a JSON message that the SDK's Receiver accepts, with forwarded headers", async () => {
    const url = `${destination.url}/api/cron/update-usage?cursor=0`;
    const { messageId } = await client.publishJSON({
      url,
      body: { cursor: "0", note: "grüße ✓" },
      headers: { "X-Run-Kind": "continuation" },
    });
    await destination.waitFor(1);

    const [delivery] = destination.received;
    expect(delivery.method).toBe("POST");
    expect(delivery.path).toBe("/api/cron/update-usage?cursor=0");
    expect(JSON.parse(delivery.body)).toEqual({ cursor: "0", note: "grüße ✓" });
    expect(delivery.headers["content-type"]).toBe("application/json");
    expect(delivery.headers["x-run-kind"]).toBe("continuation");
    expect(delivery.headers["upstash-message-id"]).toBe(messageId);
    expect(delivery.headers["upstash-retried"]).toBe("0");
    expect(delivery.headers["upstash-schedule-id"]).toBeUndefined();

    const signature = String(delivery.headers["upstash-signature"]);
    await expect(receiver.verify({ signature, body: delivery.body, url })).resolves.toBe(true);
    expect(logLines.some((line) => line.includes(messageId) && !line.includes(signature))).toBe(true);
  });

  it("signs so that a tampered body or another URL is rejected", async () => {
    const url = `${destination.url}/api/cron/update-usage`;
    await client.publishJSON({ url, body: { cursor: "0" } });
    await destination.waitFor(1);
    const [delivery] = destination.received;
    const signature = String(delivery.headers["upstash-signature"]);

    await expect(receiver.verify({ signature, body: '{"cursor":"1"}', url })).rejects.toThrow(/body hash/);
    await expect(receiver.verify({ signature, body: delivery.body, url: `${url}x` })).rejects.toThrow(/subject/);
    const stranger = new Receiver({ currentSigningKey: "other-a", nextSigningKey: "other-b", devMode: false });
    await expect(stranger.verify({ signature, body: delivery.body, url })).rejects.toThrow();
  });

  it("honours Upstash-Method", async () => {
    await client.publish({ url: `${destination.url}/put`, method: "PUT", body: "plain" });
    await destination.waitFor(1);
    expect(destination.received[0]).toMatchObject({ method: "PUT", body: "plain" });
  });

  it("retries a failed delivery under the same message id with Upstash-Retried counting up", async () => {
    destination.respondWith(500);
    const { messageId } = await client.publishJSON({ url: `${destination.url}/flaky`, body: { n: 1 } });
    await destination.waitFor(2);

    const [first, second] = destination.received;
    expect(first.headers["upstash-retried"]).toBe("0");
    expect(second.headers["upstash-retried"]).toBe("1");
    expect(second.headers["upstash-message-id"]).toBe(messageId);
    expect(second.body).toBe(first.body);
    await qstash.idle();
    expect(qstash.messages().find((m) => m.messageId === messageId)).toMatchObject({
      state: "delivered",
      attempts: [
        { retried: 0, status: 500 },
        { retried: 1, status: 200 },
      ],
    });
  });

  it("stops after the message's retry count", async () => {
    destination.respondWith(503, 503, 503, 503, 503);
    const { messageId } = await client.publishJSON({ url: `${destination.url}/down`, body: {}, retries: 2 });
    await destination.waitFor(3);
    await qstash.idle();
    await new Promise((resolve) => setTimeout(resolve, 100));

    expect(destination.received.map((r) => r.headers["upstash-retried"])).toEqual(["0", "1", "2"]);
    expect(qstash.messages().find((m) => m.messageId === messageId)?.state).toBe("failed");
  });

  it("retries when the destination cannot be reached", async () => {
    const { messageId } = await client.publishJSON({ url: "http://127.0.0.1:9/nowhere", body: {}, retries: 1 });
    await qstash.idle();
    const message = qstash.messages().find((m) => m.messageId === messageId);
    expect(message?.state).toBe("failed");
    expect(message?.attempts).toHaveLength(2);
    expect(message?.attempts[0].error).toBeTruthy();
  });

  it("waits for the delay before the first attempt", async () => {
    const publishedAt = Date.now();
    await client.publishJSON({ url: `${destination.url}/later`, body: {}, delay: 1 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(destination.received).toHaveLength(0);
    await destination.waitFor(1);
    expect(destination.received[0].at - publishedAt).toBeGreaterThanOrEqual(950);
  });

  it("deduplicates by Upstash-Deduplication-Id", async () => {
    const url = `${destination.url}/dedup`;
    const first = await client.publishJSON({ url, body: {}, deduplicationId: "run-42" });
    const second = await client.publishJSON({ url, body: {}, deduplicationId: "run-42" });
    expect(second).toMatchObject({ messageId: first.messageId, deduplicated: true });
    await qstash.idle();
    expect(destination.received).toHaveLength(1);
  });

  it("refuses a wrong token with 401", async () => {
    const intruder = new Client({ baseUrl: qstash.url, token: "wrong", devMode: false, retry: false });
    await expect(intruder.publishJSON({ url: `${destination.url}/x`, body: {} })).rejects.toMatchObject({
      status: 401,
    });
    const response = await fetch(`${qstash.url}/v2/schedules`);
    expect(response.status).toBe(401);
  });
});

describe("schedules", () => {
  it("creates, lists, gets, fires on the cron and deletes a schedule", async () => {
    const url = `${destination.url}/api/cron/update-usage`;
    const { scheduleId } = await client.schedules.create({ destination: url, cron: "0 * * * *" });

    expect((await client.schedules.list()).map((s) => s.scheduleId)).toContain(scheduleId);
    const schedule = await client.schedules.get(scheduleId);
    expect(schedule).toMatchObject({ scheduleId, cron: "0 * * * *", destination: url, method: "POST", retries: 3 });
    expect(new Date(schedule.nextScheduleTime ?? 0).getUTCMinutes()).toBe(0);

    await qstash.fireDueSchedules(new Date("2030-01-01T05:07:00Z"));
    expect(destination.received).toHaveLength(0);

    await qstash.fireDueSchedules(new Date("2030-01-01T06:00:20Z"));
    expect(destination.received).toHaveLength(1);
    const delivery = destination.received[0];
    expect(delivery.headers["upstash-schedule-id"]).toBe(scheduleId);
    const signature = String(delivery.headers["upstash-signature"]);
    await expect(receiver.verify({ signature, body: delivery.body, url })).resolves.toBe(true);

    // A second tick within the same minute must not fire it again.
    await qstash.fireDueSchedules(new Date("2030-01-01T06:00:40Z"));
    expect(destination.received).toHaveLength(1);

    await client.schedules.delete(scheduleId);
    await expect(client.schedules.get(scheduleId)).rejects.toMatchObject({ status: 404 });
    await qstash.fireDueSchedules(new Date("2030-01-01T07:00:00Z"));
    expect(destination.received).toHaveLength(1);
  });

  it("updates a schedule in place when created again with the same scheduleId", async () => {
    const url = `${destination.url}/every`;
    await client.schedules.create({ destination: url, cron: "*/5 * * * *", scheduleId: "stable" });
    await client.schedules.create({ destination: url, cron: "0 0 * * *", scheduleId: "stable" });
    const matching = (await client.schedules.list()).filter((s) => s.scheduleId === "stable");
    expect(matching).toHaveLength(1);
    expect(matching[0].cron).toBe("0 0 * * *");
    await client.schedules.delete("stable");
  });

  it("keeps exactly one hourly schedule per destination however often it is ensured", async () => {
    const url = `${destination.url}/api/cron/update-usage`;
    const other = `${destination.url}/elsewhere`;
    const { scheduleId: handMade } = await client.schedules.create({ destination: url, cron: "30 * * * *" });
    const { scheduleId: unrelated } = await client.schedules.create({ destination: other, cron: HOURLY_CRON });

    const first = await ensureHourlySchedule(client, url);
    const second = await ensureHourlySchedule(client, url);
    expect(second).toBe(first);
    const schedules = await client.schedules.list();
    expect(schedules.filter((s) => s.destination === url).map((s) => [s.scheduleId, s.cron])).toEqual([
      [first, HOURLY_CRON],
    ]);
    expect(schedules.map((s) => s.scheduleId)).not.toContain(handMade);
    expect(schedules.map((s) => s.scheduleId)).toContain(unrelated);

    await qstash.fireDueSchedules(new Date("2031-03-04T10:00:00Z"));
    const deliveries = destination.received.filter((r) => r.path === "/api/cron/update-usage");
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]).toMatchObject({ body: "{}" });
    expect(deliveries[0].headers["upstash-schedule-id"]).toBe(first);
    await client.schedules.delete(first);
    await client.schedules.delete(unrelated);
  });

  it("rejects a cron that is not five valid fields", async () => {
    await expect(
      client.schedules.create({ destination: `${destination.url}/x`, cron: "0 0 * * * *" }),
    ).rejects.toMatchObject({ status: 400 });
    await expect(
      client.schedules.create({ destination: `${destination.url}/x`, cron: "61 * * * *" }),
    ).rejects.toMatchObject({
      status: 400,
    });
  });
});

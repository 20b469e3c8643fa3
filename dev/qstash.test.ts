import http from "node:http";
import type { AddressInfo } from "node:net";
import { Client, Receiver } from "@upstash/qstash";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ensureHourlySchedule, HOURLY_CRON } from "../scripts/lib/schedule";
import { qstashBackoff, startQstash, type QstashOptions, type QstashServer } from "./qstash";
import { compileRetryDelay } from "./qstash/retry-delay-expression";

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

/** What the destination answers: a status, or a status with headers and a body. */
type Answer = number | { status: number; headers?: Record<string, string>; body?: string };

/** A destination that records every delivery and answers with whatever the test queues up (200 "ok" otherwise). */
async function startDestination() {
  const received: Received[] = [];
  const statuses: Answer[] = [];
  // Answers for one path only, so a callback landing on this server cannot take an answer meant for a delivery.
  const pathStatuses = new Map<string, Answer[]>();
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
    const answer = pathStatuses.get((req.url ?? "").split("?")[0])?.shift() ?? statuses.shift() ?? 200;
    const { status, headers, body } = typeof answer === "number" ? { status: answer } : answer;
    res.writeHead(status, headers).end(body ?? "ok");
    for (const waiter of waiters.filter((w) => received.length >= w.count)) waiter.resolve();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    respondWith: (...next: Answer[]) => statuses.push(...next),
    respondAt: (path: string, ...next: Answer[]) =>
      pathStatuses.set(path, [...(pathStatuses.get(path) ?? []), ...next]),
    /** The deliveries that reached `path` (without its query). */
    at: (path: string) => received.filter((r) => r.path.split("?")[0] === path),
    waitFor: (count: number) =>
      new Promise<void>((resolve) => {
        if (received.length >= count) resolve();
        else waiters.push({ count, resolve });
      }),
    reset: () => {
      received.length = 0;
      statuses.length = 0;
      pathStatuses.clear();
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

  it("answers a duplicate publish 202 with the first message's id, by id or by content", async () => {
    const url = `${destination.url}/dedup-status`;
    const publish = (headers: Record<string, string>) =>
      fetch(`${qstash.url}/v2/publish/${url}`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers },
        body: '{"n":1}',
      });
    const first = await publish({ "Upstash-Deduplication-Id": "status-check" });
    const again = await publish({ "Upstash-Deduplication-Id": "status-check" });
    expect(first.status).toBe(201);
    expect(again.status).toBe(202);
    const { messageId } = (await first.json()) as { messageId: string };
    expect(await again.json()).toEqual({ messageId, url, deduplicated: true });

    const byContent = await client.publishJSON({ url, body: { n: 2 }, contentBasedDeduplication: true });
    const sameContent = await client.publishJSON({ url, body: { n: 2 }, contentBasedDeduplication: true });
    expect(sameContent).toMatchObject({ messageId: byContent.messageId, deduplicated: true });
    await qstash.idle();
    expect(destination.at("/dedup-status")).toHaveLength(2);
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

/** A stand-in of its own for a test that needs other retry options than the shared one; closed afterwards. */
async function withStandIn(
  options: Partial<QstashOptions>,
  run: (own: QstashServer, ownClient: Client) => Promise<void>,
) {
  const own = await startQstash({ token, currentSigningKey, nextSigningKey, log: () => {}, ...options });
  try {
    await run(own, new Client({ baseUrl: own.url, token, devMode: false, enableTelemetry: false, retry: false }));
  } finally {
    await own.close();
  }
}

const gaps = (deliveries: Received[]) => deliveries.slice(1).map((d, i) => d.at - deliveries[i].at);

describe("retry spacing", () => {
  it("offers QStash's documented backoff, min(1 day, e^(2.5·n)) s: 12 s, 2m28s, 30m8s, 6h7m6s, then a day", () => {
    expect([0, 1, 2, 3, 4, 5].map((retried) => Math.floor(qstashBackoff(retried) / 1000))).toEqual([
      12, 148, 1808, 22026, 86400, 86400,
    ]);
  });

  it("waits as long as a 503's Retry-After asks when nothing caps it", async () => {
    await withStandIn({ retryDelayMs: () => 20 }, async (_own, ownClient) => {
      destination.respondWith({ status: 503, headers: { "Retry-After": "1" } });
      await ownClient.publishJSON({ url: `${destination.url}/busy`, body: {} });
      await destination.waitFor(2);
      expect(gaps(destination.at("/busy"))[0]).toBeGreaterThanOrEqual(950);
    });
  });

  it("reads the other documented forms: a Go duration, a date, X-RateLimit-Reset on a 429", async () => {
    await withStandIn({ retryDelayMs: () => 5_000 }, async (own, ownClient) => {
      destination.respondWith(
        { status: 429, headers: { "X-RateLimit-Reset": "300ms" } },
        { status: 503, headers: { "Retry-After": new Date(Date.now() + 2500).toUTCString() } },
      );
      await ownClient.publishJSON({ url: `${destination.url}/limited`, body: {} });
      await destination.waitFor(3);
      const [first, second] = gaps(destination.at("/limited"));
      expect(first).toBeGreaterThanOrEqual(280);
      expect(first).toBeLessThan(2_000);
      // An HTTP date has whole seconds and was set before the first attempt: the wait lands between 1.1 and 2.5 s.
      expect(second).toBeGreaterThanOrEqual(900);
      expect(second).toBeLessThan(3_000);
      await own.idle();
    });
  });

  it("caps every wait at maxRetryDelayMs, so a route's Retry-After: 30 costs a test nothing", async () => {
    destination.respondWith({ status: 503, headers: { "Retry-After": "30" } });
    const publishedAt = Date.now();
    await client.publishJSON({ url: `${destination.url}/sync-like`, body: {} });
    await destination.waitFor(2);
    expect(Date.now() - publishedAt).toBeLessThan(2_000);
    expect(logLines.some((line) => /retry 1\/3 in 100ms \(asked by the answer\)/.test(line))).toBe(true);
  });

  it("spaces retries by the publisher's Upstash-Retry-Delay expression of `retried`", async () => {
    await withStandIn({ retryDelayMs: () => 5_000 }, async (own, ownClient) => {
      destination.respondWith(500, 500, 500);
      const { messageId } = await ownClient.publishJSON({
        url: `${destination.url}/expression`,
        body: {},
        retries: 3,
        retryDelay: "max(200, pow(2, retried) * 150)",
      });
      await destination.waitFor(4);
      const [first, second, third] = gaps(destination.at("/expression"));
      expect(first).toBeGreaterThanOrEqual(190); // max(200, 150)
      expect(second).toBeGreaterThanOrEqual(290); // 300
      expect(third).toBeGreaterThanOrEqual(590); // 600
      expect(third).toBeLessThan(3_000);
      await own.idle();
      expect(own.messages().find((m) => m.messageId === messageId)).toMatchObject({
        state: "delivered",
        retryDelayExpression: "max(200, pow(2, retried) * 150)",
      });
    });
  });

  it("refuses a retry delay that is not QStash's arithmetic, and never evaluates it as code", async () => {
    for (const retryDelay of ["process.exit(1)", "constructor(1)", "1000 +", "pow(2)", "retried; 1"]) {
      await expect(client.publishJSON({ url: `${destination.url}/never`, body: {}, retryDelay })).rejects.toMatchObject(
        { status: 400 },
      );
    }
    const delay = compileRetryDelay(
      "1000 * (1 + retried) - -abs(-1) + floor(sqrt(16)) % 3 + ceil(exp(0)) + round(0.4)",
    );
    expect([0, 1, 2].map(delay)).toEqual([1003, 2003, 3003]);
    expect(compileRetryDelay("min(1, 2, 3) - 10")(0)).toBe(0);
    expect(destination.at("/never")).toHaveLength(0);
  });

  it("does not retry a 489 with Upstash-NonRetryable-Error: true, and does retry a plain 489", async () => {
    destination.respondWith({ status: 489, headers: { "Upstash-NonRetryable-Error": "true" }, body: "bad payload" });
    const { messageId } = await client.publishJSON({ url: `${destination.url}/final`, body: {}, retries: 3 });
    await qstash.idle();
    expect(qstash.messages().find((m) => m.messageId === messageId)).toMatchObject({
      state: "failed",
      attempts: [{ retried: 0, status: 489 }],
    });

    destination.respondWith(489);
    await client.publishJSON({ url: `${destination.url}/plain-489`, body: {}, retries: 3 });
    await qstash.idle();
    expect(destination.at("/plain-489").map((r) => r.headers["upstash-retried"])).toEqual(["0", "1"]);
  });
});

interface CallbackBody {
  status: number;
  header: Record<string, string[]>;
  body: string;
  retried?: number;
  maxRetries: number;
  dlqId?: string;
  sourceMessageId: string;
  url: string;
  method: string;
  sourceHeader: Record<string, string[]>;
  sourceBody: string;
  notBefore: number;
  createdAt: number;
  callerIP: string;
}

describe("callbacks", () => {
  const decode = (base64: string) => Buffer.from(base64, "base64").toString("utf8");

  it("POSTs the destination's answer to Upstash-Callback, signed for the callback URL", async () => {
    const url = `${destination.url}/work`;
    const callback = `${destination.url}/callback?kind=done`;
    destination.respondWith({ status: 200, headers: { "X-Handled-By": "worker-1" }, body: '{"done":true}' });
    const { messageId } = await client.publishJSON({
      url,
      body: { job: 7 },
      headers: { "X-Job": "seven", "Upstash-Callback-Forward-X-Callback-Token": "cb-secret" },
      callback,
    });
    await destination.waitFor(2);
    await qstash.idle();

    const [delivery] = destination.at("/callback");
    expect(delivery.method).toBe("POST");
    expect(delivery.headers["content-type"]).toBe("application/json");
    expect(delivery.headers["x-callback-token"]).toBe("cb-secret");
    expect(delivery.headers["upstash-message-id"]).not.toBe(messageId);
    const signature = String(delivery.headers["upstash-signature"]);
    await expect(receiver.verify({ signature, body: delivery.body, url: callback })).resolves.toBe(true);
    await expect(receiver.verify({ signature, body: delivery.body, url })).rejects.toThrow(/subject/);

    const body = JSON.parse(delivery.body) as CallbackBody;
    expect(body).toMatchObject({
      status: 200,
      maxRetries: 3,
      sourceMessageId: messageId,
      url,
      method: "POST",
      sourceHeader: { "Content-Type": ["application/json"], "X-Job": ["seven"] },
      callerIP: expect.stringContaining("127.0.0.1"),
    });
    expect(body.header["X-Handled-By"]).toEqual(["worker-1"]);
    expect(decode(body.body)).toBe('{"done":true}');
    expect(JSON.parse(decode(body.sourceBody))).toEqual({ job: 7 });
    expect(body.createdAt).toBeTypeOf("number");
    expect(body.notBefore).toBeGreaterThanOrEqual(body.createdAt);
    // QStash leaves `retried` out while it is 0, and sends no dlqId for a callback.
    expect(body).not.toHaveProperty("retried");
    expect(body).not.toHaveProperty("dlqId");
    expect(qstash.messages().find((m) => m.callbackFor?.sourceMessageId === messageId)).toMatchObject({
      state: "delivered",
      callbackFor: { kind: "callback" },
    });
  });

  it("reports every answer to the callback and the final failure once to the failure callback", async () => {
    const url = `${destination.url}/doomed`;
    const callback = `${destination.url}/every-answer`;
    const failureCallback = `${destination.url}/failed`;
    destination.respondAt("/doomed", 500, { status: 502, body: "still down" });
    const { messageId } = await client.publishJSON({ url, body: { try: 1 }, retries: 1, callback, failureCallback });
    await destination.waitFor(5); // two attempts, a callback for each, one failure callback
    await qstash.idle();

    const answers = destination.at("/every-answer").map((r) => JSON.parse(r.body) as CallbackBody);
    expect(answers.map((a) => [a.status, a.retried ?? 0, a.maxRetries])).toEqual([
      [500, 0, 1],
      [502, 1, 1],
    ]);
    const failures = destination.at("/failed");
    expect(failures).toHaveLength(1);
    const signature = String(failures[0].headers["upstash-signature"]);
    await expect(receiver.verify({ signature, body: failures[0].body, url: failureCallback })).resolves.toBe(true);
    const failure = JSON.parse(failures[0].body) as CallbackBody;
    expect(failure).toMatchObject({ status: 502, retried: 1, maxRetries: 1, sourceMessageId: messageId, url });
    expect(failure.dlqId).toMatch(/^\d+-\d+$/);
    expect(decode(failure.body)).toBe("still down");
    expect(qstash.messages().find((m) => m.messageId === messageId)?.state).toBe("failed");
  });

  it("sends a non-retryable 489 straight to the failure callback", async () => {
    const failureCallback = `${destination.url}/gave-up`;
    destination.respondWith({ status: 489, headers: { "Upstash-NonRetryable-Error": "true" } });
    const { messageId } = await client.publishJSON({
      url: `${destination.url}/rejects`,
      body: {},
      retries: 3,
      failureCallback,
    });
    await destination.waitFor(2);
    await qstash.idle();
    const [failure] = destination.at("/gave-up").map((r) => JSON.parse(r.body) as CallbackBody);
    expect(failure).toMatchObject({ status: 489, maxRetries: 3, sourceMessageId: messageId });
    expect(failure.header["Upstash-Nonretryable-Error"]).toEqual(["true"]);
    expect(destination.at("/rejects")).toHaveLength(1);
  });

  it("sends no failure callback for a message that was delivered", async () => {
    await client.publishJSON({ url: `${destination.url}/fine`, body: {}, failureCallback: `${destination.url}/no` });
    await qstash.idle();
    expect(destination.at("/fine")).toHaveLength(1);
    expect(destination.at("/no")).toHaveLength(0);
  });
});

describe("labels and the messages API", () => {
  it("keeps Upstash-Label on a message and shows it through messages.get while it waits", async () => {
    await withStandIn({ retryDelayMs: () => 20 }, async (own, ownClient) => {
      const url = `${destination.url}/labelled`;
      const { messageId } = await ownClient.publishJSON({
        url,
        body: { a: 1 },
        delay: 1,
        label: ["usage-alert", "user-42"],
        headers: { "x-alert-kind": "threshold" },
      });
      const message = await ownClient.messages.get(messageId);
      expect(message).toMatchObject({
        messageId,
        url,
        method: "POST",
        label: "usage-alert",
        labels: ["usage-alert", "user-42"],
        header: { "Content-Type": ["application/json"], "X-Alert-Kind": ["threshold"] },
        body: '{"a":1}',
        maxRetries: 3,
      });
      await own.idle();
      expect(own.messages().find((m) => m.messageId === messageId)?.labels).toEqual(["usage-alert", "user-42"]);
      // Delivered: QStash no longer holds it as a message.
      await expect(ownClient.messages.get(messageId)).rejects.toMatchObject({ status: 404 });
    });
  });
});

describe("cancelling a message", () => {
  it("never delivers a message cancelled while it waits, and answers 404 for one it no longer holds", async () => {
    await withStandIn({ retryDelayMs: () => 20 }, async (own, ownClient) => {
      const url = `${destination.url}/cancelled`;
      const { messageId } = await ownClient.publishJSON({ url, body: { a: 1 }, delay: 1 });
      expect(await ownClient.messages.cancel(messageId)).toEqual({ cancelled: 1 });
      await own.idle();
      await new Promise((resolve) => setTimeout(resolve, 1200));
      expect(destination.received.filter((r) => r.path === "/cancelled")).toHaveLength(0);
      expect(own.messages().find((m) => m.messageId === messageId)?.state).toBe("cancelled");
      await expect(ownClient.messages.cancel(messageId)).rejects.toMatchObject({ status: 404 });
      await expect(ownClient.messages.cancel("msg_unknown")).rejects.toMatchObject({ status: 404 });
    });
  });
});

describe("schedules as QStash shows them", () => {
  it("returns headers under their canonical names, no body when none was sent, labels and callbacks", async () => {
    const url = `${destination.url}/scheduled`;
    const callback = `${destination.url}/scheduled-callback`;
    const { scheduleId } = await client.schedules.create({
      destination: url,
      cron: "*/10 * * * *",
      headers: { "test-header": "test-value", "X-Run-Kind": "hourly" },
      label: "hourly-sync",
      callback,
      retryDelay: "1000",
    });
    const schedule = await client.schedules.get(scheduleId);
    expect(schedule).toMatchObject({
      scheduleId,
      header: { "Content-Type": ["application/json"], "Test-Header": ["test-value"], "X-Run-Kind": ["hourly"] },
      label: "hourly-sync",
      labels: ["hourly-sync"],
      callback,
      retryDelayExpression: "1000",
    });
    expect(schedule).not.toHaveProperty("body");

    await qstash.fireDueSchedules(new Date("2030-02-01T10:10:00Z"));
    await destination.waitFor(2);
    await qstash.idle();
    const [delivery] = destination.at("/scheduled");
    expect(delivery.headers["test-header"]).toBe("test-value");
    expect(delivery.body).toBe("");
    const fired = qstash.messages().find((m) => m.scheduleId === scheduleId);
    expect(fired?.labels).toEqual(["hourly-sync"]);
    const [reported] = destination.at("/scheduled-callback").map((r) => JSON.parse(r.body) as CallbackBody);
    expect(reported).toMatchObject({ status: 200, scheduleId, sourceMessageId: fired?.messageId });
    await client.schedules.delete(scheduleId);
  });

  it("keeps a schedule's body when one was sent", async () => {
    const { scheduleId } = await client.schedules.create({
      destination: `${destination.url}/with-body`,
      cron: "0 0 * * *",
      body: '{"kind":"daily"}',
    });
    expect((await client.schedules.get(scheduleId)).body).toBe('{"kind":"daily"}');
    await client.schedules.delete(scheduleId);
  });
});

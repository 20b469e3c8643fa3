import { randomBytes } from "node:crypto";
import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RedisRestServer } from "./redis-rest";
import { startStandInWithClient } from "./redis-rest.test-setup";

/** What Upstash's own `@upstash/redis` test suite expects of Upstash, checked against the stand-in. */
const token = "redis-rest-fidelity-token";
// Pub/sub channels are shared by all of Redis's databases, so this file's channels carry a run id.
const run = randomBytes(4).toString("hex");
let rest: RedisRestServer;
let redis: Redis;

beforeAll(async () => {
  ({ rest, redis } = await startStandInWithClient(token));
});
afterAll(() => rest.close());

/** A plain HTTP call, as a client without the SDK makes it. */
async function call(path: string, init: RequestInit & { json?: unknown; auth?: boolean } = {}) {
  const { json, auth = true, ...requestInit } = init;
  const headers = new Headers(requestInit.headers);
  if (auth) headers.set("Authorization", `Bearer ${token}`);
  const response = await fetch(`${rest.url}${path}`, {
    method: json === undefined ? (requestInit.method ?? "GET") : "POST",
    ...requestInit,
    headers,
    body: json === undefined ? requestInit.body : JSON.stringify(json),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as unknown) : null };
}

describe("replies reach the client as Redis gave them", () => {
  it("answers HGETALL (sent lowercase, as the SDK does) with the field/value array", async () => {
    await redis.hset("fid:hash", { plan: "pro", limit: 10_000 });
    expect(await redis.hgetall("fid:hash")).toEqual({ plan: "pro", limit: 10_000 });
    const { body } = await call("/", { json: ["hgetall", "fid:hash"] });
    expect(body).toEqual({ result: ["plan", "pro", "limit", "10000"] });
  });

  it("keeps a top-level OK unencoded in the base64 form, and encodes every other string", async () => {
    const base64 = { "Upstash-Encoding": "base64" };
    expect((await call("/", { json: ["SET", "fid:b64", "OK"], headers: base64 })).body).toEqual({ result: "OK" });
    expect((await call("/", { json: ["MGET", "fid:b64"], headers: base64 })).body).toEqual({ result: ["T0s="] });
    await redis.set("fid:b64", "grüße");
    const { body } = await call("/", { json: ["GET", "fid:b64"], headers: base64 });
    expect(body).toEqual({ result: Buffer.from("grüße").toString("base64") });
  });
});

describe("an error inside an array reply", () => {
  const script = "return {1, redis.error_reply('boom')}";

  it("fails the command instead of passing the error off as a string", async () => {
    await expect(redis.eval(script, [], [])).rejects.toThrow(/boom/);
    const { status, body } = await call("/", { json: ["EVAL", script, "0"] });
    expect(status).toBe(400);
    expect(body).toEqual({ error: expect.stringMatching(/boom/) });
  });

  it("fails only its own element of a pipeline or transaction", async () => {
    const commands = [
      ["SET", "fid:p", "1"],
      ["EVAL", script, "0"],
      ["INCR", "fid:p"],
    ];
    for (const path of ["/pipeline", "/multi-exec"]) {
      const { status, body } = await call(path, { json: commands });
      expect(status).toBe(200);
      expect(body).toEqual([{ result: "OK" }, { error: expect.stringMatching(/boom/) }, { result: 2 }]);
    }
    const results = await redis.pipeline().set("fid:p", 5).eval(script, [], []).get("fid:p").exec({ keepErrors: true });
    expect(results.map((r) => r.error === undefined)).toEqual([true, false, true]);
    expect(results[2].result).toBe(5);
  });
});

describe("connection state stays with its request", () => {
  it("answers SELECT as Upstash does: 0 is OK, any other index an error, and nothing switches", async () => {
    await redis.set("fid:db", "here");
    expect((await call("/", { json: ["SELECT", "0"] })).body).toEqual({ result: "OK" });
    const other = await call("/", { json: ["SELECT", "1"] });
    expect(other).toMatchObject({ status: 400, body: { error: expect.stringMatching(/out of range/) } });
    const pipeline = await call("/pipeline", {
      json: [
        ["SELECT", "2"],
        ["GET", "fid:db"],
      ],
    });
    expect(pipeline.body).toEqual([{ error: expect.stringMatching(/out of range/) }, { result: "here" }]);
    // Enough requests to land on every pooled connection.
    const reads = await Promise.all(Array.from({ length: 16 }, () => redis.get("fid:db")));
    expect(reads).toEqual(Array(16).fill("here"));
  });

  it("does not make other requests wait behind a blocking command", async () => {
    const blocked = Array.from({ length: 6 }, () => call("/", { json: ["BLPOP", "fid:empty", "2"] }));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    await Promise.all(Array.from({ length: 20 }, (_, i) => redis.set(`fid:quick:${i}`, i)));
    expect(Date.now() - started).toBeLessThan(1000);
    const answers = await Promise.all(blocked);
    expect(answers.map((answer) => answer.body)).toEqual(Array(6).fill({ result: null }));
  });

  it("hands a blocking command what another request pushes", async () => {
    const waiting = call("/", { json: ["BLPOP", "fid:queue", "5"] });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await redis.rpush("fid:queue", "job-1");
    expect((await waiting).body).toEqual({ result: ["fid:queue", "job-1"] });
  });

  it("keeps MULTI sent as a lone command from queueing other requests' commands", async () => {
    expect((await call("/", { json: ["MULTI"] })).body).toEqual({ result: "OK" });
    expect(await redis.set("fid:after-multi", "applied")).toBe("OK");
    expect(await redis.get("fid:after-multi")).toBe("applied");
  });
});

describe("subscriptions", () => {
  const settle = () => new Promise((resolve) => setTimeout(resolve, 150));

  it("streams a channel's messages to @upstash/redis's subscriber", async () => {
    const channel = `fid:${run}:news`;
    const subscriber = redis.subscribe<{ title: string } | string>([channel]);
    const counts: number[] = [];
    const messages: unknown[] = [];
    subscriber.on("subscribe", (count) => counts.push(count));
    subscriber.on("message", ({ channel: from, message }) => messages.push([from, message]));
    await expect.poll(() => counts, { timeout: 3000 }).toEqual([1]);

    await redis.publish(channel, { title: "grüße, with a comma" });
    await redis.publish(channel, "plain text");
    await expect
      .poll(() => messages, { timeout: 3000 })
      .toEqual([
        [channel, { title: "grüße, with a comma" }],
        [channel, "plain text"],
      ]);
    await subscriber.unsubscribe();
    await expect.poll(async () => (await redis.exec<[string, number]>(["PUBSUB", "NUMSUB", channel]))[1]).toBe(0);
  });

  it("streams pattern matches with the pattern and the channel", async () => {
    const pattern = `fid:${run}:user:*`;
    const subscriber = redis.psubscribe<{ greeting: string }>([pattern]);
    const seen: unknown[] = [];
    subscriber.on("pmessage", ({ pattern: matched, channel, message }) => seen.push([matched, channel, message]));
    await settle();
    await expect.poll(async () => redis.exec<number>(["PUBSUB", "NUMPAT"]), { timeout: 3000 }).toBeGreaterThan(0);
    // An object: the SDK parses every pattern message as JSON.
    await redis.publish(`fid:${run}:user:7`, { greeting: "hello" });
    await expect.poll(() => seen, { timeout: 3000 }).toEqual([[pattern, `fid:${run}:user:7`, { greeting: "hello" }]]);
    await subscriber.unsubscribe();
  });

  it("sends the stream as server-sent events to a plain client", async () => {
    const channel = `fid:${run}:sse`;
    const controller = new AbortController();
    const response = await fetch(`${rest.url}/subscribe/${channel}`, {
      headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream" },
      signal: controller.signal,
    });
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("\n\n")) text += (await reader.read()).value;
    await redis.publish(channel, "line one\nline two");
    while (!text.includes("line two\n\n")) text += (await reader.read()).value;
    expect(text).toBe(`data: subscribe,${channel},1\n\ndata: message,${channel},line one\ndata: line two\n\n`);
    controller.abort();
  });
});

describe("read-your-writes", () => {
  it("sends a fresh upstash-sync-token with every answer", async () => {
    const before = redis.readYourWritesSyncToken;
    await redis.set("fid:ryw", 1);
    const afterSet = redis.readYourWritesSyncToken;
    await redis.pipeline().incr("fid:ryw").incr("fid:ryw").exec();
    expect(afterSet).toBeTruthy();
    expect(afterSet).not.toBe(before);
    expect(redis.readYourWritesSyncToken).not.toBe(afterSet);
  });
});

describe("plain clients, as Upstash's REST API docs show them", () => {
  it("runs a command spelled in the path", async () => {
    expect((await call("/set/fid:path/bar")).body).toEqual({ result: "OK" });
    expect((await call("/get/fid:path")).body).toEqual({ result: "bar" });
    expect((await call("/mget/fid:path/fid:nothing")).body).toEqual({ result: ["bar", null] });
    expect((await call("/set/fid%3Aslash/a%2Fb", { method: "PUT" })).body).toEqual({ result: "OK" });
    expect(await redis.get("fid:slash")).toBe("a/b");
  });

  it("appends a POST body as the last argument, then the query parameters", async () => {
    const value = '{"name":"grüße","tags":["a b"]}';
    const response = await call("/set/fid:body?EX=100", { method: "POST", body: value });
    expect(response.body).toEqual({ result: "OK" });
    expect(await redis.get("fid:body")).toEqual(JSON.parse(value));
    expect(await redis.ttl("fid:body")).toBeGreaterThan(90);
  });

  it("takes the token as a _token query parameter", async () => {
    expect((await call(`/incr/fid:token?_token=${token}`, { auth: false })).body).toEqual({ result: 1 });
    expect((await call("/incr/fid:token?_token=wrong", { auth: false })).status).toBe(401);
    expect((await call("/incr/fid:token", { auth: false })).status).toBe(401);
  });

  it("reads a JSON command whatever the Content-Type, as curl -d sends it", async () => {
    for (const contentType of [undefined, "application/x-www-form-urlencoded", "text/plain"]) {
      const { status, body } = await call("/", {
        method: "POST",
        headers: contentType ? { "Content-Type": contentType } : {},
        // A byte body, unlike a string, makes fetch send no Content-Type of its own.
        body: new TextEncoder().encode(JSON.stringify(["ECHO", "hi"])),
      });
      expect({ status, body }).toEqual({ status: 200, body: { result: "hi" } });
    }
  });

  it("answers 400, not 5xx, to a path that is not valid percent-encoding", async () => {
    expect((await call("/get/%E0%A4%A")).status).toBe(400);
  });

  it("answers 405 to a method Upstash does not take", async () => {
    expect((await call("/get/fid:path", { method: "DELETE" })).status).toBe(405);
    expect((await call("/pipeline")).status).toBe(405);
  });
});

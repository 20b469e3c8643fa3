import http from "node:http";
import { Redis } from "@upstash/redis";
import pg from "pg";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createKeepAliveRequester } from "~/utils/redis-http.server";
import {
  type HttpFaultProxy,
  startHttpFaultProxy,
  startTcpFaultProxy,
  targetOf,
  type TcpFaultProxy,
} from "./helpers/fault-proxy";

/**
 * The fault proxies against the real things they will sit in front of: the Upstash REST stand-in (with the SDK's
 * own transport, the app's keep-alive transport and bare `node:http`) and Postgres (with `pg`). Each fault is
 * checked from both ends: what the client saw, and what the store actually did.
 */
const restUrl = () => process.env.UPSTASH_REDIS_REST_URL!;
const token = () => process.env.UPSTASH_REDIS_REST_TOKEN!;
const direct = () => new Redis({ url: restUrl(), token: token(), enableTelemetry: false });
let keyCounter = 0;
const freshKey = (label: string) => `fault-proxy:${label}:${++keyCounter}:${Date.now()}`;

type Outcome<T> = { ok: true; value: T } | { ok: false; error: Error };

/** Outcome of one call: its value, or the error it failed with; never throws. */
async function attempt<T>(call: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await call() };
  } catch (error) {
    return { ok: false, error: error as Error };
  }
}

/** One Upstash REST command over a fresh connection, with a client-side timeout, timed. */
function postCommand(url: string, command: unknown[], timeoutMs = 5_000) {
  const started = performance.now();
  return new Promise<{ status?: number; body?: unknown; error?: NodeJS.ErrnoException; ms: number }>((resolve) => {
    const body = JSON.stringify(command);
    const request = http.request(
      url,
      {
        method: "POST",
        agent: false,
        headers: { Authorization: `Bearer ${token()}`, "Content-Length": Buffer.byteLength(body) },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () =>
          resolve({
            status: response.statusCode,
            body: JSON.parse(Buffer.concat(chunks).toString("utf8")),
            ms: performance.now() - started,
          }),
        );
      },
    );
    request.setTimeout(timeoutMs, () => request.destroy(Object.assign(new Error("timed out"), { code: "ETIMEDOUT" })));
    request.on("error", (error) => resolve({ error, ms: performance.now() - started }));
    request.end(body);
  });
}

describe("HTTP fault proxy in front of the Redis REST endpoint", () => {
  let proxy: HttpFaultProxy;
  beforeEach(async () => {
    proxy = await startHttpFaultProxy({ target: targetOf(restUrl()) });
  });
  afterEach(() => proxy.close());

  const keepAliveClient = () =>
    new Redis(createKeepAliveRequester({ url: proxy.url, token: token(), retry: { retries: 0, backoff: () => 0 } }));
  const sdkClient = () => new Redis({ url: proxy.url, token: token(), retry: false, enableTelemetry: false });

  it("passes requests through unchanged, many on one keep-alive connection", async () => {
    const redis = keepAliveClient();
    const key = freshKey("pass");
    expect(await redis.set(key, { name: "Chloé ✓" })).toBe("OK");
    for (let i = 0; i < 8; i++) await redis.incr(`${key}:n`);
    expect(await redis.get(key)).toEqual({ name: "Chloé ✓" });
    expect(await sdkClient().get(`${key}:n`)).toBe(8);
    const stats = proxy.stats;
    expect(stats.requests).toBe(11);
    expect(stats.forwarded).toBe(11);
    expect(stats.answeredUpstream).toBe(11);
    // The keep-alive transport's ten requests shared one connection; the SDK's fetch brought its own.
    expect(stats.connections).toBe(2);
  });

  it("drops the reply of every third request through the app's keep-alive transport, and Redis did every one", async () => {
    const redis = keepAliveClient();
    const key = freshKey("drop-every-third");
    proxy.setRule((n) => (n % 3 === 0 ? "drop-reply" : "pass"));
    const outcomes: Outcome<number>[] = [];
    for (let i = 1; i <= 30; i++) outcomes.push(await attempt(() => redis.incr(key)));

    const failedCalls = outcomes.flatMap((outcome, index) => (outcome.ok ? [] : [index + 1]));
    expect(failedCalls).toEqual([3, 6, 9, 12, 15, 18, 21, 24, 27, 30]);
    expect(failedCalls.map((call) => (outcomes[call - 1] as { error: NodeJS.ErrnoException }).error.code)).toEqual(
      Array(10).fill("ECONNRESET"),
    );
    // Each answered INCR counts the unanswered ones before it: the upstream did their work.
    expect(outcomes[3]).toEqual({ ok: true, value: 4 });
    expect(await direct().get(key)).toBe(30);
    expect(proxy.stats).toMatchObject({ requests: 30, forwarded: 30, faults: { "drop-reply": 10 } });
  });

  it("shows the SDK's fetch transport resending a POST whose reply was lost, so Redis counts it twice", async () => {
    // Not the SDK's retry (it is off here): Node's fetch sends a request again, once, when a reused keep-alive
    // connection breaks before the answer. Every lost reply then costs one extra INCR, unseen by the caller.
    const redis = sdkClient();
    const key = freshKey("sdk-resend");
    proxy.setRule((n) => (n % 3 === 0 ? "drop-reply" : "pass"));
    const outcomes: Outcome<number>[] = [];
    for (let i = 1; i <= 30; i++) outcomes.push(await attempt(() => redis.incr(key)));

    expect(outcomes.filter((outcome) => !outcome.ok)).toEqual([]);
    const { requests, faults } = proxy.stats;
    expect(faults["drop-reply"]).toBeGreaterThan(0);
    expect(requests).toBe(30 + faults["drop-reply"]);
    expect(await direct().get(key)).toBe(requests);
  });

  it("resets before forwarding: the client fails and Redis never sees the request", async () => {
    const key = freshKey("reset");
    proxy.setMode("reset");
    const outcome = await attempt(() => keepAliveClient().incr(key));
    expect(outcome.ok).toBe(false);
    expect(outcome.ok || (outcome.error as NodeJS.ErrnoException).code).toBe("ECONNRESET");
    await proxy.settled();
    expect(await direct().get(key)).toBeNull();
    expect(proxy.stats).toMatchObject({ forwarded: 0, faults: { reset: 1 } });
  });

  it("resets after forwarding, without waiting for the answer: the client fails, Redis still counts", async () => {
    const key = freshKey("reset-after-forward");
    proxy.setMode("reset-after-forward");
    const outcome = await postCommand(proxy.url, ["INCR", key]);
    expect(outcome.error?.code).toBe("ECONNRESET");
    await proxy.settled();
    expect(await direct().get(key)).toBe(1);
    expect(proxy.stats).toMatchObject({ forwarded: 1, answeredUpstream: 1 });
  });

  it("hangs: a 300 ms client gives up in about 300 ms, Redis sees nothing until release, then gets it late", async () => {
    const key = freshKey("hang");
    proxy.setMode("hang");
    const outcome = await postCommand(proxy.url, ["INCR", key], 300);
    expect(outcome.error?.code).toBe("ETIMEDOUT");
    expect(outcome.ms).toBeGreaterThanOrEqual(290);
    expect(outcome.ms).toBeLessThan(800);
    expect(proxy.stats).toMatchObject({ held: 1, forwarded: 0 });
    expect(await direct().get(key)).toBeNull();

    // Changing the mode does not let it go; release() does, and delivers it as a resumed server would.
    proxy.setMode("pass");
    expect(await direct().get(key)).toBeNull();
    expect(proxy.release()).toBe(1);
    await proxy.settled();
    expect(await direct().get(key)).toBe(1);
    expect(proxy.stats).toMatchObject({ held: 0, forwarded: 1 });
  });

  it("hangs until release, then answers a client that is still waiting", async () => {
    const key = freshKey("hang-then-answer");
    proxy.setMode("hang");
    const pending = postCommand(proxy.url, ["INCR", key]);
    await expect.poll(() => proxy.stats.held).toBe(1);
    proxy.setMode("pass");
    proxy.release();
    expect(await pending).toMatchObject({ status: 200, body: { result: 1 } });
  });

  it("releases held requests as resets when asked, forwarding nothing", async () => {
    const key = freshKey("hang-reset");
    proxy.setMode("hang");
    const pending = postCommand(proxy.url, ["INCR", key]);
    await expect.poll(() => proxy.stats.held).toBe(1);
    proxy.release("reset");
    expect((await pending).error?.code).toBe("ECONNRESET");
    await proxy.settled();
    expect(await direct().get(key)).toBeNull();
  });

  it("holds the reply: the client times out although Redis did the work", async () => {
    const key = freshKey("hang-reply");
    proxy.setMode("hang-reply");
    const outcome = await postCommand(proxy.url, ["INCR", key], 300);
    expect(outcome.error?.code).toBe("ETIMEDOUT");
    expect(await direct().get(key)).toBe(1);
    expect(proxy.stats).toMatchObject({ held: 1, answeredUpstream: 1 });
    expect(proxy.release()).toBe(1);
  });

  it("delays each request by the given time, then passes it", async () => {
    const key = freshKey("delay");
    proxy.setMode({ delayMs: 200 });
    const outcome = await postCommand(proxy.url, ["INCR", key]);
    expect(outcome).toMatchObject({ status: 200, body: { result: 1 } });
    expect(outcome.ms).toBeGreaterThanOrEqual(200);
    expect(proxy.stats.faults.delay).toBe(1);
  });

  it("lets a rule pick requests by their content and by their place on a connection", async () => {
    const redis = keepAliveClient();
    const key = freshKey("rule");
    const seen: { n: number; connection: number; indexOnConnection: number; command: string }[] = [];
    proxy.setRule((n, request) => {
      const [command] = JSON.parse(request.body.toString("utf8")) as string[];
      seen.push({ n, connection: request.connection, indexOnConnection: request.indexOnConnection, command });
      return /^incr$/i.test(command) ? "drop-reply" : "pass";
    });
    await redis.set(key, 10);
    expect((await attempt(() => redis.incr(key))).ok).toBe(false);
    expect(await redis.get(key)).toBe(11);
    expect(seen.map(({ command }) => command.toLowerCase())).toEqual(["set", "incr", "get"]);
    // The reset ended the first connection, so the GET came on a new one.
    expect(seen.map(({ n, connection, indexOnConnection }) => [n, connection, indexOnConnection])).toEqual([
      [1, 1, 1],
      [2, 1, 2],
      [3, 2, 1],
    ]);
  });

  it("resets the client when the upstream is unreachable, rather than answering for it", async () => {
    const dead = await startHttpFaultProxy({ target: { host: "127.0.0.1", port: 1 } });
    try {
      expect((await postCommand(dead.url, ["PING"])).error?.code).toBe("ECONNRESET");
    } finally {
      await dead.close();
    }
  });

  it("close() releases held and delayed requests at once and stops listening", async () => {
    const key = freshKey("close");
    proxy.setRule((n) => (n === 1 ? "hang" : { delayMs: 60_000 }));
    const hung = postCommand(proxy.url, ["INCR", key]);
    const delayed = postCommand(proxy.url, ["INCR", key]);
    await expect.poll(() => proxy.stats.requests).toBe(2);
    const started = performance.now();
    await proxy.close();
    expect(performance.now() - started).toBeLessThan(500);
    expect((await hung).error?.code).toBe("ECONNRESET");
    expect((await delayed).error?.code).toBe("ECONNRESET");
    expect(proxy.stats.held).toBe(0);
    expect(await direct().get(key)).toBeNull();
    expect((await postCommand(proxy.url, ["PING"])).error?.code).toBe("ECONNREFUSED");
  });
});

describe("TCP fault proxy in front of Postgres", () => {
  let proxy: TcpFaultProxy;
  const clients: pg.Client[] = [];
  beforeEach(async () => {
    proxy = await startTcpFaultProxy({ target: targetOf(process.env.DATABASE_URL!) });
  });
  afterEach(async () => {
    await Promise.allSettled(clients.splice(0).map((client) => client.end()));
    await proxy.close();
  });

  /** A pg client through the proxy; its connection errors are recorded instead of crashing the test process. */
  function pgClient(options: pg.ClientConfig = {}) {
    const client = new pg.Client({ connectionString: proxy.urlFor(process.env.DATABASE_URL!), ...options });
    const errors: Error[] = [];
    client.on("error", (error) => errors.push(error));
    clients.push(client);
    return Object.assign(client, { errors });
  }

  async function timed<T>(work: Promise<T>) {
    const started = performance.now();
    const outcome = await attempt(() => work);
    return { ...outcome, ms: performance.now() - started };
  }

  it("passes the wire protocol through", async () => {
    const client = pgClient();
    await client.connect();
    const { rows } = await client.query<{ db: string }>("SELECT current_database() AS db");
    expect(rows[0].db).toBe(new URL(process.env.DATABASE_URL!).pathname.slice(1));
    expect(proxy.stats).toMatchObject({ connections: 1, open: 1 });
    expect(proxy.stats.bytesToTarget).toBeGreaterThan(0);
    expect(proxy.stats.bytesToClient).toBeGreaterThan(0);
  });

  it("delays every chunk both ways", async () => {
    proxy.setMode({ delayMs: 100 });
    const client = pgClient();
    await client.connect();
    const query = await timed(client.query("SELECT 1"));
    expect(query.ok).toBe(true);
    // The query goes one way and its answer the other, each held back 100 ms.
    expect(query.ms).toBeGreaterThanOrEqual(195);
  });

  it("hangs a new connection: the client's 300 ms connect timeout fires and Postgres got no bytes", async () => {
    proxy.setMode("hang");
    const connect = await timed(pgClient({ connectionTimeoutMillis: 300 }).connect());
    expect(connect.ok).toBe(false);
    expect(connect.ok || connect.error.message).toMatch(/timeout/i);
    expect(connect.ms).toBeGreaterThanOrEqual(290);
    expect(connect.ms).toBeLessThan(800);
    expect(proxy.stats.bytesToTarget).toBe(0);
  });

  it("keeps a hung connection hung across setMode, until resume()", async () => {
    proxy.setMode("hang");
    const client = pgClient();
    let connected = false;
    const connecting = client.connect().then(() => (connected = true));
    await expect.poll(() => proxy.stats.open).toBe(1);
    proxy.setMode("pass");
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(connected).toBe(false);
    proxy.resume();
    await connecting;
    expect((await client.query<{ n: number }>("SELECT 1 AS n")).rows).toEqual([{ n: 1 }]);
  });

  it("resets a new connection before Postgres sees it", async () => {
    proxy.setMode("reset");
    const connect = await attempt(() => pgClient().connect());
    expect(connect.ok).toBe(false);
    expect(connect.ok || (connect.error as NodeJS.ErrnoException).code).toMatch(/ECONNRESET|EPIPE/);
    expect(proxy.stats).toMatchObject({ open: 0, faults: { reset: 1 } });
  });

  it("pauses open and new connections, and a query issued while paused completes after resume", async () => {
    const open = pgClient();
    await open.connect();
    proxy.pause();
    let settled = false;
    const query = open.query<{ n: number }>("SELECT 42 AS n").finally(() => (settled = true));
    const late = pgClient();
    const lateConnect = late.connect();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(settled).toBe(false);

    proxy.resume();
    expect((await query).rows).toEqual([{ n: 42 }]);
    await lateConnect;
    expect((await late.query<{ n: number }>("SELECT 7 AS n")).rows).toEqual([{ n: 7 }]);
  });

  it("resets every open connection mid-query: the client errors at once and Postgres ends the backend", async () => {
    const client = pgClient();
    await client.connect();
    const { rows } = await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
    // Without it a backend learns of a lost client only when it next reads or writes, after the sleep.
    await client.query("SET client_connection_check_interval = '100ms'");
    const sleeping = timed(client.query("SELECT pg_sleep(10)"));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(proxy.resetAll()).toBe(1);
    const outcome = await sleeping;
    expect(outcome.ok).toBe(false);
    expect(outcome.ms).toBeLessThan(1_000);
    expect(client.errors.length).toBeGreaterThan(0);

    // Postgres sees the reset too, and abandons the statement instead of running it to the end.
    const observer = new pg.Client({ connectionString: process.env.DATABASE_URL! });
    await observer.connect();
    try {
      await expect
        .poll(
          async () =>
            (await observer.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [rows[0].pid])).rowCount ?? 0,
          { timeout: 3_000, interval: 50 },
        )
        .toBe(0);
    } finally {
      await observer.end();
    }
  });

  it("close() resets paused connections and leaves nothing open", async () => {
    const client = pgClient();
    await client.connect();
    proxy.pause();
    const query = timed(client.query("SELECT 1"));
    await new Promise((resolve) => setTimeout(resolve, 50));
    await proxy.close();
    const outcome = await query;
    expect(outcome.ok).toBe(false);
    expect(outcome.ms).toBeLessThan(500);
    expect(proxy.stats.open).toBe(0);
    const refused = await attempt(() => pgClient({ connectionTimeoutMillis: 1_000 }).connect());
    expect(refused.ok || (refused.error as NodeJS.ErrnoException).code).toBe("ECONNREFUSED");
  });
});

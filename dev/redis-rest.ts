import http from "node:http";
import type { AddressInfo } from "node:net";
import { HttpError } from "./http-error";
import { createCommandRunner, isReplyError, type Outcome } from "./redis-rest/command-runner";
import { answerFor, type CommandAnswer } from "./redis-rest/reply-encoding";
import { readRestRequest } from "./redis-rest/rest-request";
import { streamSubscription } from "./redis-rest/subscription-stream";

/**
 * A stand-in for Upstash Redis's REST API in front of a real Redis server, so the app talks to Redis through the
 * unmodified `@upstash/redis` client everywhere. It speaks the request forms Upstash documents (see
 * `redis-rest/rest-request.ts`), a bearer token or `_token` parameter, the `Upstash-Encoding: base64` reply form,
 * `/subscribe` streams and the `upstash-sync-token` header. Redis errors come back as `{ error }` with 400, as
 * Upstash does; docs/decisions/0002-upstash-rest-stand-in.md says where it differs from Upstash and why.
 *
 * This file only assembles the HTTP server; each concern has its module under `dev/redis-rest/`.
 */
export interface RedisRestOptions {
  redisUrl: string;
  token: string;
  host?: string;
  port?: number;
  /** Logical Redis database, so parallel test files can each have their own keyspace. */
  db?: number;
  /** Connections kept open to Redis; requests are spread over them and pipelined on each. */
  poolSize?: number;
  /** How long a command may go unanswered before its request fails with 503 (default 5 s). */
  commandTimeoutMs?: number;
  /** How long a blocking command such as BLPOP may wait, whatever it asks Redis for (default 60 s). */
  maxBlockingMs?: number;
}

export interface RedisRestServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

// Upstash documents these methods and answers 405 to any other.
const ALLOWED_METHODS = new Set(["GET", "HEAD", "POST", "PUT"]);

export async function startRedisRest(options: RedisRestOptions): Promise<RedisRestServer> {
  const runner = await createCommandRunner({
    redisUrl: options.redisUrl,
    db: options.db ?? 0,
    poolSize: options.poolSize ?? 4,
    commandTimeoutMs: options.commandTimeoutMs ?? 5_000,
    maxBlockingMs: options.maxBlockingMs ?? 60_000,
    maxDedicatedConnections: 64,
  });

  // One Redis behind one process already reads its own writes; the token only has to change with every answer,
  // as the SDK's read-your-writes bookkeeping expects of Upstash.
  let syncSequence = 0;
  const nextSyncToken = () => `local-${Date.now().toString(36)}-${(++syncSequence).toString(36)}`;

  const authorized = (req: http.IncomingMessage, url: URL) =>
    req.headers.authorization === `Bearer ${options.token}` || url.searchParams.get("_token") === options.token;

  const server = http.createServer(async (req, res) => {
    const headers = { "upstash-sync-token": nextSyncToken() };
    const send = (status: number, body: unknown) => {
      const json = JSON.stringify(body);
      res.writeHead(status, {
        ...headers,
        "Content-Type": "application/json",
        "Content-Length": Buffer.byteLength(json),
      });
      res.end(json);
    };
    try {
      if (!ALLOWED_METHODS.has(req.method ?? "")) {
        throw new HttpError(405, "ERR only HEAD, GET, POST and PUT are supported");
      }
      const url = new URL(req.url ?? "/", "http://localhost");
      if (!authorized(req, url)) throw new HttpError(401, "Unauthorized: missing or wrong bearer token");
      const request = await readRestRequest(req, url);
      const base64 = String(req.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
      const answer = (outcome: Outcome): CommandAnswer =>
        "error" in outcome ? { error: outcome.error.message } : answerFor(outcome.reply, base64);

      switch (request.kind) {
        case "subscribe":
        case "psubscribe": {
          const subscriber = await runner.openSubscriber();
          try {
            await streamSubscription(request.kind, request.channels, subscriber, res, headers);
          } catch {
            // The stream has started, so a status can no longer be sent; ending it tells the client.
            subscriber.disconnect();
            res.end();
          }
          return;
        }
        case "command": {
          const [outcome] = await runner.run([request.command], false);
          const body = answer(outcome);
          return send("error" in body ? 400 : 200, body);
        }
        default: {
          const outcomes = await runner.run(request.commands, request.kind === "multi-exec");
          return send(200, outcomes.map(answer));
        }
      }
    } catch (error) {
      if (error instanceof HttpError) return send(error.status, { error: error.message });
      // A Redis error reply (wrong type, unknown command, EXECABORT…) is the caller's to handle, as on Upstash.
      if (isReplyError(error)) return send(400, { error: error.message });
      send(503, { error: `ERR Redis unavailable: ${(error as Error).message}` });
    }
  });
  server.keepAliveTimeout = 30_000;
  // Slow or stalled clients must not hold a request (and its Redis work) open for ever.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;

  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
    });
  } catch (error) {
    await runner.close();
    throw error;
  }
  const { port } = server.address() as AddressInfo;
  const host = options.host ?? "127.0.0.1";
  return {
    url: `http://${host}:${port}`,
    port,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await runner.close();
    },
  };
}

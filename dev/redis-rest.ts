import http from "node:http";
import type { AddressInfo } from "node:net";
import { Redis as IORedis } from "ioredis";

/**
 * A stand-in for Upstash Redis's REST API in front of a real Redis server, so the app talks to Redis through the
 * unmodified `@upstash/redis` client everywhere. It speaks what that client sends: POST / with one command as a JSON
 * array, POST /pipeline and POST /multi-exec with arrays of commands, a bearer token, and the
 * `Upstash-Encoding: base64` reply form in which every string in a result is base64 (numbers and nulls stay as
 * they are). Redis errors come back as `{ error }` with 400, as Upstash does.
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
}

export interface RedisRestServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

type Command = (string | number | boolean)[];
type Reply = Buffer | string | number | null | Reply[];
type Encoded = string | number | null | Encoded[];

const MAX_BODY_BYTES = 10 * 1024 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function encodeReply(reply: Reply, base64: boolean): Encoded {
  if (reply === null || typeof reply === "number") return reply;
  if (Array.isArray(reply)) return reply.map((item) => encodeReply(item, base64));
  const buffer = Buffer.isBuffer(reply) ? reply : Buffer.from(String(reply));
  return base64 ? buffer.toString("base64") : buffer.toString("utf8");
}

function isCommand(value: unknown): value is Command {
  return (
    Array.isArray(value) &&
    value.length > 0 &&
    typeof value[0] === "string" &&
    value.every((part) => ["string", "number", "boolean"].includes(typeof part))
  );
}

function parseCommands(body: unknown, many: boolean): Command[] {
  if (!many) {
    if (!isCommand(body)) throw new HttpError(400, "ERR body must be a JSON array: [command, ...args]");
    return [body];
  }
  if (!Array.isArray(body) || body.length === 0 || !body.every(isCommand)) {
    throw new HttpError(400, "ERR body must be a JSON array of commands: [[command, ...args], ...]");
  }
  return body as Command[];
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, "ERR request body too large");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export async function startRedisRest(options: RedisRestOptions): Promise<RedisRestServer> {
  const poolSize = options.poolSize ?? 4;
  const pool = Array.from(
    { length: poolSize },
    () =>
      new IORedis(options.redisUrl, {
        db: options.db ?? 0,
        // Fail a request at once when Redis is down instead of queueing it: the app decides what an outage means.
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        lazyConnect: true,
        // No enableAutoPipelining: ioredis drops the command name of callBuffer() calls on that path. Commands
        // from concurrent requests are still pipelined on the socket, since ioredis never waits between writes.
      }),
  );
  for (const connection of pool) {
    // Without a listener ioredis prints every failed reconnect as an unhandled error; an outage already reaches
    // callers as 503 replies, which is where the app handles it.
    connection.on("error", () => {});
  }
  try {
    await Promise.all(pool.map((connection) => connection.connect()));
  } catch (error) {
    // Stop the pool's reconnect loops, or a failed start would keep retrying (and the process alive) forever.
    for (const connection of pool) connection.disconnect();
    throw new Error(`Redis at ${new URL(options.redisUrl).host} did not answer: ${(error as Error).message}`);
  }
  let next = 0;
  const pick = () => pool[next++ % pool.length];

  const toArgs = (command: Command) => command.slice(1).map((part) => String(part));

  async function run(path: string, commands: Command[], base64: boolean) {
    const connection = pick();
    if (path === "/") {
      const [command] = commands;
      const reply = (await connection.callBuffer(String(command[0]), ...toArgs(command))) as Reply;
      return { status: 200, body: { result: encodeReply(reply, base64) } };
    }
    // ioredis writes a pipeline (and a MULTI … EXEC block) to the socket in one go, so commands of other requests
    // sharing this connection cannot land inside a transaction.
    const batch = path === "/multi-exec" ? connection.multi() : connection.pipeline();
    for (const command of commands) batch.callBuffer(String(command[0]), ...toArgs(command));
    const results = (await batch.exec()) ?? [];
    // ioredis reports a lost connection per command; that is an outage of the whole request, not a reply to it.
    const outage = results.find(([error]) => error && error.name !== "ReplyError")?.[0];
    if (outage) throw outage;
    return {
      status: 200,
      body: results.map(([error, reply]) =>
        error ? { error: error.message } : { result: encodeReply(reply as Reply, base64) },
      ),
    };
  }

  const server = http.createServer(async (req, res) => {
    const send = (status: number, body: unknown) => {
      const json = JSON.stringify(body);
      res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(json) });
      res.end(json);
    };
    try {
      const path = new URL(req.url ?? "/", "http://localhost").pathname.replace(/\/+$/, "") || "/";
      if (req.method !== "POST") throw new HttpError(405, "ERR only POST is supported");
      if (!["/", "/pipeline", "/multi-exec"].includes(path)) throw new HttpError(404, `ERR unknown path ${path}`);
      if (req.headers.authorization !== `Bearer ${options.token}`) {
        throw new HttpError(401, "Unauthorized: missing or wrong bearer token");
      }
      const contentType = req.headers["content-type"] ?? "";
      if (!contentType.toLowerCase().startsWith("application/json")) {
        throw new HttpError(415, "ERR Content-Type must be application/json");
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(await readBody(req));
      } catch (error) {
        if (error instanceof HttpError) throw error;
        throw new HttpError(400, "ERR body is not valid JSON");
      }
      const base64 = String(req.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
      const { status, body } = await run(path, parseCommands(parsed, path !== "/"), base64);
      send(status, body);
    } catch (error) {
      if (error instanceof HttpError) return send(error.status, { error: error.message });
      // A Redis error reply (wrong type, unknown command, NOSCRIPT…) is the caller's to handle, as on Upstash.
      if (error instanceof Error && error.name === "ReplyError") return send(400, { error: error.message });
      send(503, { error: `ERR Redis unavailable: ${(error as Error).message}` });
    }
  });
  server.keepAliveTimeout = 30_000;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host ?? "127.0.0.1";
  return {
    url: `http://${host}:${port}`,
    port,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all(pool.map((connection) => connection.quit().catch(() => connection.disconnect())));
    },
  };
}

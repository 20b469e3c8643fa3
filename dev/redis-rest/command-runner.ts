import { Redis as IORedis, type RedisOptions } from "ioredis";
import type { Command } from "./rest-request";
import type { RawReply } from "./reply-encoding";

/** One command's outcome within a request: Redis's reply, or the error Redis (or the stand-in) answered. */
export type Outcome = { reply: RawReply } | { error: Error };

export interface CommandRunnerOptions {
  redisUrl: string;
  db: number;
  poolSize: number;
  /** How long a command may go unanswered before its request fails with 503 instead of waiting on. */
  commandTimeoutMs: number;
  /** How long a blocking command (BLPOP …) may wait, whatever timeout it asks Redis for. */
  maxBlockingMs: number;
  /** Blocking and connection-state requests open their own connection; this caps how many at once. */
  maxDedicatedConnections: number;
}

// Commands that wait on the server would hold a shared connection and every request queued behind it.
const BLOCKING = new Set([
  "blpop",
  "brpop",
  "brpoplpush",
  "blmove",
  "blmpop",
  "bzpopmin",
  "bzpopmax",
  "bzmpop",
  "xread",
  "xreadgroup",
  "wait",
  "waitaof",
]);

// Commands that change the connection itself (transaction, subscriber or monitor mode, protocol, client name…),
// which on a shared connection would leak into other requests.
const CONNECTION_STATE = new Set([
  "watch",
  "unwatch",
  "multi",
  "exec",
  "discard",
  "client",
  "hello",
  "reset",
  "auth",
  "readonly",
  "readwrite",
  "asking",
  "subscribe",
  "psubscribe",
  "ssubscribe",
  "unsubscribe",
  "punsubscribe",
  "sunsubscribe",
  "monitor",
  "quit",
  "sync",
  "psync",
  "replconf",
]);

class DeadlineError extends Error {
  name = "DeadlineError";
}

/**
 * Upstash exposes one logical database and answers `SELECT 0` with OK and any other index with an error, without
 * switching anything; the stand-in does the same, so a client's SELECT never changes the database other requests
 * (or later ones from the same client) see. The stand-in's own database is chosen by its `db` option.
 */
function answerSelect(command: Command): Outcome | undefined {
  if (command[0].toLowerCase() !== "select") return undefined;
  if (command.length !== 2) return { error: replyError("ERR wrong number of arguments for 'select' command") };
  if (String(command[1]) === "0") return { reply: Buffer.from("OK") };
  return { error: replyError("ERR DB index is out of range") };
}

function replyError(message: string): Error {
  const error = new Error(message);
  error.name = "ReplyError";
  return error;
}

export function isReplyError(error: unknown): error is Error {
  return error instanceof Error && error.name === "ReplyError";
}

/**
 * ioredis transforms some replies by command name (HGETALL into an object) and tracks connection state by name
 * (SELECT, QUIT); both key on the lowercase name, so sending the name uppercase gets Redis's reply untouched.
 */
function nameAndArgs(command: Command): [string, ...(string | Buffer)[]] {
  const [name, ...args] = command;
  return [name.toUpperCase(), ...args];
}

/**
 * Runs commands on Redis so that no request can change what another one sees: ordinary commands share a small pool
 * of connections, while blocking and connection-state commands get a connection of their own that is closed
 * afterwards. Every command has a deadline, so a Redis that stops answering costs a 503, not a hung request.
 */
export async function createCommandRunner(options: CommandRunnerOptions) {
  const connectionOptions: RedisOptions = {
    db: options.db,
    // Fail a request at once when Redis is down instead of queueing it: the app decides what an outage means.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    lazyConnect: true,
    connectTimeout: Math.max(options.commandTimeoutMs, 1000),
    // No enableAutoPipelining: ioredis drops the command name of callBuffer() calls on that path. Commands
    // from concurrent requests are still pipelined on the socket, since ioredis never waits between writes.
  };
  const pool = Array.from(
    { length: options.poolSize },
    () => new IORedis(options.redisUrl, { ...connectionOptions, commandTimeout: options.commandTimeoutMs }),
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
  const dedicated = new Set<IORedis>();

  async function withDedicatedConnection<T>(deadlineMs: number, use: (connection: IORedis) => Promise<T>) {
    if (dedicated.size >= options.maxDedicatedConnections) {
      throw new Error(`more than ${options.maxDedicatedConnections} blocking or stateful requests at once`);
    }
    const connection = new IORedis(options.redisUrl, { ...connectionOptions, retryStrategy: () => null });
    connection.on("error", () => {});
    dedicated.add(connection);
    let timer: NodeJS.Timeout | undefined;
    try {
      await connection.connect();
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new DeadlineError(`Redis did not answer within ${deadlineMs}ms`)), deadlineMs);
      });
      return await Promise.race([use(connection), deadline]);
    } finally {
      clearTimeout(timer);
      dedicated.delete(connection);
      // Disconnect rather than QUIT: a blocked or subscribed connection would not answer QUIT.
      connection.disconnect();
    }
  }

  function placement(commands: Command[]): { connection: "shared" } | { connection: "own"; deadlineMs: number } {
    const names = commands.map((command) => command[0].toLowerCase());
    if (names.some((name) => BLOCKING.has(name))) {
      return { connection: "own", deadlineMs: options.maxBlockingMs + options.commandTimeoutMs };
    }
    if (names.some((name) => CONNECTION_STATE.has(name))) {
      return { connection: "own", deadlineMs: options.commandTimeoutMs };
    }
    return { connection: "shared" };
  }

  async function runOnConnection(connection: IORedis, commands: Command[], atomic: boolean): Promise<Outcome[]> {
    if (commands.length === 1 && !atomic) {
      try {
        return [{ reply: (await connection.callBuffer(...nameAndArgs(commands[0]))) as RawReply }];
      } catch (error) {
        if (isReplyError(error)) return [{ error }];
        throw error;
      }
    }
    // ioredis writes a pipeline (and a MULTI … EXEC block) to the socket in one go, so commands of other requests
    // sharing this connection cannot land inside a transaction.
    const batch = atomic ? connection.multi() : connection.pipeline();
    for (const command of commands) batch.callBuffer(...nameAndArgs(command));
    const results = (await batch.exec()) ?? [];
    // ioredis reports a lost connection per command; that is an outage of the whole request, not a reply to it.
    const outage = results.find(([error]) => error && !isReplyError(error))?.[0];
    if (outage) throw outage;
    return results.map(([error, reply]) => (error ? { error } : { reply: reply as RawReply }));
  }

  /** Runs one command, or a batch (atomically with `atomic`), answering each command in order. */
  async function run(commands: Command[], atomic: boolean): Promise<Outcome[]> {
    const outcomes: (Outcome | undefined)[] = commands.map(answerSelect);
    const forRedis = commands.filter((_, index) => !outcomes[index]);
    if (forRedis.length > 0) {
      const where = placement(forRedis);
      const replies =
        where.connection === "own"
          ? await withDedicatedConnection(where.deadlineMs, (connection) =>
              runOnConnection(connection, forRedis, atomic),
            )
          : await runOnConnection(pool[next++ % pool.length], forRedis, atomic);
      let reply = 0;
      for (let index = 0; index < outcomes.length; index++) outcomes[index] ??= replies[reply++];
    }
    return outcomes as Outcome[];
  }

  return {
    run,
    /** A connection for one subscription stream, counted with the other dedicated ones. */
    async openSubscriber(): Promise<IORedis> {
      if (dedicated.size >= options.maxDedicatedConnections) {
        throw new Error(`more than ${options.maxDedicatedConnections} blocking or stateful requests at once`);
      }
      const connection = new IORedis(options.redisUrl, { ...connectionOptions, retryStrategy: () => null });
      connection.on("error", () => {});
      dedicated.add(connection);
      connection.once("end", () => dedicated.delete(connection));
      try {
        await connection.connect();
      } catch (error) {
        dedicated.delete(connection);
        connection.disconnect();
        throw error;
      }
      return connection;
    },
    async close() {
      for (const connection of dedicated) connection.disconnect();
      await Promise.all(pool.map((connection) => connection.quit().catch(() => connection.disconnect())));
    },
  };
}

export type CommandRunner = Awaited<ReturnType<typeof createCommandRunner>>;

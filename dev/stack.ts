import { spawn, type ChildProcess } from "node:child_process";
import { Client } from "@upstash/qstash";
import { Redis as IORedis } from "ioredis";
import { SYNC_ROUTE_PATH as USAGE_SYNC_PATH } from "~/utils/endpoints";
import { migrate } from "../scripts/lib/migrations";
import { ensureHourlySchedule } from "../scripts/lib/schedule";
import { startEmbeddedPostgres, type EmbeddedPostgres } from "./pglite";
import { startQstash, type QstashServer } from "./qstash";
import { startRedisRest, type RedisRestServer } from "./redis-rest";
import { freePort } from "./ports";

/**
 * Everything the app needs locally, in the shape production has it: Redis behind the Upstash REST stand-in, the
 * QStash stand-in with the hourly sync scheduled, and Postgres (external or embedded), migrated. A URL in the
 * environment that points somewhere other than this machine (a real Upstash database, a hosted QStash) is used
 * as it is, and no stand-in is started for it.
 */
export interface StackOptions {
  /** Raw variables, normally `loadRawEnv()`. */
  env: Record<string, string | undefined>;
  /** Override the ports taken from UPSTASH_REDIS_REST_URL / QSTASH_URL; 0 picks a free one (tests). */
  redisRestPort?: number;
  qstashPort?: number;
  /** Port of the embedded Postgres; by default 5433, or any free port when that is taken. */
  postgresPort?: number;
  /** Where the embedded Postgres keeps its files. */
  dataDir?: string;
  log?: (line: string) => void;
}

export interface StackServices {
  redis: { url: string; startedHere: boolean };
  redisRest: { url: string; standIn: boolean };
  qstash: { url: string; standIn: boolean; scheduleId?: string; destination: string };
  postgres: { url: string; embedded: boolean; dataDir?: string };
}

export interface Stack {
  /** The variables to hand to the app. */
  env: Record<string, string>;
  services: StackServices;
  /** Resolves with a reason if a part of the stack stops on its own (a redis-server it started dies). */
  failure: Promise<string>;
  qstash?: QstashServer;
  close(): Promise<void>;
}

const DEFAULT_EMBEDDED_POSTGRES_PORT = 5433;

function required(env: Record<string, string | undefined>, name: string): string {
  const value = env[name];
  if (!value) throw new Error(`${name} is not set (it has a local default in .env.example)`);
  return value;
}

function isLocal(url: string): boolean {
  return ["127.0.0.1", "localhost", "[::1]", "0.0.0.0"].includes(new URL(url).hostname);
}

function portOf(url: string): number {
  const parsed = new URL(url);
  return Number(parsed.port || (parsed.protocol === "https:" ? 443 : 80));
}

/** For printing: a URL with its password replaced. */
export function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = "***";
  return parsed.toString();
}

async function redisAnswers(url: string): Promise<boolean> {
  const probe = new IORedis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1000,
  });
  probe.on("error", () => {});
  try {
    await probe.connect();
    return (await probe.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

async function startRedisServer(log: (line: string) => void): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  // Persistence off: the counters are disposable locally, and an RDB file would land in whatever the cwd is.
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const spawned = await new Promise<Error | null>((resolve) => {
    child.once("spawn", () => resolve(null));
    child.once("error", (error) => resolve(error));
  });
  if (spawned) {
    throw new Error(
      (spawned as NodeJS.ErrnoException).code === "ENOENT"
        ? "No Redis answers at REDIS_URL and redis-server is not on PATH. Install Redis " +
            "(Debian/Ubuntu: `sudo apt-get install redis-server`, macOS: `brew install redis`) or set REDIS_URL " +
            "to a running server."
        : `Could not start redis-server: ${spawned.message}`,
    );
  }
  const url = `redis://127.0.0.1:${port}`;
  for (let waited = 0; waited < 10_000; waited += 100) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode} at start`);
    if (await redisAnswers(url)) {
      log(`started redis-server (pid ${child.pid}) on ${url}`);
      return { url, child };
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill("SIGKILL");
  throw new Error(`redis-server did not answer on ${url} within 10 s`);
}

/** Listens on `preferred`, or on any free port when something else already holds it. */
async function startEmbeddedPostgresOnPort(dataDir: string, preferred: number, log: (line: string) => void) {
  try {
    return await startEmbeddedPostgres({ dataDir, port: preferred });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE" || preferred === 0) throw error;
    log(`port ${preferred} is taken; embedded Postgres uses a free port instead`);
    return startEmbeddedPostgres({ dataDir, port: 0 });
  }
}

/**
 * The variables that point at what this stack started — addresses that exist only while it runs — for the record
 * that commands in another terminal read. External services are left out: those commands read their configuration
 * from the same places, and a real credential has no business being copied into another file.
 */
export function startedServicesEnv({ env, services }: Pick<Stack, "env" | "services">): Record<string, string> {
  return {
    ...(services.postgres.embedded && { DATABASE_URL: env.DATABASE_URL }),
    ...(services.redisRest.standIn && {
      UPSTASH_REDIS_REST_URL: env.UPSTASH_REDIS_REST_URL,
      UPSTASH_REDIS_REST_TOKEN: env.UPSTASH_REDIS_REST_TOKEN,
    }),
    ...(services.redis.startedHere && { REDIS_URL: env.REDIS_URL }),
    ...(services.qstash.standIn && { QSTASH_URL: env.QSTASH_URL, QSTASH_TOKEN: env.QSTASH_TOKEN }),
  };
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const log = options.log ?? ((line: string) => console.log(`[stack] ${line}`));
  const env = options.env;
  const appUrl = required(env, "APP_URL").replace(/\/+$/, "");
  const restToken = required(env, "UPSTASH_REDIS_REST_TOKEN");
  const qstashToken = required(env, "QSTASH_TOKEN");
  const currentSigningKey = required(env, "QSTASH_CURRENT_SIGNING_KEY");
  const nextSigningKey = required(env, "QSTASH_NEXT_SIGNING_KEY");

  // Whatever starts is stopped again, in reverse order, if a later step fails.
  const stops: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch((error) => log(`stop failed: ${error}`));
  };
  let reportFailure: (reason: string) => void = () => {};
  const failure = new Promise<string>((resolve) => (reportFailure = resolve));

  try {
    // (a) Redis
    let redisUrl = env.REDIS_URL || "redis://127.0.0.1:6379";
    let startedHere = false;
    const restUrlFromEnv = required(env, "UPSTASH_REDIS_REST_URL");
    const wantRestStandIn = isLocal(restUrlFromEnv);
    if (wantRestStandIn && !(await redisAnswers(redisUrl))) {
      log(`no Redis answers at ${redact(redisUrl)}; starting redis-server`);
      const redis = await startRedisServer(log);
      redisUrl = redis.url;
      startedHere = true;
      let stopping = false;
      redis.child.once("exit", (code, signal) => {
        if (!stopping) reportFailure(`redis-server exited (${signal ?? `code ${code}`})`);
      });
      stops.push(async () => {
        stopping = true;
        if (redis.child.exitCode !== null) return;
        const exited = new Promise((resolve) => redis.child.once("exit", resolve));
        redis.child.kill("SIGTERM");
        await exited;
      });
    }

    // (b) the REST and QStash stand-ins
    let rest: RedisRestServer | undefined;
    if (wantRestStandIn) {
      rest = await startRedisRest({
        redisUrl,
        token: restToken,
        port: options.redisRestPort ?? portOf(restUrlFromEnv),
      });
      stops.push(() => rest!.close());
    }
    const restUrl = rest?.url ?? restUrlFromEnv;

    const qstashUrlFromEnv = required(env, "QSTASH_URL");
    let qstash: QstashServer | undefined;
    if (isLocal(qstashUrlFromEnv)) {
      qstash = await startQstash({
        token: qstashToken,
        currentSigningKey,
        nextSigningKey,
        port: options.qstashPort ?? portOf(qstashUrlFromEnv),
      });
      stops.push(() => qstash!.close());
    }
    const qstashUrl = qstash?.url ?? qstashUrlFromEnv;

    // (c) Postgres, (d) migrations
    let databaseUrl = env.DATABASE_URL;
    let embedded: EmbeddedPostgres | undefined;
    if (!databaseUrl) {
      embedded = await startEmbeddedPostgresOnPort(
        options.dataDir ?? ".data/pglite",
        options.postgresPort ?? DEFAULT_EMBEDDED_POSTGRES_PORT,
        log,
      );
      stops.push(() => embedded!.close());
      databaseUrl = embedded.url;
    }
    const migrated = await migrate(databaseUrl);
    log(
      migrated.applied.length > 0
        ? `applied migrations: ${migrated.applied.join(", ")}`
        : `database up to date (${migrated.alreadyApplied} migrations)`,
    );

    // (e) the hourly sync, only against the local QStash: a hosted one cannot call back into localhost.
    const destination = `${appUrl}${USAGE_SYNC_PATH}`;
    let scheduleId: string | undefined;
    if (qstash) {
      const client = new Client({ baseUrl: qstash.url, token: qstashToken, devMode: false, enableTelemetry: false });
      scheduleId = await ensureHourlySchedule(client, destination);
    }

    return {
      env: {
        APP_URL: appUrl,
        DATABASE_URL: databaseUrl,
        REDIS_URL: redisUrl,
        UPSTASH_REDIS_REST_URL: restUrl,
        UPSTASH_REDIS_REST_TOKEN: restToken,
        QSTASH_URL: qstashUrl,
        QSTASH_TOKEN: qstashToken,
        QSTASH_CURRENT_SIGNING_KEY: currentSigningKey,
        QSTASH_NEXT_SIGNING_KEY: nextSigningKey,
      },
      services: {
        redis: { url: redisUrl, startedHere },
        redisRest: { url: restUrl, standIn: Boolean(rest) },
        qstash: { url: qstashUrl, standIn: Boolean(qstash), scheduleId, destination },
        postgres: { url: databaseUrl, embedded: Boolean(embedded), dataDir: embedded?.dataDir },
      },
      failure,
      qstash,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

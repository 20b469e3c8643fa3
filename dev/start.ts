import { spawn } from "node:child_process";
import path from "node:path";
import { removeDevStackRecord, writeDevStackRecord } from "~/utils/dev-stack-record.server";
import { loadRawEnv } from "~/utils/env.server";
import { redact, startedServicesEnv, startStack, type Stack } from "./stack";

/**
 * `npm run dev`: the local stack, then `remix dev` (which runs server.js on APP_URL's port, restarting it after each rebuild) with the stack's
 * variables. Ctrl+C stops everything; if any part stops on its own, the rest is stopped and the reason printed.
 */
// Not from a record: this process writes it, and another live stack's addresses are not ours to reuse.
const raw = loadRawEnv(process.env, { devStackRecord: false });
const stack: Stack = await startStack({ env: raw }).catch((error: unknown) => {
  console.error(`\nCould not start the local stack: ${(error as Error).message}`);
  process.exit(1);
});

// APP_URL too: it is this process's app, and the seed prints where to log in to it.
writeDevStackRecord({ ...startedServicesEnv(stack), APP_URL: stack.env.APP_URL });

const appUrl = new URL(stack.env.APP_URL);
const appPort = appUrl.port || (appUrl.protocol === "https:" ? "443" : "80");
const { redis, redisRest, qstash, postgres } = stack.services;
const rows: Array<[string, string, string]> = [
  ["App", stack.env.APP_URL, "remix dev (server.js)"],
  ["Redis", redact(redis.url), redis.startedHere ? "redis-server started for this session" : "already running"],
  ["Redis REST", redisRest.url, redisRest.standIn ? "Upstash REST stand-in (dev/redis-rest.ts)" : "external Upstash"],
  [
    "QStash",
    qstash.url,
    qstash.standIn ? `stand-in (dev/qstash.ts), hourly → ${qstash.destination}` : "external QStash, no schedule made",
  ],
  [
    "Postgres",
    redact(postgres.url),
    postgres.embedded
      ? `embedded PGlite, data in ${path.relative(process.cwd(), postgres.dataDir ?? "")}`
      : "external (DATABASE_URL)",
  ],
];
const width = Math.max(...rows.map(([, where]) => where.length)) + 3;
console.log(
  [
    "",
    "Sheetmeter — local stack",
    ...rows.map(([name, where, what]) => `  ${name.padEnd(12)}${where.padEnd(width)}${what}`),
    "Other terminals find these through .data/dev-stack.json (npm run admin, db:seed, db:migrate).",
    "Ctrl+C stops everything.",
    "",
  ].join("\n"),
);

// Its own process group: `remix dev` runs server.js as a child, and if `remix dev` itself dies abruptly that
// child would live on holding the port; signalling the group reaches both.
const app = spawn(path.resolve("node_modules/.bin/remix"), ["dev", "-c", "node server.js"], {
  env: { ...process.env, ...stack.env, PORT: appPort, NODE_ENV: "development" },
  stdio: "inherit",
  detached: true,
});
const signalApp = (signal: NodeJS.Signals | 0): boolean => {
  try {
    if (app.pid) process.kill(-app.pid, signal);
    return true;
  } catch {
    return false; // the group is gone
  }
};

// server.js finishes in-flight requests on SIGTERM and exits; `remix dev` may not pass the signal on at once, so
// whatever is left of the group after a grace period is killed.
async function stopApp() {
  if (!signalApp("SIGTERM")) return;
  for (let waited = 0; waited < 5000; waited += 100) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    if (!signalApp(0)) return;
  }
  signalApp("SIGKILL");
}

let shuttingDown = false;
async function shutDown(reason: string, exitCode: number) {
  if (shuttingDown) return;
  shuttingDown = true;
  console.log(`\n${reason}; stopping the local stack…`);
  // First, so a command started during the shutdown is told nothing runs rather than given a closing database.
  removeDevStackRecord();
  await stopApp();
  await stack.close();
  process.exit(exitCode);
}

app.once("error", (error) => void shutDown(`could not run remix dev: ${error.message}`, 1));
app.once("exit", (code, signal) => {
  void shutDown(`remix dev exited (${signal ?? `code ${code}`})`, shuttingDown || code === 0 ? 0 : 1);
});
void stack.failure.then((reason) => shutDown(reason, 1));
process.once("SIGINT", () => void shutDown("interrupted", 0));
process.once("SIGTERM", () => void shutDown("terminated", 0));
process.on("uncaughtException", (error) => void shutDown(`crashed: ${error.stack ?? error.message}`, 1));

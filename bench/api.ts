import fs from "node:fs";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { startApp, stopProcess, type AppServer } from "./lib/app-server";
import { createMeteredSheet, type MeteredSheet } from "./lib/metered-sheet";

/**
 * `npm run bench:api`: what the quota check costs. The built app (`remix build` first) is served by server.js
 * twice on loopback, against a scratch database and Redis database 12 behind the Upstash REST stand-in:
 *
 * - metered: NODE_ENV=production, exactly as deployed. SHEETMETER_BENCH_UNMETERED=1 is set here too, to prove
 *   production ignores it: the run checks that every request was counted.
 * - unmetered: NODE_ENV=test plus SHEETMETER_BENCH_UNMETERED=1, the only combination that skips the quota check
 *   (see isQuotaBypassed in app/models/metered-rows.server.ts). The run checks that nothing was counted.
 *
 * autocannon calls the same sheet route on both, in alternating rounds so drift on a shared machine hits both
 * alike. Prints requests/s, p50 and p99 per mode and their ratio; the last stdout line is one JSON object.
 */
const { values: flags } = parseArgs({
  options: {
    duration: { type: "string", default: "12" },
    rounds: { type: "string", default: "4" },
    connections: { type: "string", default: "10" },
    rows: { type: "string", default: "1000" },
    // The query string of every call; the default is the plain first call a consumer makes (100 rows).
    query: { type: "string", default: "" },
    // Internal: this file re-runs itself with this flag to host the Redis REST stand-in in a process of its own.
  },
});
const SECONDS_PER_MODE = Number(flags.duration);
const ROUNDS = Number(flags.rounds);
const CONNECTIONS = Number(flags.connections);
const ROWS = Number(flags.rows);
const TARGET_RATIO = 0.8;
// Its own logical database: test files claim 1–9, e2e 15, the other benches 10, 11 and 13, `npm run dev` 0.
const REDIS_DB = 12;
// Far above what a run can use, so every call is served (a 429 would be a cheaper path and flatter the figure).
const BENCH_LIMIT = 2_000_000_000;

const log = (line: string) => console.error(line);

/** CPU seconds a process has used so far (user + system), from /proc; null where there is no /proc. */
function cpuSeconds(pid: number | undefined): number | null {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the ") " split; in clock ticks (100/s).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

interface Round {
  /** CPU milliseconds per served request: of the app server, and of the Redis REST stand-in. */
  appCpuMs: number | null;
  restCpuMs: number | null;
  requests: number;
  seconds: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

async function hammer(url: string, key: string, seconds: number): Promise<Omit<Round, "appCpuMs" | "restCpuMs">> {
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: seconds,
    headers: { Authorization: `Bearer ${key}` },
  });
  return {
    requests: result.requests.total,
    seconds: result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

function combine(rounds: Round[]) {
  const requests = rounds.reduce((sum, round) => sum + round.requests, 0);
  const seconds = rounds.reduce((sum, round) => sum + round.seconds, 0);
  const mean = (pick: (round: Round) => number) =>
    Math.round((rounds.reduce((sum, round) => sum + pick(round), 0) / rounds.length) * 100) / 100;
  return {
    requests,
    reqPerSec: Math.round((requests / seconds) * 10) / 10,
    p50Ms: mean((round) => round.p50),
    p99Ms: mean((round) => round.p99),
    appCpuMsPerRequest: mean((round) => round.appCpuMs ?? Number.NaN),
    restCpuMsPerRequest: mean((round) => round.restCpuMs ?? Number.NaN),
    non2xx: rounds.reduce((sum, round) => sum + round.non2xx, 0),
    errors: rounds.reduce((sum, round) => sum + round.errors, 0),
  };
}

async function main() {
  if (!fs.existsSync("build/index.js")) throw new Error("No build/index.js: run `npx remix build` first.");
  const apps: AppServer[] = [];
  let sheet: MeteredSheet | undefined;
  try {
    sheet = await createMeteredSheet({
      dbPrefix: "sm_bench_api",
      redisDb: REDIS_DB,
      email: "bench-api@example.com",
      monthlyLimit: BENCH_LIMIT,
      rows: ROWS,
      log,
    });
    const { rest, key, sheetId, counted } = sheet;
    const common = { ...sheet.appEnv, SHEETMETER_BENCH_UNMETERED: "1" };
    const metered = await startApp({ ...common, NODE_ENV: "production", APP_URL: "http://127.0.0.1" });
    apps.push(metered);
    const unmetered = await startApp({ ...common, NODE_ENV: "test", APP_URL: "http://127.0.0.1" });
    apps.push(unmetered);
    const route = `/api/v1/sheets/${sheetId}${flags.query ? `?${flags.query}` : ""}`;

    log(`Warming up both servers (2 s each), ${CONNECTIONS} connections…`);
    await hammer(metered.url + route, key, 2);
    await hammer(unmetered.url + route, key, 2);
    await new Promise((resolve) => setTimeout(resolve, 500));

    const roundSeconds = Math.max(1, Math.round(SECONDS_PER_MODE / ROUNDS));
    const results = { metered: [] as Round[], unmetered: [] as Round[] };
    for (let round = 1; round <= ROUNDS; round++) {
      const order = [
        ["metered", metered],
        ["unmetered", unmetered],
      ] as const;
      // ABBA: whichever mode goes second in a round runs on a warmer, busier machine; alternate who that is.
      for (const [mode, app] of round % 2 === 1 ? order : [...order].reverse()) {
        const before = await counted();
        const appCpuBefore = cpuSeconds(app.process.pid);
        const restCpuBefore = cpuSeconds(rest.pid);
        const measured = await hammer(app.url + route, key, roundSeconds);
        const perRequest = (after: number | null, start: number | null) =>
          after === null || start === null
            ? null
            : Math.round(((after - start) * 1000 * 1000) / measured.requests) / 1000;
        const result: Round = {
          ...measured,
          appCpuMs: perRequest(cpuSeconds(app.process.pid), appCpuBefore),
          restCpuMs: perRequest(cpuSeconds(rest.pid), restCpuBefore),
        };
        // Let calls still in flight when autocannon stopped finish, so they are not charged to the next round.
        await new Promise((resolve) => setTimeout(resolve, 500));
        const delta = (await counted()) - before;
        // The proof that the switch works only where it may: production counted every call, test none.
        // Requests still in flight when autocannon stops are counted by the server but not by autocannon.
        const served = result.requests - result.non2xx;
        if (mode === "metered" && (delta < served || delta > served + CONNECTIONS)) {
          throw new Error(`metered round counted ${delta} of ${result.requests} calls`);
        }
        if (mode === "unmetered" && delta !== 0) throw new Error(`unmetered round counted ${delta} calls`);
        log(
          `round ${round} ${mode.padEnd(9)} ${(result.requests / result.seconds).toFixed(0)} req/s  p50 ${result.p50} ms  p99 ${result.p99} ms  CPU/request: app ${result.appCpuMs} ms, REST stand-in ${result.restCpuMs} ms`,
        );
        results[mode].push(result);
      }
    }

    const summary = { metered: combine(results.metered), unmetered: combine(results.unmetered) };
    for (const mode of ["metered", "unmetered"] as const) {
      if (summary[mode].non2xx > 0 || summary[mode].errors > 0) {
        throw new Error(`${mode}: ${summary[mode].non2xx} non-2xx answers and ${summary[mode].errors} errors`);
      }
    }
    const ratio = Math.round((summary.metered.reqPerSec / summary.unmetered.reqPerSec) * 1000) / 1000;
    log("");
    log(
      `quota checked   ${summary.metered.reqPerSec} req/s  p50 ${summary.metered.p50Ms} ms  p99 ${summary.metered.p99Ms} ms`,
    );
    log(
      `quota bypassed  ${summary.unmetered.reqPerSec} req/s  p50 ${summary.unmetered.p50Ms} ms  p99 ${summary.unmetered.p99Ms} ms`,
    );
    log(`ratio           ${(ratio * 100).toFixed(1)} % (target ≥ ${TARGET_RATIO * 100} %)`);
    // Where the time goes: on a machine whose cores are all busy, throughput follows CPU per request.
    const appExtra =
      Math.round((summary.metered.appCpuMsPerRequest - summary.unmetered.appCpuMsPerRequest) * 100) / 100;
    log(
      `the quota check costs ${appExtra} ms of app CPU per call (its share of a batched HTTP round trip through the Upstash client) ` +
        `and ${summary.metered.restCpuMsPerRequest} ms in the local REST stand-in, which a deployment does not run`,
    );
    console.log(
      JSON.stringify({
        bench: "api",
        route: `/api/v1/sheets/:sheetId${flags.query ? `?${flags.query}` : ""}`,
        rows: ROWS,
        connections: CONNECTIONS,
        secondsPerMode: results.metered.reduce((sum, round) => sum + round.seconds, 0),
        metered: summary.metered,
        unmetered: summary.unmetered,
        ratio,
        target: TARGET_RATIO,
        pass: ratio >= TARGET_RATIO,
      }),
    );
  } finally {
    for (const app of apps) await stopProcess(app.process);
    await sheet?.close();
  }
}

main().catch((error: unknown) => {
  console.error(`bench:api failed: ${(error as Error).message}`);
  process.exitCode = 1;
});

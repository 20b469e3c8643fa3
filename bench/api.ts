import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { startApp, stopProcess, type AppServer } from "./lib/app-server";
import { measureHandlerCost } from "./lib/handler-cost";
import { cpuMsPerRequest, cpuSeconds, hammer, type LoadResult } from "./lib/load";
import { createMeteredSheet, type MeteredSheet } from "./lib/metered-sheet";
import { startPrivateRedis } from "./lib/private-redis";
import { startReferenceServer } from "./lib/reference-server";

/**
 * `npm run bench:api`: the sheet API against the least a server could do. In one run, on loopback, against a scratch
 * database and Redis database 12 behind the Upstash REST stand-in — on a redis-server this run starts for itself
 * (`--redis own`, the default: the machine's shared Redis stalls every client behind other sessions' FLUSHDB and
 * SCAN, see bench/lib/private-redis.ts) or on BENCH_REDIS_URL / REDIS_URL (`--redis shared`):
 *
 * - metered: the built app under server.js with NODE_ENV=production, exactly as deployed. SHEETMETER_BENCH_UNMETERED=1
 *   is set here too, to prove production ignores it: every round checks that each served call was counted.
 * - unmetered: the same build with NODE_ENV=test plus SHEETMETER_BENCH_UNMETERED=1, the only combination that skips
 *   the quota check (isQuotaBypassed in app/models/metered-rows.server.ts); checked to count nothing.
 * - reference: bench/lib/reference-server.ts, `node:http` + `pg` running the API's own page SQL; no framework, no
 *   key, no quota, no cache.
 *
 * Two calls — the plain first call (the default 100-row page of a 250-row sheet) and a filtered + sorted + searched
 * one — at each concurrency (10 and 50 connections), the three servers in rotating order round after round so drift
 * on a shared machine hits all alike. Each figure of a cell is the median of its rounds' own figures (req/s, p50,
 * p99, CPU), so a round that another process on the machine disturbed does not decide it. Prints req/s, p50, p99
 * and CPU per request per server (app CPU is where the time goes on a machine whose cores are all busy) and the
 * REST stand-in's CPU per metered call (Upstash's share, which here runs on the same cores); the last stdout line
 * is one JSON object (see README).
 *
 * How the latencies are taken: autocannon runs in this process, one keep-alive connection per `connections`, each
 * with one request outstanding (a closed loop), after a 2 s warm-up of each server per cell; its p99 is per round.
 * All servers share the machine's cores with autocannon, the REST stand-in, Redis and Postgres, so on a busy
 * machine p99 is mostly scheduling delay, and the reference's p99 says how much.
 *
 * `--cpu-prof <dir>` writes V8 CPU profiles of the metered server and of the REST stand-in.
 */
const { values: flags } = parseArgs({
  options: {
    // Seconds each server is loaded per (call, concurrency), split over the rounds.
    duration: { type: "string", default: "10" },
    // More, shorter rounds: each cell's figures are medians over its rounds (see combine).
    rounds: { type: "string", default: "5" },
    connections: { type: "string", default: "10,50" },
    rows: { type: "string", default: "250" },
    // Only these calls (comma-separated names: plain, filtered).
    calls: { type: "string", default: "plain,filtered" },
    // Write V8 CPU profiles of the metered app server and the REST stand-in into this directory (Chrome DevTools).
    "cpu-prof": { type: "string" },
    // "own": a redis-server of this run's own (bench/lib/private-redis.ts); "shared": BENCH_REDIS_URL / REDIS_URL.
    redis: { type: "string", default: "own" },
  },
});
const SECONDS = Number(flags.duration);
const ROUNDS = Number(flags.rounds);
const CONCURRENCIES = flags.connections.split(",").map(Number);
const ROWS = Number(flags.rows);
const CALLS: Record<string, string> = {
  plain: "",
  filtered: "active=true&sort=score&order=desc&search=1",
};
const SELECTED = flags.calls.split(",").filter((name) => name in CALLS);
const TARGETS = { referenceRatio: 1.0, p99MsAt10: 15, filteredReferenceRatio: 0.5, bypassRatio: 0.9 };
// Its own logical database: test files claim 1–9, e2e 15, the other benches 10, 11 and 13, `npm run dev` 0.
const REDIS_DB = 12;
// Far above what a run can use, so every call is served (a 429 would be a cheaper path and flatter the figure).
const BENCH_LIMIT = 2_000_000_000;
const MODES = ["metered", "unmetered", "reference"] as const;
type Mode = (typeof MODES)[number];

const log = (line: string) => console.error(line);
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Round extends LoadResult {
  cpuMs: number | null;
  restCpuMs: number | null;
}

const median = (values: number[]) => {
  const sorted = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

/**
 * A cell's figures: the median over its rounds of each round's own figure, so one round that another process on
 * the machine disturbed does not move the result (a mean of p99s is mostly the worst round's).
 */
function combine(rounds: Round[]) {
  const mid = (pick: (round: Round) => number | null, places: number) => {
    const value = median(rounds.map((round) => pick(round) ?? Number.NaN));
    return value === null ? null : Math.round(value * 10 ** places) / 10 ** places;
  };
  return {
    requests: rounds.reduce((sum, round) => sum + round.requests, 0),
    reqPerSec: mid((round) => round.requests / round.seconds, 1) ?? 0,
    p50Ms: mid((round) => round.p50, 3) ?? 0,
    p99Ms: mid((round) => round.p99, 3) ?? 0,
    cpuMsPerRequest: mid((round) => round.cpuMs, 3),
    restCpuMsPerRequest: mid((round) => round.restCpuMs, 3),
    non2xx: rounds.reduce((sum, round) => sum + round.non2xx, 0),
    errors: rounds.reduce((sum, round) => sum + round.errors, 0),
  };
}

const ratio = (a: number, b: number) => Math.round((a / b) * 1000) / 1000;

async function main() {
  if (!fs.existsSync("build/index.js")) throw new Error("No build/index.js: run `npx remix build` first.");
  const stops: (() => Promise<void>)[] = [];
  let sheet: MeteredSheet | undefined;
  let metered: AppServer | undefined;
  const profileDir = flags["cpu-prof"] ? path.resolve(flags["cpu-prof"]) : undefined;
  // A profile is written only when the process exits cleanly: SIGUSR2 makes the profiled server exit at once,
  // without waiting out server.js's graceful shutdown. The REST stand-in exits on its SIGTERM.
  const profiling = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
  if (flags.redis !== "own" && flags.redis !== "shared") throw new Error("--redis is own or shared");
  let ownRedis: Awaited<ReturnType<typeof startPrivateRedis>> | undefined;
  try {
    if (flags.redis === "own") {
      ownRedis = await startPrivateRedis();
      log(`Redis of this run's own at ${ownRedis.url} (pid ${ownRedis.pid}).`);
    }
    sheet = await createMeteredSheet({
      redisUrl: ownRedis?.url,
      restNodeArgs: profiling,
      dbPrefix: "sm_bench_api",
      redisDb: REDIS_DB,
      email: "bench-api@example.com",
      monthlyLimit: BENCH_LIMIT,
      rows: ROWS,
      log,
    });
    const { rest, key, sheetId, counted } = sheet;
    const common = { ...sheet.appEnv, SHEETMETER_BENCH_UNMETERED: "1", APP_URL: "http://127.0.0.1" };
    const appProfiling = profileDir
      ? [...profiling, "--import=data:text/javascript,process.once('SIGUSR2',()=>process.exit(0))"]
      : [];
    metered = await startApp({ ...common, NODE_ENV: "production" }, { nodeArgs: appProfiling });
    if (profileDir)
      log(`Profiling the metered server (pid ${metered.process.pid}) and the REST stand-in (pid ${rest.pid}).`);
    const meteredApp = metered;
    stops.push(async () => {
      if (profileDir) {
        const exited = new Promise((resolve) => meteredApp.process.once("exit", resolve));
        meteredApp.process.kill("SIGUSR2");
        await exited;
        log(`CPU profiles of the metered server and the REST stand-in written to ${profileDir}`);
      } else {
        await stopProcess(meteredApp.process);
      }
    });
    const unmetered = await startApp({ ...common, NODE_ENV: "test" });
    stops.push(() => stopProcess(unmetered.process));
    const reference = await startReferenceServer({ databaseUrl: sheet.databaseUrl, sheet: sheet.sheet });
    stops.push(reference.stop);
    const servers: Record<Mode, { url: string; pid: number | undefined }> = {
      metered: { url: `${meteredApp.url}/api/v1/sheets/${sheetId}`, pid: meteredApp.process.pid },
      unmetered: { url: `${unmetered.url}/api/v1/sheets/${sheetId}`, pid: unmetered.process.pid },
      reference: { url: `${reference.url}/sheets/${sheetId}`, pid: reference.pid },
    };
    const headers = { Authorization: `Bearer ${key}` };

    const roundSeconds = Math.max(1, Math.round(SECONDS / ROUNDS));
    const details: Record<string, Record<string, Record<Mode, ReturnType<typeof combine>>>> = {};
    for (const call of SELECTED) {
      const query = CALLS[call] ? `?${CALLS[call]}` : "";
      for (const connections of CONCURRENCIES) {
        log(`\n${call} call (${query || "no query"}), ${connections} connections: warming up each server 2 s…`);
        for (const mode of MODES) await hammer(servers[mode].url + query, { connections, seconds: 2, headers });
        await pause(300);
        const rounds: Record<Mode, Round[]> = { metered: [], unmetered: [], reference: [] };
        for (let round = 0; round < ROUNDS; round++) {
          // Whoever goes later in a round runs on a warmer, busier machine; rotate who that is.
          const order = MODES.map((_, index) => MODES[(index + round) % MODES.length]);
          for (const mode of order) {
            const before = mode === "reference" ? 0 : await counted();
            const cpuBefore = cpuSeconds(servers[mode].pid);
            const restBefore = cpuSeconds(rest.pid);
            const measured = await hammer(servers[mode].url + query, { connections, seconds: roundSeconds, headers });
            const result: Round = {
              ...measured,
              cpuMs: cpuMsPerRequest(cpuBefore, cpuSeconds(servers[mode].pid), measured.requests),
              restCpuMs: cpuMsPerRequest(restBefore, cpuSeconds(rest.pid), measured.requests),
            };
            // Let calls still in flight when autocannon stopped finish, so they are not charged to the next round.
            await pause(300);
            if (mode !== "reference") {
              const delta = (await counted()) - before;
              // The proof that the switch works only where it may: production counted every call, test none.
              // Requests still in flight when autocannon stops are counted by the server but not by autocannon.
              const served = result.requests - result.non2xx;
              if (mode === "metered" && (delta < served || delta > served + connections)) {
                throw new Error(`metered round counted ${delta} of ${result.requests} calls`);
              }
              if (mode === "unmetered" && delta !== 0) throw new Error(`unmetered round counted ${delta} calls`);
            }
            log(
              `  round ${round + 1} ${mode.padEnd(9)} ${(result.requests / result.seconds).toFixed(0).padStart(6)} req/s  ` +
                `p50 ${result.p50} ms  p99 ${result.p99} ms  CPU/request ${result.cpuMs} ms` +
                (mode === "metered" ? ` (+ REST stand-in ${result.restCpuMs} ms)` : ""),
            );
            rounds[mode].push(result);
          }
        }
        const summary = {
          metered: combine(rounds.metered),
          unmetered: combine(rounds.unmetered),
          reference: combine(rounds.reference),
        };
        for (const mode of MODES) {
          if (summary[mode].non2xx > 0 || summary[mode].errors > 0) {
            throw new Error(
              `${call}/${connections} ${mode}: ${summary[mode].non2xx} non-2xx, ${summary[mode].errors} errors`,
            );
          }
        }
        (details[call] ??= {})[connections] = summary;
        log(
          `  → metered ${summary.metered.reqPerSec} req/s = ${ratio(summary.metered.reqPerSec, summary.reference.reqPerSec)} × reference ` +
            `(${summary.reference.reqPerSec}), ${ratio(summary.metered.reqPerSec, summary.unmetered.reqPerSec)} × bypassed; ` +
            `app CPU ${summary.metered.cpuMsPerRequest} ms/request vs reference ${summary.reference.cpuMsPerRequest} ms`,
        );
      }
    }

    // What a custom server dispatching straight to the handler would pay per call, framework aside.
    const handlerCost: Record<string, Awaited<ReturnType<typeof measureHandlerCost>>> = {};
    for (const call of SELECTED) {
      const query = CALLS[call] ? `?${CALLS[call]}` : "";
      handlerCost[call] = await measureHandlerCost({ appEnv: sheet.appEnv, key, sheetId, query, calls: 2_000 });
      log(
        `handleSheetRequest in process, ${call} call: ${handlerCost[call].sequentialCpuUs} µs CPU per call one at a time, ` +
          `${handlerCost[call].concurrent10CpuUs} µs ten at a time (quota round trip's client side included)`,
      );
    }

    const cell = (call: string, connections: number) => details[call]?.[connections];
    const scenarios = Object.fromEntries(
      Object.entries(details).map(([call, byConnections]) => [
        call,
        Object.fromEntries(
          Object.entries(byConnections).map(([connections, summary]) => [
            connections,
            {
              ...summary,
              referenceRatio: ratio(summary.metered.reqPerSec, summary.reference.reqPerSec),
              bypassRatio: ratio(summary.metered.reqPerSec, summary.unmetered.reqPerSec),
            },
          ]),
        ),
      ]),
    );
    const headline = cell("plain", 10) ?? Object.values(Object.values(details)[0])[0];
    const referenceRatio = ratio(headline.metered.reqPerSec, headline.reference.reqPerSec);
    const bypassRatio = ratio(headline.metered.reqPerSec, headline.unmetered.reqPerSec);
    const ratioAt = (call: string, connections: number) => {
      const summary = cell(call, connections);
      return summary ? ratio(summary.metered.reqPerSec, summary.reference.reqPerSec) : null;
    };
    const atLeast = (value: number | null, target: number) => (value === null ? null : value >= target);
    const pass = {
      plainReferenceRatioAt10: atLeast(ratioAt("plain", 10), TARGETS.referenceRatio),
      plainReferenceRatioAt50: atLeast(ratioAt("plain", 50), TARGETS.referenceRatio),
      p99At10: cell("plain", 10) ? cell("plain", 10)!.metered.p99Ms <= TARGETS.p99MsAt10 : null,
      filteredReferenceRatioAt10: atLeast(ratioAt("filtered", 10), TARGETS.filteredReferenceRatio),
      filteredReferenceRatioAt50: atLeast(ratioAt("filtered", 50), TARGETS.filteredReferenceRatio),
      bypassRatio: bypassRatio >= TARGETS.bypassRatio,
    };
    const all = Object.values(pass).every((value) => value !== false);
    log("");
    log(
      `plain call, 10 connections: metered ${headline.metered.reqPerSec} req/s, reference ${headline.reference.reqPerSec} req/s`,
    );
    log(
      `referenceRatio ${referenceRatio} (target ≥ ${TARGETS.referenceRatio}), bypassRatio ${bypassRatio} (≥ ${TARGETS.bypassRatio})`,
    );
    log(`pass: ${JSON.stringify(pass)}`);
    console.log(
      JSON.stringify({
        bench: "api",
        route: "/api/v1/sheets/:sheetId",
        rows: ROWS,
        calls: Object.fromEntries(SELECTED.map((call) => [call, CALLS[call]])),
        secondsPerServerPerCell: roundSeconds * ROUNDS,
        metered: pick(headline.metered, true),
        reference: pick(headline.reference),
        unmetered: pick(headline.unmetered),
        referenceRatio,
        bypassRatio,
        scenarios,
        handlerCpuUsPerCall: handlerCost,
        targets: TARGETS,
        pass: { ...pass, all },
      }),
    );
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await sheet?.close();
    // Last: closing the sheet flushes the bench's database on it.
    await ownRedis?.stop();
  }
}

function pick(summary: ReturnType<typeof combine>, withRest = false) {
  return {
    reqPerSec: summary.reqPerSec,
    p50Ms: summary.p50Ms,
    p99Ms: summary.p99Ms,
    cpuMsPerRequest: summary.cpuMsPerRequest,
    // The REST stand-in's CPU per call: Upstash's share, which on this machine competes with the app for its cores.
    ...(withRest ? { restCpuMsPerRequest: summary.restCpuMsPerRequest } : {}),
  };
}

main().catch((error: unknown) => {
  console.error(`bench:api failed: ${(error as Error).message}`);
  process.exitCode = 1;
});

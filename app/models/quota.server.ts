import { createHash, randomUUID } from "node:crypto";
import { errors, type Redis, type Requester } from "@upstash/redis";
import type { Db } from "~/utils/db.server";
import { outcomesExpiresAt, outcomesKey, outcomesKeyPrefix } from "./request-outcomes.server";
import {
  keyUsageKey,
  periodEnd,
  periodOf,
  periodStart,
  quotaKey,
  secondsUntilReset,
  thresholdMarkKey,
} from "~/utils/period";

/**
 * The monthly quota. The live count is `quota:{userId}:{YYYY-MM}` in Redis; the hourly sync copies it into
 * UsageSnapshot. Checking and counting a call is one EVALSHA, so concurrent calls can never be admitted past the
 * limit and the hot path costs one Redis round trip.
 */
export interface QuotaOwner {
  userId: string;
  monthlyLimit: number;
  /** The API key the call is made with: a counted call also counts against it. Absent, only the account counts. */
  keyId?: string;
  /**
   * The HTTP status a counted call will be answered with (200, or 304 for a matching If-None-Match): the script then
   * tallies the answer by outcome (request-outcomes.server.ts) in the same run, 429 for a call it refuses. Absent,
   * no outcome is tallied (scripts, tests, anything that is not an API answer).
   */
  servedStatus?: 200 | 304;
}

/** The usage thresholds the quota script reports, in percent of the month's limit. */
export type UsageThreshold = 80 | 100;

export interface QuotaState {
  used: number;
  limit: number;
  remaining: number;
  period: string;
  resetsAt: Date;
  resetSeconds: number;
}

// A counter outlives its month by a week so the first syncs of the next month still read the final value.
const COUNTER_GRACE_SECONDS = 7 * 24 * 60 * 60;

/**
 * Exactly-once counting. A consumption carries an id, and the script keeps its answer under
 * `consumption:{id}` for a minute, so the same consumption sent again (the transport resends after a lost reply)
 * gets the first answer instead of counting twice. It also carries a deadline (unix ms, the app's clock), which
 * the script compares with Redis's clock: past it the caller has already answered 503, so the consumption must not
 * count. The record's key must not start with "quota:" — the sync SCANs `quota:*` for counters.
 */
const CONSUMPTION_RECORD_MS = 60_000;
const consumptionKey = (id: string) => `consumption:${id}`;

/** Script statuses. WITHDRAWN: not counted, because it reached Redis after its deadline or was refunded. */
const COUNTED = 1;
const MISSING = -1;
const WITHDRAWN = -2;
const STALE = -3;

/**
 * KEYS[1] the counter, KEYS[2] the consumption's record, KEYS[3] the month's per-key counts (a hash, field = key
 * id), KEYS[4] and KEYS[5] the month's 80 % and 100 % marks, KEYS[6] the hour's outcome tallies
 * (request-outcomes.server.ts), optionally KEYS[7] the owner's cache version (owner-version.server.ts); ARGV[1] the limit; ARGV[2] when the counter expires (unix seconds); ARGV[3] the value
 * to seed a missing counter with, or "" to only report that it is missing; ARGV[4] the deadline (unix ms); ARGV[5]
 * how long the record lives (ms); ARGV[6] the version the caller's cached data was read under ("" = missing);
 * ARGV[7] the id of the API key the call was made with ("" = none, nothing counted per key); ARGV[8] the
 * status a counted call is answered with ("" = tally nothing); ARGV[9] when the tallies expire (unix seconds).
 * Returns { status, used, limit, "", crossed, keyId } with status 1 = counted, 0 = over the limit (not counted),
 * -1 = counter missing, -2 = withdrawn, or { -3, 0, limit, version } = stale: the caller's key, limit or sheet may
 * have changed since it cached them, so nothing is counted and the caller reloads and sends the same consumption
 * again. The version is checked after the record, so a resend of a consumption that already counted gets its first
 * answer. Seeding happens in the script, after the caller read the snapshot, so two calls that both found
 * the counter missing cannot both seed it: the second sees the first one's value and ignores its own seed.
 * "Missing" and "withdrawn" are not recorded: the caller runs the same consumption again with a seed, and a late
 * copy is past the same deadline.
 *
 * Per key: a counted call also adds one to its key's field of KEYS[3], in the same run, so the keys' counts add up
 * to the counter (less the calls made without a key). The hash expires with the counter. Its name does not start
 * with "quota:", so the sync's SCAN of counters never meets it; the sync reads it beside each counter it reads.
 *
 * Thresholds: `crossed` is a bit set, 1 = this call brought the month to 80 % of the limit (ceil(0.8 · limit)),
 * 2 = to 100 %. Each is claimed with SET NX on its mark, which expires with the counter, so of any number of
 * concurrent calls exactly one reports it, once a month. A refused call claims them too: a limit lowered under
 * the month's usage is "reached" without any call counting. The marks hold the limit they fired at; a raised limit
 * does not fire a threshold again in the same month (one event per threshold per month), but a threshold not yet
 * reached follows the limit in force. The record keeps the key's id, so a refund gives that key's unit back.
 *
 * Outcomes: with ARGV[8] set, a counted call adds one to field ARGV[8] of KEYS[6] and a refused one to field "429",
 * in the same run (no round trip of its own). A stale, missing or withdrawn run tallies nothing, and a resend gets the
 * recorded answer without tallying again. The record keeps the hash's hour and the field, so a refund takes the
 * tally back; not the hash's full name, because a record cannot be found by account and must not name one.
 */
const CONSUME_SCRIPT = `
local recorded = redis.call('GET', KEYS[2])
if recorded then return cjson.decode(recorded) end
local limit = tonumber(ARGV[1])
if KEYS[7] then
  local version = redis.call('GET', KEYS[7]) or ''
  if version ~= ARGV[6] then return {-3, 0, limit, version} end
end
local now = redis.call('TIME')
if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) > tonumber(ARGV[4]) then return {-2, 0, limit} end
local used = redis.call('GET', KEYS[1])
if not used then
  if ARGV[3] == '' then return {-1, 0, limit} end
  redis.call('SET', KEYS[1], ARGV[3])
  redis.call('EXPIREAT', KEYS[1], ARGV[2])
  used = ARGV[3]
end
used = tonumber(used)
local status = 0
if used < limit then
  status = 1
  used = redis.call('INCR', KEYS[1])
  if ARGV[7] ~= '' and redis.call('HINCRBY', KEYS[3], ARGV[7], 1) == 1 then redis.call('EXPIREAT', KEYS[3], ARGV[2]) end
end
local crossed = 0
if limit > 0 then
  if used >= math.floor((4 * limit + 4) / 5) and redis.call('SET', KEYS[4], limit, 'NX', 'EXAT', ARGV[2]) then
    crossed = crossed + 1
  end
  if used >= limit and redis.call('SET', KEYS[5], limit, 'NX', 'EXAT', ARGV[2]) then crossed = crossed + 2 end
end
local outcome = ''
if ARGV[8] ~= '' then
  if status == 1 then outcome = ARGV[8] else outcome = '429' end
  if redis.call('HINCRBY', KEYS[6], outcome, 1) == 1 then redis.call('EXPIREAT', KEYS[6], ARGV[9]) end
end
local answer = {status, used, limit, '', crossed, ARGV[7], string.match(KEYS[6], '[^:]+$'), outcome}
redis.call('SET', KEYS[2], cjson.encode(answer), 'PX', ARGV[5])
return answer
`;

/**
 * KEYS[1] the counter, KEYS[2] the consumption's record, KEYS[3] the month's per-key counts; ARGV[1] how long a new
 * record lives (ms); ARGV[2] the owner's outcome-hash prefix, to which the record's hour is appended.
 * Gives back the unit of a consumption that was counted and not yet refunded, and only that, so a resent refund
 * cannot give back two; the key it was counted against (kept in the record) gets its unit back too. A consumption
 * not seen yet is withdrawn before it arrives: if a copy of it is still on its way, it will not count. Never
 * creates a counter (a DECR on a missing key would start the month at -1), nor a per-key count; the outcome
 * tally the consumption made (recorded with it) is taken back the same way. A threshold mark
 * stays: the month reached it, and a refunded call does not make it fire twice.
 */
const REFUND_SCRIPT = `
local recorded = redis.call('GET', KEYS[2])
if not recorded then
  redis.call('SET', KEYS[2], cjson.encode({-2, 0, 0}), 'PX', ARGV[1])
  return 0
end
local answer = cjson.decode(recorded)
if answer[1] ~= 1 then return 0 end
answer[1] = -2
redis.call('SET', KEYS[2], cjson.encode(answer), 'KEEPTTL')
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('DECR', KEYS[1]) end
local keyId = answer[6]
if keyId and keyId ~= '' and redis.call('HEXISTS', KEYS[3], keyId) == 1 then
  redis.call('HINCRBY', KEYS[3], keyId, -1)
end
local outcome = answer[8]
local outcomes = ARGV[2] .. (answer[7] or '')
if outcome and outcome ~= '' and redis.call('HEXISTS', outcomes, outcome) == 1 then
  redis.call('HINCRBY', outcomes, outcome, -1)
end
return 1
`;

/** The consumption reached Redis after its deadline (or was refunded first); it was not counted. */
export class QuotaConsumptionWithdrawnError extends Error {
  constructor() {
    super("The quota consumption reached Redis after its deadline and was not counted.");
    this.name = "QuotaConsumptionWithdrawnError";
  }
}

/** One quota consumption: its id (one per API call, kept across resends) and how long Redis has to count it. */
export interface Consumption {
  id: string;
  timeoutMs: number;
}

// REDIS_TIMEOUT_MS's default, for callers (tests, scripts) that do not pass their client's own.
const DEFAULT_CONSUMPTION_TIMEOUT_MS = 1000;

export function newConsumption(timeoutMs: number = DEFAULT_CONSUMPTION_TIMEOUT_MS): Consumption {
  return { id: randomUUID(), timeoutMs };
}

type ScriptResult = [status: number, used: number, limit: number, version?: string, crossed?: number, keyId?: string];
type QuotaScripts = { refund: ReturnType<Redis["createScript"]> };

// Script objects cache their SHA-1; `exec` sends EVALSHA and falls back to EVAL (which loads the script) only
// when Redis answers NOSCRIPT, e.g. after a restart or SCRIPT FLUSH.
const scriptsByClient = new WeakMap<Redis, QuotaScripts>();

function scriptsFor(redis: Redis): QuotaScripts {
  let scripts = scriptsByClient.get(redis);
  if (!scripts) {
    scripts = { refund: redis.createScript(REFUND_SCRIPT) };
    scriptsByClient.set(redis, scripts);
  }
  return scripts;
}

/**
 * Coalescing of concurrent quota checks. Calls made during one turn of the event loop (typically all the API
 * requests whose earlier steps finished in the same poll phase) are held until `setImmediate` and sent as ONE
 * pipeline of EVALSHAs: one HTTP round trip to Upstash instead of one per call, which is most of what a check
 * costs. Each EVALSHA is still its own atomic script run on its own counter, so batching changes nothing about
 * who is admitted; Redis runs them one after the other, in call order. Each caller gets its own reply or error.
 * A batch of one is sent as a single EVALSHA, so a lightly loaded server pays only the wait for the end of the
 * current loop turn; under load, a batch may also wait briefly for a round trip in flight (below).
 */
interface PendingConsume {
  keys: string[];
  args: string[];
  resolve: (result: ScriptResult) => void;
  reject: (error: unknown) => void;
}

// Bounds one request's size (Upstash limits it); 256 short commands make a body of a few tens of KB.
export const MAX_QUOTA_BATCH = 256;
const CONSUME_SHA1 = createHash("sha1").update(CONSUME_SCRIPT).digest("hex");
/** Round trips the batcher made, for tests and benches: how many pipelines, and how many calls rode in them. */
export const quotaBatchStats = { batches: 0, calls: 0 };

/**
 * Up to MAX_IN_FLIGHT batches travel at once; a batch whose turn ends while that many are out waits for one of them
 * to come back (up to HOLD_MS) and keeps taking calls, so under load the calls that arrive during the round trips
 * leave together instead of each loop turn sending a pipeline of its own: every HTTP request to Upstash costs the
 * app (and Upstash) far more CPU than one more command in it.
 *
 * Why several and not one: with a single batch in flight, the calls that arrived during its round trip had to wait
 * for it to come back before theirs could start, so at low concurrency (10 connections) a call waited about two
 * round trips, and the calls fell into two groups taking turns on one pipe. With several out at once a call waits
 * about one; under heavy load batches still grow, since all of them are out and the next one is held. bench:api
 * figures for 1, 2 and 4 are in docs/caching.md ("What was cut, and by how much").
 *
 * The wait is bounded so a slow or hung round trip delays the next batch by HOLD_MS at most; a consumption's
 * deadline is fixed when it is queued, so a held call can only be refused earlier by Redis, never counted late.
 */
const HOLD_MS = 5;
const MAX_IN_FLIGHT = 4;

interface Batching {
  /** The batch still taking calls, if any. */
  open?: PendingConsume[];
  /** A batch whose turn has ended, waiting for a round trip in flight to come back (or HOLD_MS). */
  held?: { batch: PendingConsume[]; timer: NodeJS.Timeout };
  inFlight: number;
}
const batchingByClient = new WeakMap<Redis, Batching>();

function batchingOf(redis: Redis): Batching {
  let batching = batchingByClient.get(redis);
  if (!batching) {
    batching = { inFlight: 0 };
    batchingByClient.set(redis, batching);
  }
  return batching;
}

function runConsume(redis: Redis, keys: string[], args: string[]): Promise<ScriptResult> {
  return new Promise<ScriptResult>((resolve, reject) => {
    const batching = batchingOf(redis);
    let batch = batching.open;
    if (!batch) {
      const opened: PendingConsume[] = [];
      batch = batching.open = opened;
      setImmediate(() => turnEnded(redis, batching, opened));
    }
    batch.push({ keys, args, resolve, reject });
    // A full batch takes no more calls and leaves now, whatever is in flight; later calls start the next one.
    if (batch.length >= MAX_QUOTA_BATCH) send(redis, batching, batch);
  });
}

function turnEnded(redis: Redis, batching: Batching, batch: PendingConsume[]) {
  if (batching.open !== batch) return; // already sent (it filled up)
  if (batching.inFlight < MAX_IN_FLIGHT || batching.held) return send(redis, batching, batch);
  batching.held = { batch, timer: setTimeout(() => send(redis, batching, batch), HOLD_MS) };
}

function send(redis: Redis, batching: Batching, batch: PendingConsume[]) {
  if (batching.open === batch) batching.open = undefined;
  if (batching.held?.batch === batch) {
    clearTimeout(batching.held.timer);
    batching.held = undefined;
  }
  batching.inFlight += 1;
  // Whatever goes wrong, no caller may be left waiting; settling a settled promise again does nothing.
  flushConsumes(redis, batch)
    .catch((error: unknown) => batch.forEach((call) => call.reject(error)))
    .finally(() => {
      batching.inFlight -= 1;
      if (batching.held) send(redis, batching, batching.held.batch);
    });
}

const isNoScript = (error: unknown) => /noscript/i.test(String(error instanceof Error ? error.message : error));

/**
 * The consumptions go to Upstash as plain commands through the client's requester rather than the SDK's command
 * objects: the SDK tries `JSON.parse` on every string of every reply and the script's answer holds two that are not
 * JSON (the version placeholder and the key's id), so each call paid for two thrown exceptions — a fifth of the
 * check's client-side CPU under load. The request on the wire and the replies are the same; the script's answer is
 * integers and strings, which need no parsing.
 */
function requesterOf(redis: Redis): Requester {
  // The SDK keeps its requester in the (TypeScript-protected) `client` field; the quota tests would fail at once
  // if an upgrade moved it.
  return (redis as unknown as { client: Requester }).client;
}

type RestReply = { result?: unknown; error?: string };
const evalshaCommand = (call: PendingConsume) => [
  "evalsha",
  CONSUME_SHA1,
  String(call.keys.length),
  ...call.keys,
  ...call.args,
];
const evalCommand = (call: PendingConsume) => [
  "eval",
  CONSUME_SCRIPT,
  String(call.keys.length),
  ...call.keys,
  ...call.args,
];

async function sendOne(requester: Requester, command: string[]): Promise<ScriptResult> {
  const { result, error } = await requester.request<ScriptResult>({ body: command });
  if (error) throw new errors.UpstashError(error);
  if (!Array.isArray(result)) throw new errors.UpstashError("The quota script answered no result");
  return result;
}

async function flushConsumes(redis: Redis, batch: PendingConsume[]): Promise<void> {
  quotaBatchStats.batches += 1;
  quotaBatchStats.calls += batch.length;
  const requester = requesterOf(redis);
  if (batch.length === 1) {
    // A lone check is one EVALSHA, as the SDK's Script.exec sends it, then EVAL (which loads the script) after
    // NOSCRIPT.
    const [only] = batch;
    await sendOne(requester, evalshaCommand(only))
      .catch((error: unknown) => {
        if (isNoScript(error)) return sendOne(requester, evalCommand(only));
        throw error;
      })
      .then(only.resolve, only.reject);
    return;
  }

  let replies: RestReply[];
  try {
    // A pipeline's answer is one { result } or { error } per command, in order.
    replies = (await requester.request({ path: ["pipeline"], body: batch.map(evalshaCommand) })) as never;
  } catch (error) {
    // The round trip itself failed (Redis unreachable, 5xx…): every caller fails, and each fails closed.
    for (const call of batch) call.reject(error);
    return;
  }

  // NOSCRIPT (Redis restarted or flushed its scripts) means that command did not run, so sending it again as EVAL,
  // which also reloads the script, cannot count a call twice.
  const reload: PendingConsume[] = [];
  batch.forEach((call, index) => {
    const { result, error } = replies[index] ?? { result: undefined, error: "no reply for this command" };
    if (!error) call.resolve(result as ScriptResult);
    else if (isNoScript(error)) reload.push(call);
    else call.reject(new errors.UpstashError(`Quota script failed: ${error}`));
  });
  if (reload.length === 0) return;
  try {
    const retried = (await requester.request({
      path: ["pipeline"],
      body: reload.map(evalCommand),
    })) as never as RestReply[];
    reload.forEach((call, index) => {
      const { result, error } = retried[index] ?? { result: undefined, error: "no reply for this command" };
      if (error) call.reject(new errors.UpstashError(`Quota script failed: ${error}`));
      else call.resolve(result as ScriptResult);
    });
  } catch (error) {
    for (const call of reload) call.reject(error);
  }
}

function thresholdsIn(crossed: number): UsageThreshold[] {
  const thresholds: UsageThreshold[] = [];
  if (crossed & 1) thresholds.push(80);
  if (crossed & 2) thresholds.push(100);
  return thresholds;
}

function expiresAtSeconds(period: string): string {
  return String(Math.floor(periodEnd(period).getTime() / 1000) + COUNTER_GRACE_SECONDS);
}

function stateOf(used: number, limit: number, period: string, now: Date): QuotaState {
  return {
    used,
    limit,
    remaining: Math.max(0, limit - used),
    period,
    resetsAt: periodEnd(period),
    resetSeconds: secondsUntilReset(period, now),
  };
}

/** The highest count the sync recorded for this user and month, or 0; usage within a month only grows. */
export async function latestSnapshotUsed(db: Db, userId: string, period: string): Promise<number> {
  // The month's hours through the (userId, hour) primary key: the same rows a (userId, period) index would find,
  // without the second index every one of the sync's inserts would have to maintain.
  const result = await db.usageSnapshot.aggregate({
    where: { userId, period, hour: { gte: periodStart(period), lt: periodEnd(period) } },
    _max: { used: true },
  });
  return result._max.used ?? 0;
}

/**
 * Counts one call if the owner is under their limit. A missing counter (new month, flushed or failed-over Redis)
 * costs one Postgres read and a second script call that seeds it from the latest snapshot, never from 0 when a
 * snapshot exists. Throws when Redis cannot be reached, and QuotaConsumptionWithdrawnError when the script ran
 * after the deadline; callers fail closed. Give it the client's own request timeout: each script run must be
 * counted before the transport gives up on it, or not at all.
 */
export async function consumeQuota(
  redis: Redis,
  db: Db,
  owner: QuotaOwner,
  now: Date = new Date(),
  consumption: Consumption = newConsumption(),
): Promise<QuotaOutcome> {
  const outcome = await runConsumption(redis, db, owner, undefined, now, consumption);
  if ("stale" in outcome) throw new Error("unreachable: no version was checked");
  return outcome;
}

/**
 * What a consumption comes to. `crossed` names the thresholds this very consumption was the one to reach (usually
 * none); the quota script hands each out once a month, so the caller that gets one is the one to report it.
 */
export type QuotaOutcome = QuotaState & { allowed: boolean; crossed: UsageThreshold[] };

/** What a consumption checked against the owner's cache version comes to. */
export type VersionedQuotaOutcome = QuotaOutcome | { stale: true; version: string };

/**
 * `consumeQuota`, counted only if the owner's cache version in Redis is still `expected.version` (read in the same
 * script, so it costs no extra round trip). Otherwise nothing is counted and the current version comes back: the
 * caller reloads what it cached (the key, the limit, the sheet) and sends the same consumption again.
 */
export function consumeQuotaIfCurrent(
  redis: Redis,
  db: Db,
  owner: QuotaOwner,
  expected: { key: string; version: string },
  now: Date = new Date(),
  consumption: Consumption = newConsumption(),
): Promise<VersionedQuotaOutcome> {
  return runConsumption(redis, db, owner, expected, now, consumption);
}

async function runConsumption(
  redis: Redis,
  db: Db,
  owner: QuotaOwner,
  expected: { key: string; version: string } | undefined,
  now: Date,
  consumption: Consumption,
): Promise<VersionedQuotaOutcome> {
  const period = periodOf(now);
  const keys = [
    quotaKey(owner.userId, period),
    consumptionKey(consumption.id),
    keyUsageKey(owner.userId, period),
    thresholdMarkKey(owner.userId, period, 80),
    thresholdMarkKey(owner.userId, period, 100),
    outcomesKey(owner.userId, now),
  ];
  if (expected) keys.push(expected.key);
  // The deadline starts when the script is queued, no later than the transport starts its own clock for the
  // request, so Redis stops counting no later than the caller stops waiting.
  const argsWith = (seed: string) => [
    String(owner.monthlyLimit),
    expiresAtSeconds(period),
    seed,
    String(Date.now() + consumption.timeoutMs),
    String(CONSUMPTION_RECORD_MS),
    expected?.version ?? "",
    owner.keyId ?? "",
    owner.servedStatus === undefined ? "" : String(owner.servedStatus),
    owner.servedStatus === undefined ? "" : String(outcomesExpiresAt(now)),
  ];

  let [status, used, limit, version, crossed] = await runConsume(redis, keys, argsWith(""));
  if (status === MISSING) {
    const seed = await latestSnapshotUsed(db, owner.userId, period);
    [status, used, limit, version, crossed] = await runConsume(redis, keys, argsWith(String(seed)));
  }
  if (status === STALE) return { stale: true, version: version === undefined ? "" : String(version) };
  if (status === WITHDRAWN) throw new QuotaConsumptionWithdrawnError();
  return {
    allowed: status === COUNTED,
    crossed: thresholdsIn(Number(crossed ?? 0)),
    ...stateOf(used, limit, period, now),
  };
}

/**
 * Gives back the unit `consumeQuota` counted for this consumption, for a call that then failed, so only
 * successful calls count; also withdraws a consumption whose answer never came back. Idempotent: a consumption
 * is refunded at most once. Pass the period `consumeQuota` returned (or would have): a call straddling midnight at
 * month end refunds the month it used.
 */
export async function refundQuota(redis: Redis, userId: string, period: string, consumptionId: string): Promise<void> {
  await scriptsFor(redis).refund.exec(
    [quotaKey(userId, period), consumptionKey(consumptionId), keyUsageKey(userId, period)],
    [String(CONSUMPTION_RECORD_MS), outcomesKeyPrefix(userId)],
  );
}

/** The owner's usage this month, counting nothing. A missing counter reads as the latest snapshot, else 0. */
export async function getUsage(redis: Redis, db: Db, owner: QuotaOwner, now: Date = new Date()): Promise<QuotaState> {
  const period = periodOf(now);
  const live = await redis.get<number | string>(quotaKey(owner.userId, period));
  const used = live === null ? await latestSnapshotUsed(db, owner.userId, period) : Number(live);
  return stateOf(used, owner.monthlyLimit, period, now);
}

/**
 * Puts a lost counter back at the latest snapshot's value (SET NX: a counter that exists is never touched).
 * Returns the counter's value afterwards. `consumeQuota` does this itself; this is for operators and tests.
 */
export async function restoreCounterFromSnapshot(
  redis: Redis,
  db: Db,
  userId: string,
  now: Date = new Date(),
): Promise<number> {
  const period = periodOf(now);
  const key = quotaKey(userId, period);
  const seed = await latestSnapshotUsed(db, userId, period);
  await redis.set(key, seed, { nx: true, exat: Number(expiresAtSeconds(period)) });
  return Number(await redis.get<number | string>(key));
}

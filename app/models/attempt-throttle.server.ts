import type { Redis } from "@upstash/redis";

/**
 * Admits an attempt only while every one of its buckets is under its limit, and counts it in all of them, in one
 * Lua script: Redis runs a script alone, so concurrent attempts cannot all read "4 of 5" and all go ahead, which
 * is how 40 concurrent guesses used to get up to 25 password checks.
 *
 * A bucket is a set of attempt ids that expires a fixed window after its first attempt. A set rather than an INCR
 * because the Redis transport resends a request whose reply was lost: the resent attempt finds its own id already
 * in the first bucket and is admitted again without being counted twice. (Not @upstash/ratelimit: its counters
 * cannot tell a resend from a new attempt, and it checks one limiter at a time, so an attempt refused by the
 * second would already have been counted by the first.)
 *
 * Returns { 1, 0, 0 } when admitted, else { 0, seconds until the fullest refusing bucket empties, its index }.
 */
const ADMIT_SCRIPT = `
local id = ARGV[1]
local window = tonumber(ARGV[2])
if redis.call('SISMEMBER', KEYS[1], id) == 1 then return {1, 0, 0} end
local wait, refusedBy = 0, 0
for i, key in ipairs(KEYS) do
  if redis.call('SCARD', key) >= tonumber(ARGV[i + 2]) then
    local ttl = redis.call('TTL', key)
    if ttl < 1 then ttl = window end
    if ttl > wait then wait, refusedBy = ttl, i end
  end
end
if refusedBy > 0 then return {0, wait, refusedBy} end
for _, key in ipairs(KEYS) do
  redis.call('SADD', key, id)
  redis.call('EXPIRE', key, window, 'NX')
end
return {1, 0, 0}
`;

export interface Bucket {
  key: string;
  limit: number;
}

export type Admission = { admitted: true } | { admitted: false; retryAfterSeconds: number; refusedBy: Bucket };

const scriptByClient = new WeakMap<Redis, ReturnType<Redis["createScript"]>>();

/** Throws when Redis cannot answer in time; callers refuse the attempt rather than skip the throttle. */
export async function admitAttempt(
  redis: Redis,
  attemptId: string,
  buckets: Bucket[],
  windowSeconds: number,
): Promise<Admission> {
  let script = scriptByClient.get(redis);
  if (!script) {
    // The script object caches its SHA-1 and sends EVALSHA, falling back to EVAL only when Redis lost the script.
    script = redis.createScript(ADMIT_SCRIPT);
    scriptByClient.set(redis, script);
  }
  const [admitted, wait, refusedBy] = (await script.exec(
    buckets.map((bucket) => bucket.key),
    [attemptId, String(windowSeconds), ...buckets.map((bucket) => String(bucket.limit))],
  )) as [number, number, number];
  if (admitted === 1) return { admitted: true };
  return { admitted: false, retryAfterSeconds: Math.max(wait, 1), refusedBy: buckets[refusedBy - 1] };
}

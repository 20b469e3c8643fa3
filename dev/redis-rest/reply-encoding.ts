/** A reply as ioredis's `callBuffer` gives it untransformed; errors nested in arrays arrive as `Error` values. */
export type RawReply = Buffer | string | number | null | Error | RawReply[];

/** What one command answers over REST: `{ result }`, or `{ error }` — the only error form Upstash has. */
export type CommandAnswer = { result: EncodedReply } | { error: string };
export type EncodedReply = string | number | null | EncodedReply[];

/** The first error anywhere in a reply, e.g. a Lua table holding `redis.error_reply(…)`. */
export function findError(reply: RawReply): Error | undefined {
  if (reply instanceof Error) return reply;
  if (!Array.isArray(reply)) return undefined;
  for (const item of reply) {
    const error = findError(item);
    if (error) return error;
  }
  return undefined;
}

function encodeValue(reply: RawReply, base64: boolean): EncodedReply {
  if (reply === null || typeof reply === "number") return reply;
  if (Array.isArray(reply)) return reply.map((item) => encodeValue(item, base64));
  const buffer = Buffer.isBuffer(reply) ? reply : Buffer.from(String(reply));
  return base64 ? buffer.toString("base64") : buffer.toString("utf8");
}

/**
 * Encodes one command's reply as Upstash does. An error inside an array would otherwise reach the client as a
 * string indistinguishable from data, so it turns the whole answer into `{ error }`. With `Upstash-Encoding:
 * base64` every string is base64 except a top-level "OK", which Upstash leaves as it is (and the SDK expects).
 */
export function answerFor(reply: RawReply, base64: boolean): CommandAnswer {
  const error = findError(reply);
  if (error) return { error: error.message };
  if (base64 && Buffer.isBuffer(reply) && reply.length === 2 && reply.toString("latin1") === "OK") {
    return { result: "OK" };
  }
  return { result: encodeValue(reply, base64) };
}

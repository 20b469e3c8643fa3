import type http from "node:http";
import type { Redis as IORedis } from "ioredis";

/**
 * One SSE line per event, in the shape `@upstash/redis`'s `Subscriber` parses: `subscribe,<channel>,<count>`,
 * `message,<channel>,<message>`, `psubscribe,<pattern>,<count>`, `pmessage,<pattern>,<channel>,<message>`.
 * A message holding line breaks is split over several `data:` lines, as the SSE format requires.
 */
function event(...fields: (string | number)[]): string {
  return `${fields
    .join(",")
    .split(/\r\n|\r|\n/)
    .map((line) => `data: ${line}`)
    .join("\n")}\n\n`;
}

/**
 * Streams a `/subscribe/<channel>…` or `/psubscribe/<pattern>…` request as server-sent events until the client goes
 * away, on a Redis connection of its own (a subscribed connection can do nothing else).
 */
export async function streamSubscription(
  kind: "subscribe" | "psubscribe",
  channels: string[],
  subscriber: IORedis,
  res: http.ServerResponse,
  headers: Record<string, string>,
): Promise<void> {
  const end = () => subscriber.disconnect();
  res.once("close", end);
  subscriber.once("end", () => res.end());

  subscriber.on("messageBuffer", (channel: Buffer, message: Buffer) => {
    res.write(event("message", channel.toString("utf8"), message.toString("utf8")));
  });
  subscriber.on("pmessageBuffer", (pattern: Buffer, channel: Buffer, message: Buffer) => {
    res.write(event("pmessage", pattern.toString("utf8"), channel.toString("utf8"), message.toString("utf8")));
  });

  res.writeHead(200, {
    ...headers,
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    Connection: "keep-alive",
  });
  // The SDK's fetch resolves on the headers; without this they would wait for the first event.
  res.flushHeaders();
  // One channel at a time, so each confirmation carries the subscription count Redis reports after it.
  for (const channel of channels) {
    const count = kind === "subscribe" ? await subscriber.subscribe(channel) : await subscriber.psubscribe(channel);
    res.write(event(kind, channel, count as number));
  }
}

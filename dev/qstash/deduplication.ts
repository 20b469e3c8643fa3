import { createHash } from "node:crypto";
import type { PublishRequest } from "./publish-request";

// Production QStash keeps deduplication ids for a while; ten minutes covers any local retry loop.
const DEDUPLICATION_WINDOW_MS = 10 * 60 * 1000;

/**
 * Remembers which message a deduplication id (or, with content-based deduplication, which destination, headers
 * and body) was first published as, so a repeat within the window returns that message instead of a new one.
 */
export function createDeduplication(now: () => Date) {
  const seen = new Map<string, { messageId: string; expiresAt: number }>();

  function keyOf(destination: string, body: Buffer, publish: PublishRequest): string | undefined {
    if (publish.deduplicationId) return `id:${publish.deduplicationId}`;
    if (!publish.contentBasedDeduplication) return undefined;
    const hash = createHash("sha256").update(destination).update(JSON.stringify(publish.forwarded)).update(body);
    return `content:${hash.digest("hex")}`;
  }

  return {
    keyOf,
    earlierMessageId(key: string | undefined): string | undefined {
      const previous = key ? seen.get(key) : undefined;
      return previous && previous.expiresAt > now().getTime() ? previous.messageId : undefined;
    },
    remember(key: string | undefined, messageId: string): void {
      if (key) seen.set(key, { messageId, expiresAt: now().getTime() + DEDUPLICATION_WINDOW_MS });
    },
  };
}

export type Deduplication = ReturnType<typeof createDeduplication>;

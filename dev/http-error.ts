import type http from "node:http";

/** A failure that already knows the HTTP status the stand-ins answer it with. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Reads a request body, refusing it with 413 as soon as it grows past `maxBytes`, so a runaway client cannot make a
 * stand-in buffer without limit.
 */
export async function readBoundedBody(req: http.IncomingMessage, maxBytes: number, tooLarge: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new HttpError(413, tooLarge);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

import {
  MaxPartSizeExceededError,
  unstable_createMemoryUploadHandler,
  unstable_parseMultipartFormData,
} from "@remix-run/node";
import { problem } from "~/api/problem.server";
import { getEnv } from "~/utils/env.server";

/**
 * The checks every action makes before it reads a byte of the body: the request comes from our own pages (CSRF),
 * and the body is no larger than the action can need. Bodies are read through a counter, so a client that sends
 * no Content-Length (chunked) is cut off at the limit too, and nothing past the limit is ever held in memory.
 */

/** A log-in, sign-up or key form is a few hundred bytes; 16 KB leaves room without letting a form carry a file. */
export const FORM_BODY_LIMIT_BYTES = 16 * 1024;
/** QStash sends `{}` or `{ runId, step }`; anything near 64 KB is not a delivery of ours. */
export const CRON_BODY_LIMIT_BYTES = 64 * 1024;
/**
 * A QStash callback carries the customer's receiver's answer, base64 (4/3 larger), which the customer controls; a
 * callback refused as too large would be retried and refused until the delivery stayed "queued" for good.
 */
export const QSTASH_CALLBACK_BODY_LIMIT_BYTES = 1024 * 1024;

class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`The request body is larger than ${limit} bytes.`);
  }
}

/**
 * Refuses a state-changing request that a browser says comes from another site. SameSite=Lax alone lets a
 * cross-site fetch with the cookie through in older browsers and on top-level POSTs within two minutes of log-in,
 * so the origin is checked as well. Browsers send `Origin` on every POST; `Sec-Fetch-Site` is the fallback. A
 * request with neither comes from no browser, so it carries no ambient cookie an attacker could borrow.
 */
export function assertSameOrigin(request: Request): void {
  if (isSameOrigin(request)) return;
  logCrossSiteRefusal(request);
  throw crossSiteRefusal();
}

export function logCrossSiteRefusal(request: Request): void {
  const origin = request.headers.get("Origin");
  const site = request.headers.get("Sec-Fetch-Site");
  console.warn(JSON.stringify({ event: "csrf.refused", path: new URL(request.url).pathname, origin, site }));
}

export function isSameOrigin(request: Request): boolean {
  const origin = request.headers.get("Origin");
  const site = request.headers.get("Sec-Fetch-Site");
  return origin !== null ? origin === new URL(getEnv().APP_URL).origin : site === null || site === "same-origin";
}

export const CROSS_SITE_REFUSAL_MESSAGE =
  "This form was sent from another site, so we did not act on it. If you sent it yourself, reload this page and " +
  "try again from here.";

/** The designed 403, as a page's error boundary shows it. */
export function crossSiteRefusal(): Response {
  return new Response(CROSS_SITE_REFUSAL_MESSAGE, {
    status: 403,
    headers: { "Content-Type": "text/plain; charset=utf-8" },
  });
}

/** The body of a page's form: same origin, at most 16 KB, or a 403/413 page. */
export async function readPageForm(request: Request): Promise<FormData> {
  assertSameOrigin(request);
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await readBoundedBytes(request, FORM_BODY_LIMIT_BYTES);
  } catch (error) {
    if (!(error instanceof BodyTooLargeError)) throw error;
    throw new Response(
      `This form sent more than ${FORM_BODY_LIMIT_BYTES / 1024} KB, far more than any of our forms needs, so we ` +
        "did not read it. Reload the page and fill it in again.",
      { status: 413, headers: { "Content-Type": "text/plain; charset=utf-8" } },
    );
  }
  const contentType = request.headers.get("Content-Type") ?? "application/x-www-form-urlencoded";
  return new Request(request.url, { method: "POST", headers: { "Content-Type": contentType }, body: bytes }).formData();
}

/**
 * A multipart upload, same origin, parsed while its bytes are counted across all parts together; `null` when the
 * body passed `maxBodyBytes` or its file passed `maxFileBytes`, for the page to answer with its own form error.
 */
export async function readUploadForm(
  request: Request,
  { maxBodyBytes, maxFileBytes }: { maxBodyBytes: number; maxFileBytes: number },
): Promise<FormData | null> {
  assertSameOrigin(request);
  let counted: CountedBody | null;
  try {
    counted = countedBody(request, maxBodyBytes);
  } catch (error) {
    if (error instanceof BodyTooLargeError) return null;
    throw error;
  }
  const bounded = new Request(request.url, {
    method: request.method,
    headers: { "Content-Type": request.headers.get("Content-Type") ?? "" },
    body: counted?.stream,
    // Node's fetch requires this for a streamed body; the upload is read once, forwards only.
    duplex: "half",
  } as RequestInit);
  try {
    return await unstable_parseMultipartFormData(
      bounded,
      unstable_createMemoryUploadHandler({ maxPartSize: maxFileBytes }),
    );
  } catch (error) {
    // The parser may wrap the stream's error in its own; the counter knows whether the limit was the cause.
    if (error instanceof MaxPartSizeExceededError || counted?.exceeded()) return null;
    throw error;
  }
}

/** The raw text of a signed delivery, at most `limit` bytes, or a 413 problem. */
export async function readBoundedText(request: Request, limit: number): Promise<string> {
  try {
    return new TextDecoder().decode(await readBoundedBytes(request, limit));
  } catch (error) {
    if (!(error instanceof BodyTooLargeError)) throw error;
    throw problem({
      status: 413,
      type: "body-too-large",
      title: "Body too large",
      detail: `This endpoint accepts at most ${limit} bytes; the body was not read.`,
    });
  }
}

async function readBoundedBytes(request: Request, limit: number): Promise<Uint8Array<ArrayBuffer>> {
  const counted = countedBody(request, limit);
  if (!counted) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let length = 0;
  const reader = counted.stream.getReader();
  for (let next = await reader.read(); !next.done; next = await reader.read()) {
    chunks.push(next.value);
    length += next.value.byteLength;
  }
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

interface CountedBody {
  stream: ReadableStream<Uint8Array>;
  exceeded(): boolean;
}

/**
 * The body as a stream that fails once more than `limit` bytes have passed. A declared Content-Length over the
 * limit is refused before the first byte is read; the count catches bodies that declare nothing or lie.
 */
function countedBody(request: Request, limit: number): CountedBody | null {
  const declared = Number(request.headers.get("Content-Length") ?? 0);
  if (declared > limit) throw new BodyTooLargeError(limit);
  if (!request.body) return null;
  const source = request.body.getReader();
  let seen = 0;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await source.read();
      if (next.done) return controller.close();
      seen += next.value.byteLength;
      if (seen > limit) {
        // Released, not cancelled: cancelling destroys the socket, and the client would read a connection reset
        // instead of our 413. The unread rest waits under TCP back-pressure; none of it is buffered here.
        source.releaseLock();
        controller.error(new BodyTooLargeError(limit));
        return;
      }
      controller.enqueue(next.value);
    },
    cancel(reason) {
      return source.cancel(reason);
    },
  });
  return { stream, exceeded: () => seen > limit };
}

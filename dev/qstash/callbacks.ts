import type { CallbackTarget } from "./publish-request";
import { toHeaderLists } from "./header-names";

/** What a delivery attempt got back, as far as a callback reports it. */
export interface AttemptResponse {
  status: number;
  headers: Headers;
  body: Buffer;
}

/** The facts about the source message that every callback body repeats. */
export interface CallbackSource {
  messageId: string;
  destination: string;
  method: string;
  headers: Record<string, string>;
  body: Buffer;
  maxRetries: number;
  notBefore: number;
  createdAt: number;
  scheduleId?: string;
  callerIp: string;
}

/**
 * The JSON body QStash POSTs to `Upstash-Callback` / `Upstash-Failure-Callback`
 * (https://upstash.com/docs/qstash/features/callbacks): the destination's answer (status, headers, body in base64) and
 * the source message. Shaped after the docs and a body captured from QStash itself: headers are canonical Go names
 * with value lists, timestamps are numbers in milliseconds, and `retried` is left out while it is 0 (Go's
 * `omitempty`), so a receiver that would break on its absence in production breaks here too.
 */
export function callbackBody(
  source: CallbackSource,
  retried: number,
  response: AttemptResponse | undefined,
  dlqId?: string,
): Buffer {
  const body = {
    // With no answer at all (refused connection, timeout) there is no status to report; 0 says so.
    status: response?.status ?? 0,
    header: response ? toHeaderLists(response.headers.entries()) : {},
    body: response ? response.body.toString("base64") : "",
    ...(retried > 0 && { retried }),
    maxRetries: source.maxRetries,
    ...(dlqId && { dlqId }),
    sourceMessageId: source.messageId,
    url: source.destination,
    method: source.method,
    sourceHeader: toHeaderLists(Object.entries(source.headers)),
    sourceBody: source.body.toString("base64"),
    notBefore: source.notBefore,
    createdAt: source.createdAt,
    ...(source.scheduleId && { scheduleId: source.scheduleId }),
    callerIP: source.callerIp,
  };
  return Buffer.from(JSON.stringify(body));
}

/** The headers a callback message is delivered with: its JSON body type plus what `…-Forward-*` asked for. */
export function callbackHeaders(target: CallbackTarget): Record<string, string> {
  return { "content-type": "application/json", ...target.forwarded };
}

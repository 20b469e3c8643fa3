import http from "node:http";
import https from "node:https";
import { errors, type Requester } from "@upstash/redis";

/**
 * The HTTP transport under our `@upstash/redis` client: Upstash's REST protocol over `node:http`/`node:https` with
 * one keep-alive agent.
 *
 * Why not the SDK's own transport: it calls the global `fetch`, and what that is depends on the host. Under a
 * Remix server without single fetch it is `@remix-run/web-fetch` (`installGlobals` installs it), which sends
 * `Connection: close` whenever no agent is given, so every quota check paid a TCP connect and teardown on both
 * ends; under Vitest it is Node's undici. Profiling the metered API route showed that transport as most of the
 * quota check's CPU. A plain keep-alive request is the same protocol, production-valid against Upstash, and
 * behaves the same in every host.
 *
 * What the SDK's transport does and this one keeps, so commands and their results are unchanged:
 * - `Upstash-Encoding: base64`: Upstash returns every string of a result base64-encoded (bare "OK" excepted) and
 *   the client decodes it as UTF-8 the way the SDK does, so values that are not valid JSON text survive the trip;
 * - read-your-writes: the `upstash-sync-token` of each answer is sent with the next request;
 * - Redis error replies (HTTP 400 with `{ error }`) become `UpstashError`s with the SDK's message, so
 *   `Script.exec` still recognises NOSCRIPT and reloads the script;
 * - the retry policy: a request that fails at the network level is sent again after `backoff(attempt)` ms, up to
 *   `retries` times. With keep-alive that also covers a request written to a pooled socket the server had just
 *   closed as idle, which never reached Redis.
 *
 * What it adds: a deadline. Every request (all its attempts together) must be answered within `timeoutMs` of
 * being sent, or its socket is destroyed and it fails with a RedisTimeoutError; a resend is made only while time
 * is left. Without it an unresponsive Redis holds every caller (and, through the quota batch, hundreds of them)
 * for as long as the TCP connection lives, and "fail closed" becomes "hang".
 * A network-level failure may come after Redis ran the command (a reply lost on the way back), so resending is
 * safe only for commands that are idempotent: reads, SETs, and the app's scripts, which carry an operation id and
 * a deadline (quota.server.ts, login-throttle.server.ts). Do not send a bare INCR/DECR through this client.
 * Streaming commands (SUBSCRIBE) are not supported; the app does not use them.
 */
export interface KeepAliveRequesterOptions {
  url: string;
  token: string;
  /** Time one request may take, resends included; no deadline when omitted. */
  timeoutMs?: number;
  retry?: { retries: number; backoff: (attempt: number) => number };
  readYourWrites?: boolean;
}

/** Redis did not answer before the request's deadline; its socket was destroyed. */
export class RedisTimeoutError extends errors.UpstashError {
  readonly code = "REDIS_TIMEOUT";
  constructor(timeoutMs: number) {
    super(`Redis did not answer within ${timeoutMs} ms; the request was abandoned.`);
    this.name = "RedisTimeoutError";
  }
}

type RestReply = { result?: unknown; error?: string };

// Undici-like defaults for a pooled client: sockets stay open while the server allows it (Node honours the
// server's `Keep-Alive: timeout` hint), and the most recently used socket is reused first, so a lightly loaded
// process keeps one warm connection instead of cycling through many.
function agentFor(protocol: string): http.Agent {
  const options: http.AgentOptions = { keepAlive: true, scheduling: "lifo" };
  return protocol === "https:" ? new https.Agent(options) : new http.Agent(options);
}

/** The SDK's base64 decoding: invalid base64 means the server sent the text as is (e.g. "OK"). */
function fromBase64(text: string): string {
  try {
    return Buffer.from(atob(text), "latin1").toString("utf8");
  } catch {
    return text;
  }
}

/** Decodes one result the way the SDK's HttpClient does, including its treatment of arrays and "OK". */
function decodeResult(raw: unknown): unknown {
  switch (typeof raw) {
    case "undefined":
    case "number":
      return raw;
    case "string":
      return raw === "OK" ? "OK" : fromBase64(raw);
    case "object":
      if (!Array.isArray(raw)) return null;
      return raw.map((item: unknown) =>
        typeof item === "string" ? fromBase64(item) : Array.isArray(item) ? item.map(decodeResult) : item,
      );
    default:
      return undefined;
  }
}

export function createKeepAliveRequester(options: KeepAliveRequesterOptions): Requester {
  const base = new URL(options.url);
  const transport = base.protocol === "https:" ? https : http;
  const agent = agentFor(base.protocol);
  const basePath = base.pathname.replace(/\/+$/, "");
  const authorization = `Bearer ${options.token}`;
  const retries = options.retry?.retries ?? 0;
  const backoff = options.retry?.backoff ?? (() => 0);
  const timeoutMs = options.timeoutMs;

  function send(path: string, body: string, extraHeaders: Record<string, string>, deadline: number) {
    return new Promise<{ status: number; text: string; syncToken: string | undefined }>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const settle = (outcome: () => void) => {
        clearTimeout(timer);
        outcome();
      };
      const request = transport.request(
        {
          protocol: base.protocol,
          hostname: base.hostname,
          port: base.port,
          path,
          method: "POST",
          agent,
          headers: {
            ...extraHeaders,
            Authorization: authorization,
            "Content-Type": "application/json",
            "Content-Length": Buffer.byteLength(body),
            "Upstash-Encoding": "base64",
          },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("error", (error) => settle(() => reject(error)));
          response.on("end", () => {
            const syncToken = response.headers["upstash-sync-token"];
            settle(() =>
              resolve({
                status: response.statusCode ?? 0,
                text: Buffer.concat(chunks).toString("utf8"),
                syncToken: typeof syncToken === "string" ? syncToken : undefined,
              }),
            );
          });
        },
      );
      request.on("error", (error) => settle(() => reject(error)));
      if (Number.isFinite(deadline)) {
        // Destroying the socket (not just giving up on the promise) frees it from the pool: a late reply must
        // never be read as the answer to the next request sent on that connection.
        timer = setTimeout(
          () => {
            const error = new RedisTimeoutError(timeoutMs ?? 0);
            reject(error);
            request.destroy(error);
          },
          Math.max(0, deadline - Date.now()),
        );
      }
      request.end(body);
    });
  }

  const requester: Requester = {
    readYourWrites: options.readYourWrites ?? true,
    upstashSyncToken: "",
    async request<TResult>(req: Parameters<Requester["request"]>[0]) {
      if (req.isStreaming || req.onMessage) {
        throw new errors.UpstashError("Streaming commands are not supported by this Redis transport.");
      }
      const path = [basePath, ...(req.path ?? [])].join("/") || "/";
      const body = JSON.stringify(req.body);
      const headers: Record<string, string> = { ...req.headers };
      if (requester.readYourWrites && requester.upstashSyncToken) {
        headers["upstash-sync-token"] = requester.upstashSyncToken;
      }

      const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
      let answer: Awaited<ReturnType<typeof send>> | undefined;
      for (let attempt = 0; ; attempt++) {
        try {
          answer = await send(path, body, headers, deadline);
          break;
        } catch (error) {
          // A deadline that passed is final; a resend that could not be answered in time is not worth sending.
          if (error instanceof RedisTimeoutError || attempt >= retries) throw error;
          const pause = backoff(attempt);
          if (Date.now() + pause >= deadline) throw error;
          await new Promise((resolve) => setTimeout(resolve, pause));
        }
      }

      let parsed: RestReply | RestReply[];
      try {
        parsed = JSON.parse(answer.text) as RestReply | RestReply[];
      } catch (error) {
        throw new errors.UpstashJSONParseError(answer.text, { cause: error });
      }
      if (answer.status < 200 || answer.status >= 300) {
        throw new errors.UpstashError(`${(parsed as RestReply).error}, command was: ${body}`);
      }
      if (requester.readYourWrites) requester.upstashSyncToken = answer.syncToken ?? "";
      if (Array.isArray(parsed)) {
        // A pipeline: one reply per command. The SDK's Pipeline reads this array form; the declared type is the
        // single-command one.
        return parsed.map(({ result, error }) => ({ result: decodeResult(result), error })) as never;
      }
      return { result: decodeResult(parsed.result) as TResult, error: parsed.error };
    },
  };
  return requester;
}

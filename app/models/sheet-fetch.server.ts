import { createHash } from "node:crypto";
import dns from "node:dns";
import type { LookupAddress, LookupOptions } from "node:dns";
import type { Socket } from "node:net";
import { Agent, buildConnector, type Dispatcher } from "undici";
import {
  checkSourceAddress,
  isIpLiteral,
  isLoopbackHostname,
  type SourceAddressPolicy,
} from "./sheet-source-address.server";

/**
 * Fetches a sheet's source URL for a customer without letting that URL reach anything but the public internet
 * (docs/security.md, "Sheet sources"). The address is checked after DNS resolution inside the connection's own
 * lookup, so the address judged is the address connected to (a name that resolves to a public address for the
 * check and to 10.0.0.1 for the connection cannot exist); the socket's peer is checked again once connected, which
 * also covers URLs that name an IP address (Node does not look those up). Redirects are followed by hand, each hop
 * checked the same way; the body is read under a byte limit, an idle deadline and a total deadline.
 */

export type SheetFetchErrorCode =
  "invalid-url" | "scheme" | "address" | "redirect" | "http-status" | "not-csv" | "too-large" | "timeout" | "network";

/** A fetch we refused or that failed, with a message a customer can act on (shown on /sheets). */
export class SheetFetchError extends Error {
  constructor(
    readonly code: SheetFetchErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "SheetFetchError";
  }
}

export type LookupFunction = (
  hostname: string,
  options: LookupOptions & { all: true },
  callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

export interface SheetFetchPolicy extends SourceAddressPolicy {
  /** The most bytes a body may have; past it the download stops. */
  maxBytes: number;
  /** From the first connection to the last byte, redirects included. */
  totalTimeoutMs: number;
  /** The longest wait for a connection, for the response headers, or between two pieces of the body. */
  idleTimeoutMs: number;
  maxRedirects?: number;
}

export interface SheetFetchOptions {
  /** Validators from the last successful fetch: an unchanged source answers 304 and sends nothing. */
  etag?: string | null;
  lastModified?: string | null;
  /** Tests only: resolves names (e.g. to private addresses) without real DNS. */
  lookup?: LookupFunction;
  /** Tests only: trusts this certificate authority for https (a self-signed test server). */
  ca?: string;
}

export type SheetFetchResult =
  | { notModified: true; url: string }
  | {
      notModified: false;
      /** The URL the body came from, after redirects. */
      url: string;
      bytes: Uint8Array;
      /** SHA-256 of the body, hex: an unchanged body is recognised even from a server that sends no validators. */
      contentHash: string;
      etag: string | null;
      lastModified: string | null;
    };

export const DEFAULT_MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
// Any maximum on URLs we store and show; published Google Sheets links are about 120 characters.
export const MAX_SOURCE_URL_LENGTH = 2048;

/**
 * Checks a URL as typed by a customer before anything is fetched: https (plain http only to this machine, and
 * only where loopback is allowed), no credentials (they would be stored and shown), bounded length.
 */
export function parseSourceUrl(input: string, policy: Pick<SourceAddressPolicy, "allowLoopback">): URL {
  const value = input.trim();
  if (value === "") throw new SheetFetchError("invalid-url", "Enter the https:// URL of a CSV file.");
  if (value.length > MAX_SOURCE_URL_LENGTH) {
    throw new SheetFetchError("invalid-url", `Use a URL of at most ${MAX_SOURCE_URL_LENGTH} characters.`);
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new SheetFetchError("invalid-url", "Enter a full URL, like https://example.com/data.csv.");
  }
  checkScheme(url, policy);
  if (url.username || url.password) {
    throw new SheetFetchError("invalid-url", "Leave the user name and password out of the URL.");
  }
  return url;
}

function checkScheme(url: URL, policy: Pick<SourceAddressPolicy, "allowLoopback">): void {
  if (url.protocol === "https:") return;
  if (url.protocol === "http:" && policy.allowLoopback && isLoopbackHostname(url.hostname)) return;
  throw new SheetFetchError(
    "scheme",
    url.protocol === "http:"
      ? "Only https:// URLs are fetched, so the data cannot be read or changed on the way."
      : `Only https:// URLs are fetched, not ${url.protocol.replace(/:$/, "")}:.`,
  );
}

function refusedAddress(hostname: string, address: string, reason: string): SheetFetchError {
  // The name, not the address it resolved to: a customer must not learn what names mean inside our network.
  const via = hostname === address ? "" : ` (${hostname} resolves to one)`;
  return new SheetFetchError("address", `Refused to connect to ${reason}${via}; only public addresses are fetched.`);
}

/**
 * The lookup the connection itself uses: resolves, refuses the whole name if any of its addresses is not allowed
 * (a name with one public and one private address is an attack, not a mistake), and hands the checked addresses to
 * the socket, which connects to exactly those.
 */
function pinnedLookup(policy: SourceAddressPolicy, resolve: LookupFunction) {
  return (
    hostname: string,
    options: LookupOptions,
    callback: (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ) => {
    resolve(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      if (addresses.length === 0) return callback(new SheetFetchError("network", `${hostname} has no address.`), []);
      for (const { address } of addresses) {
        const verdict = checkSourceAddress(address, policy);
        if (!verdict.allowed) return callback(refusedAddress(hostname, verdict.address, verdict.reason), []);
      }
      if (options.all) return callback(null, addresses);
      callback(null, addresses[0].address, addresses[0].family);
    });
  };
}

const systemLookup: LookupFunction = (hostname, options, callback) => dns.lookup(hostname, options, callback);

function createAgent(policy: SheetFetchPolicy, options: SheetFetchOptions): Agent {
  const connect = buildConnector({
    timeout: policy.idleTimeoutMs,
    lookup: pinnedLookup(policy, options.lookup ?? systemLookup),
    ...(options.ca && { ca: options.ca }),
  } as buildConnector.BuildOptions);
  return new Agent({
    // The peer is checked once more on the connected socket: Node skips the lookup for an IP literal, and a check
    // on the socket cannot be raced by anything that resolves names.
    connect(connectOptions, callback) {
      connect(connectOptions, (error, socket) => {
        if (error || !socket) return callback(error ?? new Error("no socket"), null);
        const peer = (socket as Socket).remoteAddress ?? "";
        const verdict = checkSourceAddress(peer, policy);
        if (verdict.allowed) return callback(null, socket);
        socket.destroy();
        callback(refusedAddress(connectOptions.hostname, verdict.address, verdict.reason), null);
      });
    },
    headersTimeout: policy.idleTimeoutMs,
    bodyTimeout: policy.idleTimeoutMs,
    connections: 1,
    pipelining: 0,
  });
}

/**
 * Fetches `input` under `policy`. Resolves with the body (and its validators), or with `notModified` when the
 * validators in `options` still match; rejects with a SheetFetchError saying what was refused or what failed.
 */
export async function fetchSheetSource(
  input: string,
  policy: SheetFetchPolicy,
  options: SheetFetchOptions = {},
): Promise<SheetFetchResult> {
  let url = parseSourceUrl(input, policy);
  const agent = createAgent(policy, options);
  const controller = new AbortController();
  const deadline = setTimeout(
    () =>
      controller.abort(
        new SheetFetchError(
          "timeout",
          `The source took longer than ${seconds(policy.totalTimeoutMs)} to send the file.`,
        ),
      ),
    policy.totalTimeoutMs,
  );
  const maxRedirects = policy.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  try {
    for (let redirects = 0; ; redirects++) {
      checkHost(url, policy);
      const response = await requestOnce(agent, url, options, controller.signal);
      if (REDIRECT_STATUSES.has(response.statusCode)) {
        await response.body.dump().catch(() => {});
        const location = response.headers.location;
        if (typeof location !== "string" || location === "") {
          throw new SheetFetchError("redirect", `The source answered ${response.statusCode} without a Location.`);
        }
        if (redirects >= maxRedirects) {
          throw new SheetFetchError("redirect", `The source redirected more than ${maxRedirects} times.`);
        }
        url = redirectTarget(url, location, policy);
        continue;
      }
      if (response.statusCode === 304) {
        await response.body.dump().catch(() => {});
        if (!options.etag && !options.lastModified) {
          throw new SheetFetchError("http-status", "The source answered 304 Not Modified to an unconditional request.");
        }
        return { notModified: true, url: url.href };
      }
      if (response.statusCode < 200 || response.statusCode > 299) {
        await response.body.dump().catch(() => {});
        throw new SheetFetchError("http-status", `The source answered HTTP ${response.statusCode}.`);
      }
      return await readBody(url, response, policy, controller);
    }
  } catch (error) {
    throw describeFailure(controller.signal.aborted ? controller.signal.reason : error, policy);
  } finally {
    clearTimeout(deadline);
    // destroy, not close: a body we stopped reading must not keep a socket (and its deadline timers) alive.
    await agent.destroy().catch(() => {});
  }
}

function checkHost(url: URL, policy: SourceAddressPolicy): void {
  checkScheme(url, policy);
  // Names are checked inside the connection's lookup; an address in the URL itself can be refused at once, with a
  // clearer message than a socket error.
  if (isIpLiteral(url.hostname)) {
    const verdict = checkSourceAddress(url.hostname, policy);
    if (!verdict.allowed) throw refusedAddress(url.hostname, verdict.address, verdict.reason);
  }
}

function redirectTarget(from: URL, location: string, policy: SourceAddressPolicy): URL {
  let next: URL;
  try {
    next = new URL(location, from);
  } catch {
    throw new SheetFetchError("redirect", "The source redirected to an address that is not a URL.");
  }
  try {
    checkScheme(next, policy);
  } catch (error) {
    throw new SheetFetchError("redirect", `The source redirected to ${next.protocol}// (${(error as Error).message})`);
  }
  if (next.username || next.password) {
    throw new SheetFetchError("redirect", "The source redirected to a URL with a user name or password.");
  }
  return next;
}

function requestOnce(
  agent: Agent,
  url: URL,
  options: SheetFetchOptions,
  signal: AbortSignal,
): Promise<Dispatcher.ResponseData> {
  const headers: Record<string, string> = {
    "user-agent": "Sheetmeter (sheet source refresh)",
    accept: "text/csv, text/plain;q=0.9, */*;q=0.1",
    // No compression: the byte limit then bounds what we hold, with no decompression bomb to defuse.
    "accept-encoding": "identity",
  };
  if (options.etag) headers["if-none-match"] = options.etag;
  if (options.lastModified) headers["if-modified-since"] = options.lastModified;
  return agent.request({ origin: url.origin, path: `${url.pathname}${url.search}`, method: "GET", headers, signal });
}

async function readBody(
  url: URL,
  response: Dispatcher.ResponseData,
  policy: SheetFetchPolicy,
  controller: AbortController,
): Promise<SheetFetchResult & { notModified: false }> {
  const contentType = header(response.headers["content-type"])?.toLowerCase() ?? "";
  if (contentType.startsWith("text/html")) {
    discard(response.body);
    // What Google Sheets serves for a sheet that is shared but not published: a sign-in page.
    throw new SheetFetchError(
      "not-csv",
      "The URL returned a web page, not a CSV file. In Google Sheets use File → Share → Publish to web → CSV.",
    );
  }
  const declared = Number(header(response.headers["content-length"]));
  if (Number.isFinite(declared) && declared > policy.maxBytes) {
    discard(response.body);
    throw tooLarge(policy.maxBytes);
  }
  const hash = createHash("sha256");
  const chunks: Buffer[] = [];
  let total = 0;
  // undici's own body timeout ticks coarsely (about half a second); the idle deadline is kept here to the
  // millisecond, restarted by every piece of the body.
  let idle: NodeJS.Timeout | undefined;
  const restartIdle = () => {
    clearTimeout(idle);
    idle = setTimeout(
      () =>
        controller.abort(
          new SheetFetchError(
            "timeout",
            `The source stopped sending the file for more than ${seconds(policy.idleTimeoutMs)}.`,
          ),
        ),
      policy.idleTimeoutMs,
    );
  };
  restartIdle();
  try {
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      restartIdle();
      total += chunk.length;
      // Stops at the first byte past the limit, whatever Content-Length claimed (or if it was absent).
      if (total > policy.maxBytes) {
        discard(response.body);
        throw tooLarge(policy.maxBytes);
      }
      hash.update(chunk);
      chunks.push(chunk);
    }
  } finally {
    clearTimeout(idle);
  }
  return {
    notModified: false,
    url: url.href,
    bytes: new Uint8Array(Buffer.concat(chunks, total)),
    contentHash: hash.digest("hex"),
    etag: header(response.headers.etag) ?? null,
    lastModified: header(response.headers["last-modified"]) ?? null,
  };
}

/** Stops reading a body we refuse; the stream's resulting abort error has nobody to tell, so it is swallowed. */
function discard(body: Dispatcher.ResponseData["body"]): void {
  body.on("error", () => {});
  body.destroy();
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function tooLarge(maxBytes: number): SheetFetchError {
  return new SheetFetchError(
    "too-large",
    `The file is larger than ${formatBytes(maxBytes)}; the limit is ${formatBytes(maxBytes)}.`,
  );
}

function formatBytes(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${Math.round(bytes / 1024 / 1024)} MB` : `${bytes} bytes`;
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/** The SheetFetchError inside whatever undici or Node threw, or one that says what went wrong in a person's words. */
function describeFailure(error: unknown, policy: SheetFetchPolicy): SheetFetchError {
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof SheetFetchError) return cause;
  }
  const code = (error as { code?: string } | undefined)?.code ?? "";
  const idle = seconds(policy.idleTimeoutMs);
  switch (code) {
    case "UND_ERR_CONNECT_TIMEOUT":
      return new SheetFetchError("timeout", `Could not connect to the source within ${idle}.`);
    case "UND_ERR_HEADERS_TIMEOUT":
      return new SheetFetchError("timeout", `The source did not answer within ${idle}.`);
    case "UND_ERR_BODY_TIMEOUT":
      return new SheetFetchError("timeout", `The source stopped sending the file for more than ${idle}.`);
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new SheetFetchError("network", "The source's host name could not be found.");
    case "ECONNREFUSED":
      return new SheetFetchError("network", "The source refused the connection.");
    case "ECONNRESET":
    case "UND_ERR_SOCKET":
      return new SheetFetchError("network", "The source closed the connection before the file was complete.");
  }
  if (/CERT|SSL|TLS/i.test(code)) {
    return new SheetFetchError("network", `The source's TLS certificate is not valid (${code}).`);
  }
  const message = error instanceof Error ? error.message.split("\n")[0].slice(0, 200) : String(error);
  return new SheetFetchError("network", `The source could not be fetched: ${message}`);
}

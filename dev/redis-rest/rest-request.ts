import type http from "node:http";
import { HttpError, readBoundedBody } from "../http-error";

export type CommandArgument = string | Buffer;
export type Command = [string, ...CommandArgument[]];

/** What a REST request asks of Redis, whichever of Upstash's request forms it came in. */
export type RestRequest =
  | { kind: "command"; command: Command }
  | { kind: "pipeline" | "multi-exec"; commands: Command[] }
  | { kind: "subscribe" | "psubscribe"; channels: string[] };

const MAX_BODY_BYTES = 10 * 1024 * 1024;

function toCommand(value: unknown): Command | undefined {
  if (!Array.isArray(value) || value.length === 0 || typeof value[0] !== "string") return undefined;
  if (!value.every((part) => ["string", "number", "boolean"].includes(typeof part))) return undefined;
  return value.map(String) as Command;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, `ERR malformed percent-encoding in path segment: ${segment}`);
  }
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    throw new HttpError(400, "ERR body is not valid JSON");
  }
}

/**
 * Reads a request in any of the forms Upstash's REST API documents: a JSON command array posted to `/`, arrays of
 * them posted to `/pipeline` or `/multi-exec`, a command spelled in the path (`/set/key/value`, the POST body
 * appended as the last argument, query parameters after it), or a `/subscribe` / `/psubscribe` stream. Upstash
 * does not insist on a Content-Type (its curl examples send none), so neither does this.
 */
export async function readRestRequest(req: http.IncomingMessage, url: URL): Promise<RestRequest> {
  const segments = url.pathname.split("/").filter(Boolean).map(decodeSegment);
  const [first, ...rest] = segments;
  const hasBody = req.method === "POST" || req.method === "PUT";
  const body = () => readBoundedBody(req, MAX_BODY_BYTES, "ERR request body too large");

  if (first === "subscribe" || first === "psubscribe") {
    if (rest.length === 0) throw new HttpError(400, `ERR ${first} needs at least one channel`);
    return { kind: first, channels: rest };
  }
  if ((first === "pipeline" || first === "multi-exec") && rest.length === 0) {
    if (!hasBody) throw new HttpError(405, `ERR /${first} takes POST`);
    const parsed = parseJson(await body());
    const commands = Array.isArray(parsed) ? parsed.map(toCommand) : [];
    if (commands.length === 0 || commands.some((command) => !command)) {
      throw new HttpError(400, "ERR body must be a JSON array of commands: [[command, ...args], ...]");
    }
    return { kind: first, commands: commands as Command[] };
  }
  if (segments.length === 0) {
    if (!hasBody) throw new HttpError(400, "ERR no command: POST a JSON array or name the command in the path");
    const command = toCommand(parseJson(await body()));
    if (!command) throw new HttpError(400, "ERR body must be a JSON array: [command, ...args]");
    return { kind: "command", command };
  }
  const command: Command = [first, ...rest];
  if (hasBody) {
    const value = await body();
    // The raw bytes, not a string: the body form exists so binary and JSON values need no escaping.
    if (value.length > 0) command.push(value);
  }
  for (const [name, value] of url.searchParams) {
    if (name === "_token") continue;
    command.push(name);
    if (value !== "") command.push(value);
  }
  return { kind: "command", command };
}

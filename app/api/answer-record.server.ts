import { type ApiAnswer, keyDisplayPrefix, loggablePath, recordApiAnswer } from "~/models/request-outcomes.server";
import { getDb } from "~/utils/db.server";
import { getRedis } from "~/utils/redis.server";
import { type ApiDeps, bearerToken } from "./api-key-auth.server";
import { type AnswerNote, handleSheetRequest, type SheetRequest } from "./sheet-request.server";

/**
 * The consumer API's answers, recorded by outcome (docs/outcomes.md): each handler answers as before, and the answer
 * is handed to the request-outcomes writer, which the answer never waits for.
 */

function presentedKeyPrefix(request: SheetRequest): string | null {
  return keyDisplayPrefix(bearerToken(request.headers));
}

// A sheet id as the log keeps it: what the caller sent, bounded (a 404's id is the caller's text, not ours).
const MAX_SHEET_ID_CHARS = 64;

function record(
  deps: ApiDeps,
  request: SheetRequest,
  note: AnswerNote,
  answer: Pick<ApiAnswer, "status" | "sheetId">,
  at: Date,
  started: number,
): void {
  recordApiAnswer(deps, {
    ...answer,
    userId: note.userId,
    tallied: note.tallied,
    at,
    ms: performance.now() - started,
    keyPrefix: presentedKeyPrefix(request),
    path: loggablePath(request.url),
  });
}

/** `handleSheetRequest`, recorded. The route and server.js's direct path both answer through this. */
export async function recordedSheetRequest(deps: ApiDeps, request: SheetRequest, sheetId: string): Promise<Response> {
  const at = new Date();
  const started = performance.now();
  const note: AnswerNote = {};
  const response = await handleSheetRequest(deps, request, sheetId, note);
  record(deps, request, note, { status: response.status, sheetId: sheetId.slice(0, MAX_SHEET_ID_CHARS) }, at, started);
  return response;
}

/**
 * Any other consumer API handler that fills an AnswerNote (`/api/v1/usage`, `/api/v1/usage/history`), recorded,
 * with the app's clients.
 */
export async function withRecordedAnswer(
  request: Request,
  handle: (deps: ApiDeps, note: AnswerNote) => Promise<Response>,
): Promise<Response> {
  const deps = { redis: getRedis(), db: getDb() };
  const at = new Date();
  const started = performance.now();
  const note: AnswerNote = {};
  const response = await handle(deps, note);
  record(deps, request, note, { status: response.status, sheetId: null }, at, started);
  return response;
}

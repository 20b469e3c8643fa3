import { getDb } from "~/utils/db.server";
import { getEnv } from "~/utils/env.server";
import { getRedis } from "~/utils/redis.server";
import { applySecurityHeaders } from "~/utils/security-headers.server";
import { recordedSheetRequest } from "./answer-record.server";
import type { SheetRequest } from "./sheet-request.server";

/**
 * `GET /api/v1/sheets/:sheetId` for server.js, which calls this before Express and Remix see the request: the
 * sheet API is the one route called at machine rates, and the framework around it cost several times what the
 * call itself costs (docs/caching.md, "The direct path"). The route module `api.v1.sheets.$sheetId.ts` stays the
 * answer for every other method and for anything this does not take (a trailing slash, an encoded slash).
 *
 * Returns null when the path is not a sheet call, so the server hands the request on.
 */
const SHEET_PATH = /^\/api\/v1\/sheets\/([^/?#]+)(?:[?#]|$)/;

export function sheetIdOfDirectCall(path: string): string | null {
  const match = SHEET_PATH.exec(path);
  if (!match) return null;
  try {
    const sheetId = decodeURIComponent(match[1]);
    // Remix would not route an encoded slash to this route either; leave such paths to it.
    return sheetId.includes("/") ? null : sheetId;
  } catch {
    return null; // malformed percent-encoding: Remix answers it as it would any other
  }
}

export async function answerDirectSheetCall(path: string, request: SheetRequest): Promise<Response | null> {
  const sheetId = sheetIdOfDirectCall(path);
  if (sheetId === null) return null;
  const response = await recordedSheetRequest({ redis: getRedis(), db: getDb() }, request, sheetId);
  // The same headers the route's withSecurityHeaders gives it: this path bypasses that wrapper.
  applySecurityHeaders(response.headers, { production: getEnv().NODE_ENV === "production" });
  return response;
}

import type { Redis } from "@upstash/redis";
import { type ApiKeyOwner, resolveApiKey } from "~/models/api-keys.server";
import { viaQuotaStore } from "~/models/quota-store.server";
import type { Db } from "~/utils/db.server";
import { problem } from "./problem.server";

/** The stores every consumer API request needs; tests hand in their own (a dead Redis, a failing Postgres). */
export interface ApiDeps {
  redis: Redis;
  db: Db;
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** The key of an `Authorization: Bearer …` header, or null when there is none or it is malformed. */
export function bearerToken(headers: { get(name: string): string | null }): string | null {
  return BEARER.exec(headers.get("Authorization") ?? "")?.[1] ?? null;
}

/** The 401 for a request without a well-formed bearer header. */
export function missingKey(): Response {
  return unauthorized("Send your API key as “Authorization: Bearer sm_live_…”.");
}

export function unauthorized(detail: string): Response {
  return problem(
    { status: 401, type: "invalid-api-key", title: "Missing or invalid API key", detail },
    { "WWW-Authenticate": 'Bearer realm="sheetmeter"' },
  );
}

/** The owner of the request's bearer key, or the 401 to answer; a bad key is refused before the quota is touched. */
export async function authenticate({ redis, db }: ApiDeps, request: Request): Promise<ApiKeyOwner | Response> {
  const token = bearerToken(request.headers);
  if (!token) return missingKey();
  // The key cache lives in Redis: if it cannot be read, the call fails closed like a quota check would.
  const owner = await viaQuotaStore(() => resolveApiKey(redis, db, token));
  if (!owner) return unauthorized("This API key is not valid or has been revoked. Create a key at /keys.");
  return owner;
}

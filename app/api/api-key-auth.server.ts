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

export function unauthorized(detail: string): Response {
  return problem(
    { status: 401, type: "invalid-api-key", title: "Missing or invalid API key", detail },
    { "WWW-Authenticate": 'Bearer realm="sheetmeter"' },
  );
}

/** The owner of the request's bearer key, or the 401 to answer; a bad key is refused before the quota is touched. */
export async function authenticate({ redis, db }: ApiDeps, request: Request): Promise<ApiKeyOwner | Response> {
  const header = request.headers.get("Authorization");
  const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (!match) return unauthorized("Send your API key as “Authorization: Bearer sm_live_…”.");
  // The key cache lives in Redis: if it cannot be read, the call fails closed like a quota check would.
  const owner = await viaQuotaStore(() => resolveApiKey(redis, db, match[1]));
  if (!owner) return unauthorized("This API key is not valid or has been revoked. Create a key at /keys.");
  return owner;
}

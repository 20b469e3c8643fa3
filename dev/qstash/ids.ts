import { randomBytes } from "node:crypto";

/** Ids shaped like QStash's (`msg_…`, `scd_…`), random enough that tests never see two alike. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(18).toString("base64url")}`;
}

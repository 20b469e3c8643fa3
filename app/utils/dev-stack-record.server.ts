import fs from "node:fs";
import path from "node:path";
import { z } from "zod";

/**
 * What a running `npm run dev` started, for the commands a developer runs beside it in another terminal
 * (`npm run admin`, `db:seed`, `db:migrate`): the embedded Postgres has no DATABASE_URL anywhere else, and its port
 * is chosen at start-up. The file exists only while that process lives; one left behind by a killed process is
 * ignored, so a stale address is never used.
 */
export const DEV_STACK_RECORD_FILE = ".data/dev-stack.json";

const recordSchema = z.object({
  pid: z.number().int().positive(),
  env: z.record(z.string(), z.string()),
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The variables the running dev stack recorded, or none when no live stack wrote the file. */
export function readDevStackRecord(file = DEV_STACK_RECORD_FILE): Record<string, string> {
  let text: string;
  try {
    text = fs.readFileSync(path.resolve(file), "utf8");
  } catch {
    return {};
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return {};
  }
  const record = recordSchema.safeParse(json);
  return record.success && isAlive(record.data.pid) ? record.data.env : {};
}

export function writeDevStackRecord(env: Record<string, string>, file = DEV_STACK_RECORD_FILE): void {
  const full = path.resolve(file);
  fs.mkdirSync(path.dirname(full), { recursive: true });
  // Renamed into place so a command starting at that moment reads the old file or the new one, never half of one;
  // owner-only because it may hold the stand-ins' tokens.
  const partial = `${full}.${process.pid}.tmp`;
  fs.writeFileSync(partial, JSON.stringify({ pid: process.pid, env }, null, 2), { mode: 0o600 });
  fs.renameSync(partial, full);
}

/** Removes the record if this process wrote it; a record of another live stack is left alone. */
export function removeDevStackRecord(file = DEV_STACK_RECORD_FILE): void {
  const full = path.resolve(file);
  try {
    const record = recordSchema.safeParse(JSON.parse(fs.readFileSync(full, "utf8")));
    if (record.success && record.data.pid !== process.pid) return;
  } catch {
    return;
  }
  fs.rmSync(full, { force: true });
}

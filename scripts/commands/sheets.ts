import fs from "node:fs/promises";
import path from "node:path";
import { createSheet, type ParsedSheet, SheetImportError, sheetNameFrom } from "~/models/csv-import.server";
import { MAX_SHEET_FILE_BYTES, parseSheetFile, replaceSheetData, worksheetOption } from "~/models/sheet-data.server";
import { SheetFetchError } from "~/models/sheet-fetch.server";
import { isRefreshSchedule, REFRESH_SCHEDULES } from "~/models/sheet-schedules.server";
import {
  appSheetSourceDeps,
  createSheetFromUrl,
  restoreSheetSchedules,
  ScheduleUnavailableError,
} from "~/models/sheet-sources.server";
import { getUserById } from "~/models/user.server";
import { getBulkDb } from "~/utils/db.server";
import { getRedis } from "~/utils/redis.server";
import { type AdminCommand, requireFlag, UsageError } from "./command";

/** Reads and parses `--file` (CSV or XLSX, by its extension or content), naming the file in any refusal. */
async function parseFileFlag(file: string, worksheet: string | undefined): Promise<ParsedSheet> {
  const stat = await fs.stat(file).catch(() => null);
  if (!stat?.isFile()) throw new UsageError(`--file: no file at ${file}.`);
  // Checked before reading, so a mistaken multi-gigabyte path is refused without loading it.
  if (stat.size > MAX_SHEET_FILE_BYTES) throw new Error(`${file} is larger than 10 MB; split it.`);
  try {
    return await parseSheetFile(
      { name: path.basename(file), bytes: await fs.readFile(file) },
      worksheetOption(worksheet),
    );
  } catch (error) {
    if (error instanceof SheetImportError) throw new Error(`${file}: ${error.message}`);
    throw error;
  }
}

export const sheetCommands: Record<string, AdminCommand> = {
  "sheet:import": {
    usage: `--user ID (--file PATH [--worksheet NAME] | --url URL [--schedule ${REFRESH_SCHEDULES.join("|")}]) [--name N]`,
    flags: {
      user: { type: "string" },
      file: { type: "string" },
      url: { type: "string" },
      schedule: { type: "string" },
      name: { type: "string" },
      worksheet: { type: "string" },
    },
    async run(flags) {
      const userId = requireFlag(flags, "user");
      if (flags.file && flags.url) throw new UsageError("Give --file or --url, not both.");
      if (flags.url) return importFromUrl(userId, flags.url, flags);
      if (flags.schedule) throw new UsageError("--schedule only applies to --url.");
      const file = requireFlag(flags, "file");
      const db = getBulkDb();
      const parsed = await parseFileFlag(file, flags.worksheet);
      if (!(await getUserById(db, userId))) throw new Error(`No user with id ${userId}.`);
      const result = await createSheet(db, { userId, name: sheetNameFrom(path.basename(file), flags.name), parsed });
      return { sheetId: result.sheetId, rows: result.rows };
    },
  },
  "sheet:replace": {
    usage: "--sheet ID --file PATH [--worksheet NAME]",
    flags: { sheet: { type: "string" }, file: { type: "string" }, worksheet: { type: "string" } },
    async run(flags) {
      const sheetId = requireFlag(flags, "sheet");
      const file = requireFlag(flags, "file");
      const db = getBulkDb();
      const parsed = await parseFileFlag(file, flags.worksheet);
      // An operator names the sheet alone; its owner is whoever owns it now.
      const sheet = await db.sheet.findUnique({ where: { id: sheetId }, select: { userId: true } });
      if (!sheet) throw new Error(`No sheet with id ${sheetId}.`);
      const replaced = await replaceSheetData({ redis: getRedis(), db }, { sheetId, userId: sheet.userId, parsed });
      if (!replaced) throw new Error(`No sheet with id ${sheetId}.`);
      return {
        sheetId,
        rows: replaced.rows,
        columns: replaced.columns,
        version: replaced.version,
        dataUpdatedAt: replaced.dataUpdatedAt.toISOString(),
      };
    },
  },
  "sheet:reschedule": {
    usage: "",
    flags: {},
    async run() {
      const result = await restoreSheetSchedules(appSheetSourceDeps());
      if (result.failed.length > 0) {
        throw new Error(`${result.failed.length} schedule(s) could not be restored: ${JSON.stringify(result.failed)}`);
      }
      return result;
    },
  },
};

/**
 * The same path as "Create from URL" on /sheets: the same SSRF rules (SHEET_FETCH_ALLOW_LOOPBACK as configured),
 * limits and QStash schedule (APP_URL + /api/cron/refresh-sheet). Daily unless --schedule says otherwise, as on
 * the page.
 */
async function importFromUrl(userId: string, url: string, flags: Record<string, string | undefined>) {
  const schedule = flags.schedule ?? "daily";
  if (!isRefreshSchedule(schedule)) throw new UsageError(`--schedule must be one of ${REFRESH_SCHEDULES.join(", ")}.`);
  const deps = appSheetSourceDeps();
  if (!(await getUserById(deps.db, userId))) throw new Error(`No user with id ${userId}.`);
  try {
    const created = await createSheetFromUrl(deps, { userId, url, name: flags.name, schedule });
    return {
      sheetId: created.sheetId,
      rows: created.rows,
      url: created.url,
      schedule: created.schedule,
      scheduleId: created.scheduleId,
    };
  } catch (error) {
    if (error instanceof SheetFetchError || error instanceof SheetImportError)
      throw new Error(`${url}: ${error.message}`);
    if (error instanceof ScheduleUnavailableError) {
      throw new Error(`${error.message} (${(error.cause as Error | undefined)?.message ?? "QStash failed"})`);
    }
    throw error;
  }
}

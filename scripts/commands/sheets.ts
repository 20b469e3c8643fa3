import fs from "node:fs/promises";
import path from "node:path";
import { CsvImportError, importSheet, MAX_CSV_BYTES, sheetNameFrom } from "~/models/csv-import.server";
import { getUserById } from "~/models/user.server";
import { getBulkDb } from "~/utils/db.server";
import { type AdminCommand, requireFlag, UsageError } from "./command";

export const sheetCommands: Record<string, AdminCommand> = {
  "sheet:import": {
    usage: "--user ID --file PATH [--name N]",
    flags: { user: { type: "string" }, file: { type: "string" }, name: { type: "string" } },
    async run(flags) {
      const userId = requireFlag(flags, "user");
      const file = requireFlag(flags, "file");
      const stat = await fs.stat(file).catch(() => null);
      if (!stat?.isFile()) throw new UsageError(`--file: no file at ${file}.`);
      // Checked before reading, so a mistaken multi-gigabyte path is refused without loading it.
      if (stat.size > MAX_CSV_BYTES) throw new Error(`${file} is larger than 10 MB; split it.`);
      const db = getBulkDb();
      if (!(await getUserById(db, userId))) throw new Error(`No user with id ${userId}.`);
      try {
        const result = await importSheet(db, {
          userId,
          name: sheetNameFrom(path.basename(file), flags.name),
          bytes: await fs.readFile(file),
        });
        return { sheetId: result.sheetId, rows: result.rows };
      } catch (error) {
        if (error instanceof CsvImportError) throw new Error(`${file}: ${error.message}`);
        throw error;
      }
    },
  },
};

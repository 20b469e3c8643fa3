-- A sheet's rows are immutable until the sheet is replaced; the API caches pages by (sheet, version, query), so a
-- replacement in place bumps this and every cached page of the old rows stops matching.

-- AlterTable
ALTER TABLE "Sheet" ADD COLUMN "version" INTEGER NOT NULL DEFAULT 1;

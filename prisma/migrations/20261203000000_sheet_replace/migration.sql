-- Replace in place (docs/sheets.md). A sheet's rows are kept per version: a replacement inserts the new rows under
-- the next version and moves "Sheet"."version" to it in one transaction, so a reader that already holds the old
-- version (an API process's cached sheet) keeps reading whole old rows, never a mix, and a page read under a
-- version is exactly that version's page. The previous version's rows stay until the next replacement removes them.

-- AlterTable
ALTER TABLE "Sheet" ADD COLUMN "dataUpdatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP;
UPDATE "Sheet" SET "dataUpdatedAt" = "createdAt";

-- AlterTable: every existing row belongs to version 1, the only version a sheet had before replacement.
ALTER TABLE "SheetRow" ADD COLUMN "version" INTEGER NOT NULL DEFAULT 1;
ALTER TABLE "SheetRow" ALTER COLUMN "version" DROP DEFAULT;
ALTER TABLE "SheetRow" DROP CONSTRAINT "SheetRow_pkey";
ALTER TABLE "SheetRow" ADD CONSTRAINT "SheetRow_pkey" PRIMARY KEY ("sheetId", "version", "index");

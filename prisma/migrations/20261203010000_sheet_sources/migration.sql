-- Sheets that come from an https:// URL (a published Google Sheet) and are fetched again on a QStash schedule.
-- One row per such sheet; an uploaded sheet has none. Deleting the sheet deletes its source (the QStash schedule is
-- removed by the app first: models/sheet-sources.server.ts).

-- CreateTable
CREATE TABLE "SheetSource" (
    "sheetId" TEXT NOT NULL,
    "url" TEXT NOT NULL,
    "schedule" TEXT NOT NULL DEFAULT 'manual',
    "scheduleId" TEXT,
    "etag" TEXT,
    "lastModified" TEXT,
    "contentHash" TEXT,
    "lastRefreshAt" TIMESTAMP(3),
    "lastRefreshStatus" TEXT,
    "lastRefreshError" TEXT,
    "lastChangedAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "SheetSource_pkey" PRIMARY KEY ("sheetId")
);

-- AddForeignKey
ALTER TABLE "SheetSource" ADD CONSTRAINT "SheetSource_sheetId_fkey" FOREIGN KEY ("sheetId") REFERENCES "Sheet"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- One worker per sync run: a lease (owner token + expiry) and the step a run is on.

-- AlterTable
ALTER TABLE "SyncRun" ADD COLUMN "step" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN "leaseOwner" TEXT,
ADD COLUMN "leaseExpiresAt" TIMESTAMP(3);

-- DropIndex
DROP INDEX "SyncRun_messageId_idx";

-- CreateIndex
CREATE UNIQUE INDEX "SyncRun_messageId_key" ON "SyncRun"("messageId");

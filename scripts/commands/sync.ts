import { syncUsageSnapshots } from "~/models/usage-sync.server";
import { getSyncRedis } from "~/utils/redis.server";
import { getBulkDb } from "~/utils/db.server";
import { type AdminCommand, optionalInt } from "./command";

export const syncCommands: Record<string, AdminCommand> = {
  "sync:run": {
    usage: "[--budget-ms N]  (copy every live counter into this hour's snapshots now, in this process)",
    flags: { "budget-ms": { type: "string" } },
    async run(flags) {
      const deps = { redis: getSyncRedis(), db: getBulkDb() };
      // No budget by default: an operator's run has no serverless time limit. With one, the chunks run back to
      // back here instead of through QStash, which is how to watch the continuation logic locally.
      const budgetMs = optionalInt(flags, "budget-ms");
      const started = performance.now();
      let result = await syncUsageSnapshots(deps, { budgetMs });
      while (result.status === "continued" && result.next) {
        result = await syncUsageSnapshots(deps, { budgetMs, continuation: result.next });
      }
      if (result.status === "failed") {
        throw new Error(`run ${result.runId} failed after ${result.users} users: ${result.error ?? "unknown error"}`);
      }
      const { duplicate: _duplicate, next: _next, ...summary } = result;
      return { ...summary, seconds: Number(((performance.now() - started) / 1000).toFixed(3)) };
    },
  },
};

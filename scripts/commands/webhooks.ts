import { setWebhookUrl, webhookUrlPolicy } from "~/models/webhook-endpoints.server";
import { getDb } from "~/utils/db.server";
import { getEnv } from "~/utils/env.server";
import { type AdminCommand, requireFlag, UsageError } from "./command";

export const webhookCommands: Record<string, AdminCommand> = {
  "user:webhook": {
    usage: "--user ID --url URL",
    flags: { user: { type: "string" }, url: { type: "string" } },
    async run(flags) {
      const userId = requireFlag(flags, "user");
      const db = getDb();
      if (!(await db.user.findUnique({ where: { id: userId }, select: { id: true } }))) {
        throw new Error(`No user with id ${userId}.`);
      }
      const result = await setWebhookUrl(db, userId, requireFlag(flags, "url"), webhookUrlPolicy(getEnv()));
      if (!result.ok) throw new UsageError(`--url: ${result.error}`);
      // The operator hands the secret to the customer, who cannot verify events without it.
      return { userId, url: result.endpoint.url, secret: result.endpoint.secret };
    },
  },
};

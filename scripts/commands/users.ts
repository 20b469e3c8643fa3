import { deleteAccount } from "~/models/account-deletion.server";
import { createUser, setMonthlyLimit } from "~/models/user.server";
import { getBulkDb, getDb } from "~/utils/db.server";
import { getQstash } from "~/utils/qstash.server";
import { getRedis } from "~/utils/redis.server";
import { emailSchema, newPasswordSchema } from "~/utils/validation";
import { type AdminCommand, optionalInt, requireFlag, UsageError } from "./command";

export const userCommands: Record<string, AdminCommand> = {
  "user:create": {
    usage: "--email E --password P [--limit N]",
    flags: { email: { type: "string" }, password: { type: "string" }, limit: { type: "string" } },
    async run(flags) {
      const email = emailSchema.safeParse(requireFlag(flags, "email"));
      if (!email.success) throw new UsageError(`--email: ${email.error.issues[0].message}`);
      const password = newPasswordSchema.safeParse(requireFlag(flags, "password"));
      if (!password.success) throw new UsageError(`--password: ${password.error.issues[0].message}`);
      const user = await createUser(getDb(), {
        email: email.data,
        password: password.data,
        monthlyLimit: optionalInt(flags, "limit"),
      });
      return { userId: user.id, email: user.email, monthlyLimit: user.monthlyLimit };
    },
  },
  "user:set-limit": {
    usage: "--user ID --limit N",
    flags: { user: { type: "string" }, limit: { type: "string" } },
    async run(flags) {
      const userId = requireFlag(flags, "user");
      const monthlyLimit = optionalInt(flags, "limit");
      if (monthlyLimit === undefined) throw new UsageError("Missing --limit.");
      // Through the model, so every API process counts against the new limit from its next call (docs/caching.md).
      if (!(await setMonthlyLimit(getRedis(), getDb(), userId, monthlyLimit))) {
        throw new UsageError(`No user ${userId}.`);
      }
      return { userId, monthlyLimit };
    },
  },
  "user:delete": {
    usage: "--user ID",
    flags: { user: { type: "string" } },
    async run(flags) {
      const userId = requireFlag(flags, "user");
      // The same deletion as "Delete my account" on /settings; on the bulk pool, since a large account's rows
      // can take longer to delete than a page request may wait. Run it again to finish a deletion that failed.
      const result = await deleteAccount({ db: getBulkDb(), redis: getRedis(), qstash: getQstash() }, userId);
      return { ...result };
    },
  },
};

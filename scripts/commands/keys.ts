import { createApiKey, MAX_KEY_NAME_LENGTH } from "~/models/api-keys.server";
import { getUserById } from "~/models/user.server";
import { getDb } from "~/utils/db.server";
import { type AdminCommand, requireFlag, UsageError } from "./command";

export const keyCommands: Record<string, AdminCommand> = {
  "key:create": {
    usage: "--user ID [--name N]",
    flags: { user: { type: "string" }, name: { type: "string" } },
    async run(flags) {
      const userId = requireFlag(flags, "user");
      const name = (flags.name ?? "CLI key").trim();
      if (name === "" || name.length > MAX_KEY_NAME_LENGTH) {
        throw new UsageError(`--name must be 1 to ${MAX_KEY_NAME_LENGTH} characters.`);
      }
      const db = getDb();
      if (!(await getUserById(db, userId))) throw new Error(`No user with id ${userId}.`);
      // The key is printed once, here; only its hash is stored.
      const { key, summary } = await createApiKey(db, userId, name);
      return { keyId: summary.id, name: summary.name, prefix: summary.prefix, key };
    },
  },
};

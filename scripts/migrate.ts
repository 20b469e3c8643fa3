import { getEnv } from "~/utils/env.server";
import { migrate, MigrationError } from "./lib/migrations";

try {
  const result = await migrate(getEnv().DATABASE_URL);
  if (result.applied.length === 0) console.log(`No pending migrations (${result.alreadyApplied} applied).`);
  for (const name of result.applied) console.log(`Applied ${name}`);
} catch (error) {
  console.error(error instanceof MigrationError ? error.message : error);
  process.exit(1);
}

import { DatabaseUnavailableError, requireReachableDatabase } from "./lib/database";
import { migrate, MigrationError } from "./lib/migrations";

try {
  // Only DATABASE_URL: a deploy step may migrate with nothing else of the app's configuration at hand.
  const result = await migrate(await requireReachableDatabase());
  if (result.applied.length === 0) console.log(`No pending migrations (${result.alreadyApplied} applied).`);
  for (const name of result.applied) console.log(`Applied ${name}`);
} catch (error) {
  const expected = error instanceof MigrationError || error instanceof DatabaseUnavailableError;
  console.error(expected ? (error as Error).message : error);
  process.exit(1);
}

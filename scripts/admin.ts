import { parseArgs } from "node:util";
import { closeDb } from "~/utils/db.server";
import { type AdminCommand, UsageError } from "./commands/command";
import { keyCommands } from "./commands/keys";
import { sheetCommands } from "./commands/sheets";
import { syncCommands } from "./commands/sync";
import { userCommands } from "./commands/users";
import { webhookCommands } from "./commands/webhooks";
import { requireReachableDatabase } from "./lib/database";

/**
 * `npm run admin -- <command> [--flags]`. Every command prints one JSON object as its last stdout line so scripts
 * and tests can read the result; mistakes print usage to stderr and exit 2, failures exit 1.
 */
const commands: Record<string, AdminCommand> = {
  ...userCommands,
  ...syncCommands,
  ...keyCommands,
  ...sheetCommands,
  ...webhookCommands,
};

function usage(): string {
  const lines = Object.entries(commands).map(([name, command]) => `  ${name.padEnd(14)} ${command.usage}`);
  return `Usage: npm run admin -- <command> [flags]\n\nCommands:\n${lines.join("\n")}`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const command = name ? commands[name] : undefined;
  if (!command) {
    console.error(name ? `Unknown command: ${name}\n\n${usage()}` : usage());
    return 2;
  }
  try {
    const { values } = parseArgs({ args: rest, options: command.flags, strict: true, allowPositionals: false });
    await requireReachableDatabase();
    const result = await command.run(values as Record<string, string | undefined>);
    console.log(JSON.stringify(result));
    return 0;
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      console.error(`${(error as Error).message}\n\nUsage: npm run admin -- ${name} ${command.usage}`);
      return 2;
    }
    console.error(`${name} failed: ${(error as Error).message}`);
    return 1;
  } finally {
    await closeDb();
  }
}

process.exitCode = await main(process.argv.slice(2));
// The Redis and QStash clients keep sockets alive; a CLI run is over once its answer is printed.
process.exit();

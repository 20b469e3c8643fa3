import type { ParseArgsConfig } from "node:util";

export interface AdminCommand {
  /** The flags, as shown in the usage text. */
  usage: string;
  flags: NonNullable<ParseArgsConfig["options"]>;
  run(flags: Record<string, string | undefined>): Promise<Record<string, unknown>>;
}

/** A mistake in how the command was called: the CLI prints usage and exits 2. */
export class UsageError extends Error {}

export function requireFlag(flags: Record<string, string | undefined>, name: string): string {
  const value = flags[name];
  if (!value) throw new UsageError(`Missing --${name}.`);
  return value;
}

export function optionalInt(flags: Record<string, string | undefined>, name: string): number | undefined {
  const value = flags[name];
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} must be a whole number, got "${value}".`);
  return Number(value);
}

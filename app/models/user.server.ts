import { hash, verify } from "@node-rs/argon2";
import type { Redis } from "@upstash/redis";
import { Prisma } from "~/generated/prisma/client";
import type { Db } from "~/utils/db.server";
import { refreshApiKeyCacheForUser } from "./api-keys.server";

export const DEFAULT_MONTHLY_LIMIT = 1000;

export interface PublicUser {
  id: string;
  email: string;
  plan: string;
  monthlyLimit: number;
  createdAt: Date;
}

const publicUserSelect = { id: true, email: true, plan: true, monthlyLimit: true, createdAt: true } as const;

export class EmailTakenError extends Error {
  constructor(email: string) {
    super(`An account with ${email} already exists.`);
  }
}

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

// argon2id with the library's defaults (19 MiB, 2 passes): OWASP's minimum recommendation, ~20 ms here.
export function hashPassword(password: string): Promise<string> {
  return hash(password);
}

export async function createUser(
  db: Db,
  input: { email: string; password: string; monthlyLimit?: number },
): Promise<PublicUser> {
  const email = normalizeEmail(input.email);
  try {
    return await db.user.create({
      data: {
        email,
        passwordHash: await hashPassword(input.password),
        monthlyLimit: input.monthlyLimit ?? DEFAULT_MONTHLY_LIMIT,
      },
      select: publicUserSelect,
    });
  } catch (error) {
    if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === "P2002") {
      throw new EmailTakenError(email);
    }
    throw error;
  }
}

/**
 * Sets the account's monthly limit (an operator's change of plan). The key cache in Redis is rewritten and the
 * account's cache version bumped, so every API process counts against the new limit from its next call on.
 * Returns false when there is no such user.
 */
export async function setMonthlyLimit(redis: Redis, db: Db, userId: string, monthlyLimit: number): Promise<boolean> {
  const { count } = await db.user.updateMany({ where: { id: userId }, data: { monthlyLimit } });
  if (count === 0) return false;
  await refreshApiKeyCacheForUser(redis, db, userId);
  return true;
}

export function getUserById(db: Db, id: string): Promise<PublicUser | null> {
  return db.user.findUnique({ where: { id }, select: publicUserSelect });
}

/** The user whose email and password match, or null; the same answer for an unknown email and a wrong password. */
export async function verifyLogin(db: Db, email: string, password: string): Promise<PublicUser | null> {
  const user = await db.user.findUnique({
    where: { email: normalizeEmail(email) },
    select: { ...publicUserSelect, passwordHash: true },
  });
  if (!user) {
    // Hash anyway so an unknown email takes as long as a wrong password and cannot be told apart by timing.
    await hashPassword(password);
    return null;
  }
  if (!(await verify(user.passwordHash, password))) return null;
  const { passwordHash: _omit, ...publicUser } = user;
  return publicUser;
}

/**
 * Replaces the password when `currentPassword` is right; false otherwise. Asking for the current one means a
 * borrowed, still-open browser is not enough to take the account over.
 */
export async function changePassword(
  db: Db,
  userId: string,
  input: { currentPassword: string; newPassword: string },
): Promise<boolean> {
  const user = await db.user.findUnique({ where: { id: userId }, select: { passwordHash: true } });
  if (!user || !(await verify(user.passwordHash, input.currentPassword))) return false;
  await db.user.update({ where: { id: userId }, data: { passwordHash: await hashPassword(input.newPassword) } });
  return true;
}

/** Whether `password` is the user's; false for a missing user too. */
export async function verifyUserPassword(db: Db, userId: string, password: string): Promise<boolean> {
  const user = await db.user.findUnique({ where: { id: userId }, select: { passwordHash: true } });
  if (!user) {
    await hashPassword(password);
    return false;
  }
  return verify(user.passwordHash, password);
}

export type ChangeEmailResult =
  { ok: true; email: string } | { ok: false; reason: "wrong_password" | "email_taken" | "unchanged" };

/**
 * Moves the account to `newEmail` when `password` is right. The password is checked before anything is said about
 * the new address, so whether an email is taken is told only to someone who proved they own this account (sign-up
 * tells anyone, but that is no reason to add a second oracle). The unique index decides "taken", so two accounts
 * racing for one address cannot both get it.
 */
export async function changeEmail(
  db: Db,
  userId: string,
  input: { password: string; newEmail: string },
): Promise<ChangeEmailResult> {
  if (!(await verifyUserPassword(db, userId, input.password))) return { ok: false, reason: "wrong_password" };
  const email = normalizeEmail(input.newEmail);
  try {
    const { count } = await db.user.updateMany({ where: { id: userId, NOT: { email } }, data: { email } });
    return count === 1 ? { ok: true, email } : { ok: false, reason: "unchanged" };
  } catch (error) {
    if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === "P2002") {
      return { ok: false, reason: "email_taken" };
    }
    throw error;
  }
}

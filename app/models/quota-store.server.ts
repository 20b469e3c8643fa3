/**
 * Failures of the quota store (Redis), told apart from any other failure. The consumer API fails closed on them —
 * without the counter nobody can tell whether the owner has quota left — while a Postgres failure is an ordinary
 * error.
 */
export class QuotaStoreUnavailableError extends Error {
  constructor(readonly cause: unknown) {
    super((cause as Error)?.message ?? String(cause));
  }
}

/** Runs a Redis operation, marking its failure as the quota store's. */
export async function viaQuotaStore<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw new QuotaStoreUnavailableError(error);
  }
}

/**
 * The one place clients are created and cached. The dev server re-evaluates server modules after every change; a
 * module-level variable would then open a new connection pool per rebuild while the old one lingers, so instances
 * live on globalThis and a rebuild finds the ones it made before.
 */
const host = globalThis as typeof globalThis & { __sheetmeterSingletons?: Map<string, unknown> };
const instances = (host.__sheetmeterSingletons ??= new Map<string, unknown>());

// Module-level on purpose: a replacement belongs to the test that made it and must not outlive a reload.
const replacements = new Map<string, unknown>();

export function singleton<T>(name: string, create: () => T): T {
  if (replacements.has(name)) return replacements.get(name) as T;
  if (!instances.has(name)) instances.set(name, create());
  return instances.get(name) as T;
}

/**
 * Forgets the cached instance and hands it back so its module can close it; the next `singleton(name, …)` creates a
 * fresh one, so a closed client is never served again.
 */
export function releaseSingleton<T>(name: string): T | undefined {
  const instance = instances.get(name) as T | undefined;
  instances.delete(name);
  return instance;
}

/**
 * Serves `replacement` instead of the cached instance until called with undefined. The cached instance is kept
 * (not closed), so a test can swap in a broken client and put the healthy one back.
 */
export function replaceSingleton<T>(name: string, replacement: T | undefined): void {
  if (replacement === undefined) replacements.delete(name);
  else replacements.set(name, replacement);
}

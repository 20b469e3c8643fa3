import { createContext, useContext } from "react";

/**
 * The document's CSP nonce, provided by entry.server around <RemixServer>. In the browser it is empty: scripts
 * added after hydration are modules loaded from our own origin, which the CSP admits without one.
 */
const NonceContext = createContext("");

export const NonceProvider = NonceContext.Provider;

export function useNonce(): string {
  return useContext(NonceContext);
}

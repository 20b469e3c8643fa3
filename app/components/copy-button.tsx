import { useEffect, useState } from "react";
import { useHydrated } from "./use-hydrated";

/**
 * Copies `text` and says so for a moment (announced through aria-live). Rendered only once hydrated, since without
 * JavaScript it could not do anything. `children` is the visible text, `label` an optional longer accessible name.
 */
export function CopyButton({ text, label, children = "Copy" }: { text: string; label?: string; children?: string }) {
  const hydrated = useHydrated();
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  useEffect(() => {
    if (state === "idle") return;
    const timer = setTimeout(() => setState("idle"), 2500);
    return () => clearTimeout(timer);
  }, [state]);
  if (!hydrated) return null;
  return (
    <button
      type="button"
      aria-label={label}
      onClick={() => {
        // The Clipboard API exists only on secure origins and can be refused; then say so rather than do nothing.
        if (!navigator.clipboard) return setState("failed");
        navigator.clipboard.writeText(text).then(
          () => setState("copied"),
          () => setState("failed"),
        );
      }}
      className="shrink-0 rounded border border-slate-300 bg-white px-2 py-1 text-xs font-medium text-slate-800 hover:bg-slate-100 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600"
    >
      <span aria-live="polite">
        {state === "copied" ? "Copied" : state === "failed" ? "Select and copy" : children}
      </span>
    </button>
  );
}

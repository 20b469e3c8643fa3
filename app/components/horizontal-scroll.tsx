import { type ReactNode, useEffect, useRef, useState } from "react";

/**
 * Content wider than a phone (a sheet's table, a long URL in a code block) scrolls sideways inside its box instead
 * of widening the page, and says so: "Scroll sideways →" appears only when the content really overflows (measured
 * in the browser, again on every resize). While it overflows the box is focusable, so the keyboard can scroll it too.
 */
export function HorizontalScroll({
  label,
  children,
  className = "",
}: {
  /** Names the scrollable region for screen readers, e.g. "First rows of cities". */
  label: string;
  children: ReactNode;
  className?: string;
}) {
  const ref = useRef<HTMLDivElement>(null);
  const [overflows, setOverflows] = useState(false);
  useEffect(() => {
    const box = ref.current;
    if (!box) return;
    const measure = () => setOverflows(box.scrollWidth > box.clientWidth + 1);
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(box);
    if (box.firstElementChild) observer.observe(box.firstElementChild);
    return () => observer.disconnect();
  }, []);
  return (
    <div>
      <div
        ref={ref}
        role="region"
        aria-label={label}
        // Only while there is something to scroll: a tab stop that does nothing would be noise. A scrolling region
        // must be reachable by keyboard (WCAG 2.1.1), which is what the rule does not know.
        // eslint-disable-next-line jsx-a11y/no-noninteractive-tabindex
        tabIndex={overflows ? 0 : undefined}
        data-overflows={overflows}
        className={`overflow-x-auto focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600 ${className}`}
      >
        {children}
      </div>
      {overflows ? (
        <p aria-hidden="true" data-testid="scroll-hint" className="mt-1 text-right text-xs font-medium text-slate-600">
          Scroll sideways →
        </p>
      ) : null}
    </div>
  );
}

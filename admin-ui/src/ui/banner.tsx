// Error banners and toasts: what went wrong, in the server's words.
import type { ComponentChildren } from "preact";
import { createContext } from "preact";
import { useCallback, useContext, useRef, useState } from "preact/hooks";
import { describe, isMissing } from "../api";

/** An error shown in place: "not available on this server" for a missing endpoint. */
export function ErrorBanner({ error }: { error: unknown }) {
  if (error === undefined || error === null) return null;
  if (isMissing(error)) return <p class="banner info">Not available on this server.</p>;
  return (
    <p class="banner error" role="alert">
      {describe(error)}
    </p>
  );
}

interface Toast {
  id: number;
  text: string;
  kind: "ok" | "error";
}

const ToastContext = createContext<(text: string, kind?: "ok" | "error") => void>(() => {});

/** Shows a short message at the bottom of the screen. */
export function useToast() {
  return useContext(ToastContext);
}

/** At most this many toasts show; a new one dismisses the oldest. */
export const MAX_TOASTS = 3;

/**
 * Holds the toasts of the app; each goes after a few seconds (an error
 * after longer) or on a click, and a new one pushes out the oldest past
 * MAX_TOASTS, so a burst of actions never covers the screen. The same text
 * twice in a row shows once, its time restarted.
 */
export function Toasts({ children }: { children: ComponentChildren }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const seq = useRef(0);
  const push = useCallback((text: string, kind: "ok" | "error" = "ok") => {
    const id = ++seq.current;
    setToasts((t) => [...t.filter((x) => x.text !== text), { id, text, kind }].slice(-MAX_TOASTS));
    setTimeout(() => setToasts((t) => t.filter((x) => x.id !== id)), kind === "error" ? 8000 : 4000);
  }, []);
  return (
    <ToastContext.Provider value={push}>
      {children}
      <div class="toasts" role="status" aria-live="polite">
        {toasts.map((t) => (
          <button key={t.id} type="button" class={`toast ${t.kind}`} title="Dismiss" onClick={() => setToasts((all) => all.filter((x) => x.id !== t.id))}>
            {t.text}
          </button>
        ))}
      </div>
    </ToastContext.Provider>
  );
}

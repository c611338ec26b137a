// Error banners and toasts: what went wrong, in the server's words.
import type { ComponentChildren } from "preact";
import { createContext } from "preact";
import { useCallback, useContext, useState } from "preact/hooks";
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

/** Holds the toasts of the app; each goes after a few seconds or on a click. */
export function Toasts({ children }: { children: ComponentChildren }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const push = useCallback((text: string, kind: "ok" | "error" = "ok") => {
    const id = Date.now() + Math.random();
    setToasts((t) => [...t, { id, text, kind }]);
    setTimeout(() => setToasts((t) => t.filter((x) => x.id !== id)), 5000);
  }, []);
  return (
    <ToastContext.Provider value={push}>
      {children}
      <div class="toasts" role="status" aria-live="polite">
        {toasts.map((t) => (
          <button key={t.id} type="button" class={`toast ${t.kind}`} onClick={() => setToasts((all) => all.filter((x) => x.id !== t.id))}>
            {t.text}
          </button>
        ))}
      </div>
    </ToastContext.Provider>
  );
}

// A labelled form field: the label, the control and its hint or error.
import { useEffect, useId, useRef } from "preact/hooks";

interface InputProps {
  label: string;
  type?: "text" | "email" | "password" | "search" | "datetime-local";
  required?: boolean;
  autoComplete?: string;
  autoFocus?: boolean;
  inputMode?: "text" | "numeric" | "email";
  placeholder?: string;
  value: string;
  onValue: (v: string) => void;
  hint?: string;
}

/** A text input with its label. */
export function Field({ label, value, onValue, hint, type = "text", autoFocus, ...rest }: InputProps) {
  const id = useId();
  const ref = useRef<HTMLInputElement>(null);
  // The autofocus attribute works only as the page loads: a field that
  // appears later (the next sign-in step, a dialog) takes the focus here,
  // so the keyboard carries on where the eye goes.
  useEffect(() => {
    if (autoFocus) ref.current?.focus();
  }, [autoFocus]);
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <input ref={ref} id={id} type={type as "text"} autoFocus={autoFocus} value={value} onInput={(e) => onValue(e.currentTarget.value)} aria-describedby={hint ? id + "-hint" : undefined} {...rest} />
      {hint && (
        <small id={id + "-hint"} class="hint">
          {hint}
        </small>
      )}
    </div>
  );
}

/** A select with its label. */
export function Select({ label, value, onValue, options }: { label: string; value: string; onValue: (v: string) => void; options: (string | [string, string])[] }) {
  const id = useId();
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <select id={id} value={value} onChange={(e) => onValue(e.currentTarget.value)}>
        {options.map((o) => {
          const [v, text] = typeof o === "string" ? [o, o] : o;
          return (
            <option key={v} value={v}>
              {text}
            </option>
          );
        })}
      </select>
    </div>
  );
}

/** A textarea with its label (JSON bodies, permissions). */
export function TextArea({ label, value, onValue, rows = 6, hint }: { label: string; value: string; onValue: (v: string) => void; rows?: number; hint?: string }) {
  const id = useId();
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <textarea id={id} rows={rows} value={value} onInput={(e) => onValue(e.currentTarget.value)} spellcheck={false} />
      {hint && <small class="hint">{hint}</small>}
    </div>
  );
}

// A labelled form field: the label, the control and its hint or error.
import { useId } from "preact/hooks";

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
export function Field({ label, value, onValue, hint, type = "text", ...rest }: InputProps) {
  const id = useId();
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <input id={id} type={type as "text"} value={value} onInput={(e) => onValue(e.currentTarget.value)} aria-describedby={hint ? id + "-hint" : undefined} {...rest} />
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

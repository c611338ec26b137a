// Sign up or log in; a second step asks for the authenticator code when
// the account has MFA on (or one of its recovery codes).
import { isMfaChallenge, ValidationError, UnauthorizedError, RateLimitedError } from "@abe-stack/sdk";
import { useState, type FormEvent } from "react";
import { abe, say } from "../abe.js";

type Mode = "login" | "signup";

function explain(e: unknown): string {
  if (e instanceof UnauthorizedError) return "That email and password do not match an account.";
  if (e instanceof RateLimitedError) return `Too many attempts: try again in ${e.retryAfter ?? 30} seconds.`;
  if (e instanceof ValidationError) {
    const f = e.fieldErrors[0];
    if (f) return `${f.field === "password" ? "Password" : f.field}: ${f.message}`;
  }
  return say(e);
}

export function AuthScreen() {
  const [mode, setMode] = useState<Mode>("login");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [name, setName] = useState("");
  const [mfaToken, setMfaToken] = useState<string | null>(null);
  const [code, setCode] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  async function run(fn: () => Promise<void>) {
    setBusy(true);
    setError("");
    try {
      await fn();
    } catch (e) {
      setError(explain(e));
    } finally {
      setBusy(false);
    }
  }

  function submit(e: FormEvent) {
    e.preventDefault();
    void run(async () => {
      if (mode === "signup") {
        const r = await abe.auth.register({ email: email.trim(), password, name: name.trim() || email.split("@")[0]! });
        if ("status" in r) setError("Check your email to verify the account, then log in.");
        return;
      }
      const r = await abe.auth.login({ email: email.trim(), password });
      if (isMfaChallenge(r)) setMfaToken(r.mfaToken);
    });
  }

  function verify(e: FormEvent) {
    e.preventDefault();
    const c = code.trim();
    void run(async () => {
      await abe.auth.verifyMfa(mfaToken!, /^\d{6}$/.test(c) ? { code: c } : { recoveryCode: c });
    });
  }

  if (mfaToken) {
    return (
      <main className="auth">
        <h1 className="brand">Todo</h1>
        <form className="card" onSubmit={verify}>
          <h2>Two-step verification</h2>
          <p className="muted">Enter the 6-digit code from your authenticator app, or one of your recovery codes.</p>
          <label>
            Code
            <input value={code} onChange={(e) => setCode(e.target.value)} inputMode="numeric" autoComplete="one-time-code" autoFocus required />
          </label>
          {error && <p className="error" role="alert">{error}</p>}
          <button className="primary" disabled={busy}>Verify</button>
          <button type="button" className="link" onClick={() => (setMfaToken(null), setCode(""))}>Back</button>
        </form>
      </main>
    );
  }

  return (
    <main className="auth">
      <h1 className="brand">Todo</h1>
      <p className="tagline">Shared lists that work offline.</p>
      <form className="card" onSubmit={submit}>
        <div className="tabs" role="tablist">
          <button type="button" role="tab" aria-selected={mode === "login"} onClick={() => (setMode("login"), setError(""))}>Log in</button>
          <button type="button" role="tab" aria-selected={mode === "signup"} onClick={() => (setMode("signup"), setError(""))}>Sign up</button>
        </div>
        {mode === "signup" && (
          <label>
            Name
            <input value={name} onChange={(e) => setName(e.target.value)} autoComplete="name" placeholder="How others see you" />
          </label>
        )}
        <label>
          Email
          <input type="email" value={email} onChange={(e) => setEmail(e.target.value)} autoComplete="email" required />
        </label>
        <label>
          Password
          <input type="password" value={password} onChange={(e) => setPassword(e.target.value)} autoComplete={mode === "signup" ? "new-password" : "current-password"} minLength={8} required />
        </label>
        {mode === "signup" && <p className="muted small">At least 8 characters; a few unrelated words make a strong one.</p>}
        {error && <p className="error" role="alert">{error}</p>}
        <button className="primary" disabled={busy}>{mode === "signup" ? "Create account" : "Log in"}</button>
      </form>
    </main>
  );
}

// Sign in (with the second factor when the account has one) or sign up.
import { AbeError, isMfaChallenge, RateLimitedError, UnauthorizedError, ValidationError } from "@abe-stack/sdk";
import { useState, type FormEvent } from "react";
import { abe } from "../abe.js";

function words(e: unknown): string {
  if (e instanceof RateLimitedError) return `Too many attempts: try again in ${e.retryAfter ?? 1} s.`;
  if (e instanceof ValidationError) {
    const f = e.fieldErrors[0];
    return f ? `${f.field}: ${f.message}` : (e.problem?.detail ?? e.message);
  }
  if (e instanceof UnauthorizedError) return e.problem?.detail ?? "Wrong email or password.";
  if (e instanceof AbeError) return e.problem?.detail ?? e.message;
  return "The server cannot be reached.";
}

export function SignIn() {
  const [tab, setTab] = useState<"login" | "signup">("login");
  const [name, setName] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
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
      setError(words(e));
    } finally {
      setBusy(false);
    }
  }

  function submit(e: FormEvent) {
    e.preventDefault();
    void run(async () => {
      if (mfaToken) {
        await abe.auth.verifyMfa(mfaToken, code.includes("-") ? { recoveryCode: code.trim() } : { code: code.trim() });
        return;
      }
      if (tab === "signup") {
        const r = await abe.auth.register({ email, password, name });
        if ("status" in r) setError("Check your email to verify the account, then log in.");
        return;
      }
      const r = await abe.auth.login({ email, password });
      if (isMfaChallenge(r)) setMfaToken(r.mfaToken);
    });
  }

  return (
    <main className="narrow">
      <h1 className="brand big">abe blog</h1>
      <p className="lede">A blog with three roles: users write, moderators publish and hide comments, admins see who wrote what.</p>
      <form className="card" onSubmit={submit} aria-label={mfaToken ? "Two-factor code" : tab === "login" ? "Log in" : "Sign up"}>
        {mfaToken ? (
          <>
            <h2>Two-factor code</h2>
            <label>
              Code from your authenticator app (or a recovery code)
              <input value={code} onChange={(e) => setCode(e.target.value)} inputMode="numeric" autoComplete="one-time-code" autoFocus required />
            </label>
            <div className="row">
              <button className="primary" disabled={busy}>
                Verify
              </button>
              <button type="button" onClick={() => (setMfaToken(null), setCode(""))}>
                Back
              </button>
            </div>
          </>
        ) : (
          <>
            <div className="tabs" role="tablist">
              <button type="button" role="tab" aria-selected={tab === "login"} onClick={() => setTab("login")}>
                Log in
              </button>
              <button type="button" role="tab" aria-selected={tab === "signup"} onClick={() => setTab("signup")}>
                Sign up
              </button>
            </div>
            {tab === "signup" && (
              <label>
                Name
                <input value={name} onChange={(e) => setName(e.target.value)} autoComplete="name" required />
              </label>
            )}
            <label>
              Email
              <input type="email" value={email} onChange={(e) => setEmail(e.target.value)} autoComplete="email" required />
            </label>
            <label>
              Password
              <input
                type="password"
                value={password}
                onChange={(e) => setPassword(e.target.value)}
                autoComplete={tab === "login" ? "current-password" : "new-password"}
                required
              />
            </label>
            <button className="primary" disabled={busy}>
              {tab === "login" ? "Log in" : "Create account"}
            </button>
          </>
        )}
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
      </form>
      <p className="hint">
        Trying it? <code>node seed.mjs</code> in examples/blog makes a user, a moderator and an admin and prints their logins.
      </p>
    </main>
  );
}

// Sign-in: password, then the second factor when the account has one, or
// enrolment when a role requires MFA and the admin has none; then
// GET /api/admin/console decides whether this account may use the console.
import { AbeError, isMfaChallenge, type AbeClient, type Session } from "@abe-stack/sdk";
import type { AdminApi, ConsoleAccess } from "@abe-stack/sdk/admin";
import { useState } from "preact/hooks";
import { ErrorBanner } from "../ui/banner";
import { Field } from "../ui/field";

type Step =
  | { kind: "password" }
  | { kind: "mfa"; token: string; methods: string[] }
  | { kind: "enrol"; secret: string; qr: string; url: string }
  | { kind: "codes"; codes: string[] }
  | { kind: "refused"; text: string };

interface Props {
  client: AbeClient;
  api: AdminApi;
  onSignedIn: (access: ConsoleAccess) => void;
}

/** The sign-in card. */
export function SignIn({ client, api, onSignedIn }: Props) {
  const [step, setStep] = useState<Step>({ kind: "password" });
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const [useRecovery, setUseRecovery] = useState(false);
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);

  async function run(fn: () => Promise<void>) {
    setBusy(true);
    setError(undefined);
    try {
      await fn();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  // After a session: may this account use the console?
  async function gate(_s: Session) {
    try {
      onSignedIn(await api.console());
    } catch (e) {
      if (e instanceof AbeError && e.code === "mfa_required") return startEnrol();
      if (e instanceof AbeError && e.status === 403) {
        await client.auth.logout().catch(() => {});
        setStep({ kind: "refused", text: "This account may not use the console. It has been signed out." });
        return;
      }
      throw e;
    }
  }

  async function startEnrol() {
    const r = await client.request<{ secret: string; otpauth_url: string; qr_code: string }>("POST", "/api/auth/mfa/totp/setup", {});
    setCode("");
    setStep({ kind: "enrol", secret: r.data.secret, qr: r.data.qr_code, url: r.data.otpauth_url });
  }

  async function login() {
    const r = await client.auth.login({ email, password });
    setCode("");
    if (isMfaChallenge(r)) setStep({ kind: "mfa", token: r.mfaToken, methods: r.methods });
    else await gate(r);
  }

  const submit = (e: Event) => {
    e.preventDefault();
    if (step.kind === "password") return run(login);
    if (step.kind === "mfa")
      return run(async () => gate(await client.auth.verifyMfa(step.token, useRecovery ? { recoveryCode: code.trim() } : { code: code.trim() })));
    if (step.kind === "enrol")
      return run(async () => {
        const r = await client.request<{ recovery_codes: string[] }>("POST", "/api/auth/mfa/totp/enable", { code: code.trim() });
        setStep({ kind: "codes", codes: r.data.recovery_codes });
      });
    if (step.kind === "codes")
      // The session predates the second factor: sign in again, through it.
      return run(async () => {
        await client.auth.logout().catch(() => {});
        await login();
      });
    setStep({ kind: "password" });
    setPassword("");
  };

  return (
    <main class="signin">
      <form class="card" onSubmit={submit} aria-busy={busy}>
        <h1>abe console</h1>
        {step.kind === "password" && (
          <>
            <Field label="Email" type="email" autoComplete="username" required value={email} onValue={setEmail} autoFocus />
            <Field label="Password" type="password" autoComplete="current-password" required value={password} onValue={setPassword} />
            <button class="primary" disabled={busy}>
              Sign in
            </button>
          </>
        )}
        {step.kind === "mfa" && (
          <>
            <p>{useRecovery ? "Enter one of your recovery codes." : "Enter the 6-digit code from your authenticator app."}</p>
            <Field
              label={useRecovery ? "Recovery code" : "Code"}
              autoComplete="one-time-code"
              inputMode={useRecovery ? "text" : "numeric"}
              required
              value={code}
              onValue={setCode}
              autoFocus
            />
            <button class="primary" disabled={busy}>
              Verify
            </button>
            {step.methods.includes("recovery_code") && (
              <button type="button" class="link" onClick={() => (setUseRecovery(!useRecovery), setCode(""))}>
                {useRecovery ? "Use the authenticator app" : "Use a recovery code"}
              </button>
            )}
          </>
        )}
        {step.kind === "enrol" && (
          <>
            <p>A role of this account requires two-factor authentication. Scan the code with an authenticator app, or type the secret, then enter the code it shows.</p>
            <img class="qr" src={step.qr} alt="QR code of the authenticator secret" width={180} height={180} />
            <p>
              Secret: <code class="secret">{step.secret}</code>
            </p>
            <Field label="Code" autoComplete="one-time-code" inputMode="numeric" required value={code} onValue={setCode} autoFocus />
            <button class="primary" disabled={busy}>
              Turn on two-factor authentication
            </button>
          </>
        )}
        {step.kind === "codes" && (
          <>
            <p>Two-factor authentication is on. Keep these recovery codes somewhere safe: each signs you in once if you lose the app. They are not shown again.</p>
            <ul class="codes">
              {step.codes.map((c) => (
                <li key={c}>
                  <code>{c}</code>
                </li>
              ))}
            </ul>
            <button class="primary" disabled={busy}>
              I saved them: sign in with the app
            </button>
          </>
        )}
        {step.kind === "refused" && (
          <>
            <p class="banner error" role="alert">
              {step.text}
            </p>
            <button class="primary">Sign in with another account</button>
          </>
        )}
        {error !== undefined && <ErrorBanner error={error} />}
      </form>
    </main>
  );
}

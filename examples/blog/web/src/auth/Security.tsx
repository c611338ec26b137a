// Two-factor authentication: enrol (scan the QR code, type a code, keep
// the recovery codes), then sign in again with a code, which is what
// makes the moderator and admin roles count (auth.require_mfa_for_roles).
import { AbeError } from "@abe-stack/sdk";
import { useState } from "react";
import { abe } from "../abe.js";
import { inWords } from "../base/refusals.js";
import { go } from "../base/route.js";
import { MFA_ROLES, type Who } from "../base/session.js";

interface Setup {
  secret: string;
  otpauth_url: string;
  qr_code: string;
}

export function Security({ w }: { w: Who }) {
  const [setup, setSetup] = useState<Setup | null>(null);
  const [code, setCode] = useState("");
  const [recovery, setRecovery] = useState<string[] | null>(null);
  const [error, setError] = useState("");
  const needs = w.user.roles.filter((r) => MFA_ROLES.includes(r));

  async function start() {
    setError("");
    try {
      setSetup((await abe.request<Setup>("POST", "/api/auth/mfa/totp/setup", {})).data);
    } catch (e) {
      setError(inWords(e, "edit", w));
    }
  }
  async function enable() {
    setError("");
    try {
      const r = await abe.request<{ recovery_codes: string[] }>("POST", "/api/auth/mfa/totp/enable", { code: code.trim() });
      setRecovery(r.data.recovery_codes);
    } catch (e) {
      setError(e instanceof AbeError && [400, 401, 422].includes(e.status) ? "That code is not right: type the code your app shows now." : inWords(e, "edit", w));
    }
  }

  const again = (
    <button className="primary" onClick={() => void abe.auth.logout().then(() => go("/"))}>
      Sign out, then sign in with a code
    </button>
  );

  return (
    <section className="card" aria-label="Two-factor authentication">
      <h1>Two-factor authentication</h1>
      {needs.length > 0 && (
        <p>
          Your {needs.join(" and ")} role counts only in a session that passed a second factor. {w.mfa ? "This one did." : "This one did not."}
        </p>
      )}
      {recovery ? (
        <>
          <p>Two-factor authentication is on. Keep these recovery codes somewhere safe; each signs you in once without your phone.</p>
          <ul className="codes" aria-label="Recovery codes">
            {recovery.map((c) => (
              <li key={c}>
                <code>{c}</code>
              </li>
            ))}
          </ul>
          {again}
        </>
      ) : w.user.mfa_enabled && !w.mfa ? (
        <>
          <p>Two-factor authentication is on, but you signed in with your password alone.</p>
          {again}
        </>
      ) : w.user.mfa_enabled || w.mfa ? (
        <p>Two-factor authentication is on, and this session passed it.</p>
      ) : setup ? (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void enable();
          }}
        >
          <p>Scan the code with an authenticator app, or type the key into it.</p>
          <div className="qr">
            <img src={setup.qr_code} alt="QR code for your authenticator app" width={180} height={180} />
            <p>
              Key: <code aria-label="Secret key">{setup.secret}</code>
            </p>
          </div>
          <label>
            Code from the app
            <input value={code} onChange={(e) => setCode(e.target.value)} inputMode="numeric" autoComplete="one-time-code" required />
          </label>
          <button className="primary">Turn on</button>
        </form>
      ) : (
        <button className="primary" onClick={() => void start()}>
          Set up two-factor authentication
        </button>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}

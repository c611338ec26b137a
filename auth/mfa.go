package auth

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"

	"github.com/abe-stack/abe/internal/httpx"
	"github.com/abe-stack/abe/internal/mail"
	"github.com/abe-stack/abe/schema"
)

// TOTP parameters: what every authenticator app supports (RFC 6238's
// defaults), with one step of clock drift either way.
const (
	totpDigits     = 6
	totpPeriod     = 30
	totpSkew       = 1
	totpSecretSize = 20 // bytes: 160 bits, the HMAC-SHA1 block RFC 4226 recommends
	// recoveryCodes are given at enable and at each regeneration.
	recoveryCodes = 10
	// maxChallengeFailures ends a login challenge: log in again.
	maxChallengeFailures = 5
	// secretKeyID names the sealing key derived from auth.secret.
	secretKeyID = "secret"
)

// Security events of MFA.
const (
	EventMFAEnabled        = "mfa_enabled"
	EventMFADisabled       = "mfa_disabled"
	EventMFAFailed         = "mfa_failed"
	EventRecoveryCodeUsed  = "recovery_code_used"
	EventRecoveryCodesMade = "recovery_codes_regenerated"
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// totpSealer encrypts TOTP secrets at rest with AES-GCM. The first key of
// auth.mfa.encryption_keys seals (else the one derived from auth.secret);
// every key opens, so keys rotate: a secret is sealed again under the
// current key when it is next used.
type totpSealer struct {
	current string
	aeads   map[string]cipher.AEAD
}

func newTOTPSealer(cfg schema.Auth) (*totpSealer, error) {
	t := &totpSealer{current: secretKeyID, aeads: map[string]cipher.AEAD{}}
	add := func(id string, key []byte) error {
		block, err := aes.NewCipher(key)
		if err != nil {
			return err
		}
		t.aeads[id], err = cipher.NewGCM(block)
		return err
	}
	if err := add(secretKeyID, derive(cfg.Secret, "totp secret sealing")); err != nil {
		return nil, err
	}
	for i, k := range cfg.MFA.EncryptionKeys {
		key, err := schema.DecodeEncryptionKey(k.Key)
		if err != nil {
			return nil, fmt.Errorf("auth.mfa.encryption_keys[%d]: %w", i, err)
		}
		if err := add(k.ID, key); err != nil {
			return nil, fmt.Errorf("auth.mfa.encryption_keys[%d]: %w", i, err)
		}
		if i == 0 {
			t.current = k.ID
		}
	}
	return t, nil
}

// seal encrypts a secret for one user: the user id is the additional
// data, so a sealed secret copied to another account does not open.
func (t *totpSealer) seal(userID string, secret []byte) (keyID string, sealed []byte) {
	a := t.aeads[t.current]
	nonce := make([]byte, a.NonceSize())
	_, _ = rand.Read(nonce) //nolint:errcheck // crypto/rand does not fail
	return t.current, a.Seal(nonce, nonce, secret, []byte("abe totp "+userID))
}

func (t *totpSealer) open(userID, keyID string, sealed []byte) ([]byte, error) {
	a, ok := t.aeads[keyID]
	if !ok {
		return nil, fmt.Errorf("the TOTP secret of user %s is sealed with key %q, which is not in auth.mfa.encryption_keys", userID, keyID)
	}
	n := a.NonceSize()
	if len(sealed) < n {
		return nil, fmt.Errorf("the TOTP secret of user %s is damaged", userID)
	}
	secret, err := a.Open(nil, sealed[:n], sealed[n:], []byte("abe totp "+userID))
	if err != nil {
		return nil, fmt.Errorf("the TOTP secret of user %s does not open with key %q: %w", userID, keyID, err)
	}
	return secret, nil
}

// totpRow is a user's stored TOTP factor.
type totpRow struct {
	keyID    string
	sealed   []byte
	lastStep int64
	enabled  bool
}

func readTOTP(ctx context.Context, db dbtx, userID string, forUpdate bool) (*totpRow, error) {
	q := `SELECT key_id, secret, last_step, enabled_at IS NOT NULL FROM abe.mfa_totp WHERE user_id = $1`
	if forUpdate {
		q += ` FOR UPDATE`
	}
	var r totpRow
	err := db.QueryRow(ctx, q, userID).Scan(&r.keyID, &r.sealed, &r.lastStep, &r.enabled)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read TOTP factor: %w", err)
	}
	return &r, nil
}

// matchTOTP finds the time step whose code is code, within the allowed
// drift of now, and newer than lastStep: a code accepted once (or one
// older than it) never works again.
func matchTOTP(secret []byte, code string, now time.Time, lastStep int64) (step int64, ok bool) {
	enc := b32.EncodeToString(secret)
	cur := now.Unix() / totpPeriod
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		s := cur + d
		if s <= lastStep || s < 0 {
			continue
		}
		want, err := hotp.GenerateCodeCustom(enc, uint64(s), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return s, true
		}
	}
	return 0, false
}

// secondFactor is what a client sends to prove the second factor: a code
// from the app or, where allowed, a recovery code.
type secondFactor struct {
	Code         string `json:"code"`
	RecoveryCode string `json:"recovery_code"`
}

// normalize checks the form of the factor before anything is looked up;
// a malformed one is a 422 and counts as no attempt.
func (f *secondFactor) normalize(allowRecovery bool) error {
	f.Code = strings.ReplaceAll(strings.TrimSpace(f.Code), " ", "")
	rc := strings.NewReplacer("-", "", " ", "").Replace(strings.ToLower(strings.TrimSpace(f.RecoveryCode)))
	switch {
	case f.Code != "" && rc != "":
		return &FieldError{Field: "code", Message: "send a code or a recovery_code, not both"}
	case f.Code == "" && rc == "" && allowRecovery:
		return &FieldError{Field: "code", Message: "is required: the 6 digits your authenticator app shows, or a recovery_code"}
	case f.Code == "" && !allowRecovery:
		return &FieldError{Field: "code", Message: "is required: the 6 digits your authenticator app shows"}
	case rc != "" && !allowRecovery:
		return &FieldError{Field: "recovery_code", Message: "is not accepted here: send a code from your authenticator app"}
	case f.Code != "" && !isDigits(f.Code, totpDigits):
		return &FieldError{Field: "code", Message: "must be the 6 digits your authenticator app shows"}
	case f.RecoveryCode != "" && (len(rc) != 10 || strings.Trim(rc, "abcdefghijklmnopqrstuvwxyz234567") != ""):
		return &FieldError{Field: "recovery_code", Message: "must be one of your recovery codes, like abcde-fghij"}
	}
	f.RecoveryCode = rc
	return nil
}

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

var errBadCode = errUnauthenticated(httpx.CodeInvalidMFACode, "the code is not valid: check the time on your device and send the code it shows now (a code works once)")

// checkFactor verifies f for u in db's transaction. On success it
// records the accepted step or spends the recovery code and returns how
// the factor was proved ("totp" or "recovery_code"); a wrong factor gives
// ("", nil) and the caller records the failure.
func (s *Service) checkFactor(ctx context.Context, db dbtx, u *User, f secondFactor) (string, error) {
	row, err := readTOTP(ctx, db, u.ID, true)
	if err != nil {
		return "", err
	}
	if row == nil || !row.enabled {
		return "", errStatus(http.StatusConflict, "two-factor authentication is not on for this account")
	}
	if f.RecoveryCode != "" {
		tag, err := db.Exec(ctx, `UPDATE abe.mfa_recovery_codes SET used_at = $3
			WHERE id = (SELECT id FROM abe.mfa_recovery_codes WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL LIMIT 1)`,
			u.ID, s.recoveryHash(f.RecoveryCode), s.now())
		if err != nil {
			return "", fmt.Errorf("spend recovery code: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return "", nil
		}
		return "recovery_code", nil
	}
	secret, err := s.totp.open(u.ID, row.keyID, row.sealed)
	if err != nil {
		return "", err
	}
	step, ok := matchTOTP(secret, f.Code, s.now(), row.lastStep)
	if !ok {
		return "", nil
	}
	keyID, sealed := row.keyID, row.sealed
	if keyID != s.totp.current {
		keyID, sealed = s.totp.seal(u.ID, secret)
	}
	if _, err := db.Exec(ctx, `UPDATE abe.mfa_totp SET last_step = $2, key_id = $3, secret = $4 WHERE user_id = $1`, u.ID, step, keyID, sealed); err != nil {
		return "", fmt.Errorf("record TOTP step: %w", err)
	}
	return "totp", nil
}

// gate reads u's failed attempts and refuses a code check that comes
// too early (the progressive delay) or to a locked account, as for a
// password.
func (s *Service) gate(ctx context.Context, u *User, c client) (attemptState, error) {
	st, _, err := s.loginState(ctx, normalizeEmail(u.Email), c.ip)
	if err != nil {
		return st, err
	}
	return st, s.throttled(st)
}

// factorFailed records a wrong second factor as a failed login attempt of
// the account, so codes are throttled and locked out like passwords.
func (s *Service) factorFailed(ctx context.Context, db dbtx, u *User, c client, st attemptState, details map[string]any) error {
	email := normalizeEmail(u.Email)
	if err := s.recordAttempt(ctx, db, email, c.ip, false); err != nil {
		return err
	}
	if err := s.record(ctx, db, c, u.ID, EventMFAFailed, details); err != nil {
		return err
	}
	if st.lockFailures+1 >= s.cfg.Lockout.MaxFailures {
		until, err := s.lock(ctx, db, email)
		if err != nil {
			return err
		}
		return s.record(ctx, db, c, u.ID, EventLockout, map[string]any{"email": email, "until": until})
	}
	return nil
}

// withFactor runs fn after u proved f, throttled and counted like a
// login. fn runs in the same transaction as the check; a wrong factor
// commits its failure and answers errBadCode, a right one resets the
// account's failures as a successful login does.
func (s *Service) withFactor(ctx context.Context, u *User, f secondFactor, c client, what string, fn func(db dbtx, method string) error) error {
	st, err := s.gate(ctx, u, c)
	if err != nil {
		return err
	}
	var refusal error
	err = inTxPool(ctx, s, func(db dbtx) error {
		method, err := s.checkFactor(ctx, db, u, f)
		if err != nil {
			return err
		}
		if method == "" {
			refusal = errBadCode
			return s.factorFailed(ctx, db, u, c, st, map[string]any{"during": what})
		}
		if err := s.recordAttempt(ctx, db, normalizeEmail(u.Email), c.ip, true); err != nil {
			return err
		}
		return fn(db, method)
	})
	if err != nil {
		return err
	}
	return refusal
}

// recoveryHash is a keyed hash: recovery codes have 50 bits, too few to
// survive a dump of the table under a plain hash.
func (s *Service) recoveryHash(code string) []byte {
	m := hmac.New(sha256.New, s.recoveryKey)
	m.Write([]byte(code))
	return m.Sum(nil)
}

// newRecoveryCodes replaces u's recovery codes and returns them, for the
// only time.
func (s *Service) newRecoveryCodes(ctx context.Context, db dbtx, userID string) ([]string, error) {
	if _, err := db.Exec(ctx, `DELETE FROM abe.mfa_recovery_codes WHERE user_id = $1`, userID); err != nil {
		return nil, fmt.Errorf("replace recovery codes: %w", err)
	}
	codes := make([]string, recoveryCodes)
	hashes := make([][]byte, recoveryCodes)
	for i := range codes {
		var b [7]byte
		_, _ = rand.Read(b[:]) //nolint:errcheck // crypto/rand does not fail
		c := strings.ToLower(b32.EncodeToString(b[:]))[:10]
		codes[i] = c[:5] + "-" + c[5:]
		hashes[i] = s.recoveryHash(c)
	}
	if _, err := db.Exec(ctx, `INSERT INTO abe.mfa_recovery_codes (user_id, code_hash, created_at) SELECT $1, h, $3 FROM unnest($2::bytea[]) AS h`,
		userID, hashes, s.now()); err != nil {
		return nil, fmt.Errorf("store recovery codes: %w", err)
	}
	return codes, nil
}

// TOTPSetup is the answer of setup: what an authenticator app needs.
type TOTPSetup struct {
	// Secret is the key in base32, for typing into an app.
	Secret string `json:"secret"`
	// URL is the otpauth:// URL the QR code holds.
	URL string `json:"otpauth_url"`
	// QRCode is a PNG data URL of the QR code.
	QRCode string `json:"qr_code"`
}

// SetupTOTP makes a pending secret for p's user. Nothing is enforced
// until EnableTOTP confirms it with a code. A second setup while one is
// pending is refused unless restart is set, so a stray request cannot
// replace the secret a user is scanning.
func (s *Service) SetupTOTP(ctx context.Context, p *Principal, restart bool) (*TOTPSetup, error) {
	u, err := s.UserByID(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	secret := make([]byte, totpSecretSize)
	_, _ = rand.Read(secret) //nolint:errcheck // crypto/rand does not fail
	key, err := totp.Generate(totp.GenerateOpts{Issuer: s.cfg.MFA.Issuer, AccountName: u.Email, Period: totpPeriod,
		Secret: secret, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return nil, fmt.Errorf("make TOTP key: %w", err)
	}
	img, err := key.Image(256, 256)
	if err != nil {
		return nil, fmt.Errorf("draw QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("draw QR code: %w", err)
	}
	err = inTxPool(ctx, s, func(db dbtx) error {
		row, err := readTOTP(ctx, db, u.ID, true)
		switch {
		case err != nil:
			return err
		case row != nil && row.enabled:
			return errStatus(http.StatusConflict, "two-factor authentication is already on; disable it first to enrol another device")
		case row != nil && !restart:
			return errStatus(http.StatusConflict, "a setup is already pending: enable it with a code from your app, or send {\"restart\": true} to start over with a new secret")
		}
		keyID, sealed := s.totp.seal(u.ID, secret)
		_, err = db.Exec(ctx, `INSERT INTO abe.mfa_totp (user_id, key_id, secret, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (user_id) DO UPDATE SET key_id = $2, secret = $3, last_step = 0, created_at = $4, enabled_at = NULL`,
			u.ID, keyID, sealed, s.now())
		if err != nil {
			return fmt.Errorf("store TOTP secret: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &TOTPSetup{Secret: key.Secret(), URL: key.URL(), QRCode: "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())}, nil
}

// EnableTOTP turns MFA on once a code from the pending secret proves the
// app has it, and returns the recovery codes, shown this once. A wrong
// code here is a signed-in user's typo during setup, not a failed login:
// it is recorded as an mfa_failed event but counts toward no delay or
// lock, since guessing it gains nothing (the same session can start the
// setup over and read the secret).
func (s *Service) EnableTOTP(ctx context.Context, p *Principal, code string, c client) ([]string, error) {
	f := secondFactor{Code: code}
	if err := f.normalize(false); err != nil {
		return nil, err
	}
	u, err := s.UserByID(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	alert, err := s.alert(kindMFAEnabled, u, c, false)
	if err != nil {
		return nil, err
	}
	var codes []string
	var refusal error
	err = inTxPool(ctx, s, func(db dbtx) error {
		row, err := readTOTP(ctx, db, u.ID, true)
		switch {
		case err != nil:
			return err
		case row == nil:
			return errStatus(http.StatusConflict, "no setup is pending: call POST /api/auth/mfa/totp/setup first")
		case row.enabled:
			return errStatus(http.StatusConflict, "two-factor authentication is already on")
		}
		secret, err := s.totp.open(u.ID, row.keyID, row.sealed)
		if err != nil {
			return err
		}
		step, ok := matchTOTP(secret, f.Code, s.now(), row.lastStep)
		if !ok {
			refusal = errBadCode
			return s.record(ctx, db, c, u.ID, EventMFAFailed, map[string]any{"during": "enable"})
		}
		if _, err := db.Exec(ctx, `UPDATE abe.mfa_totp SET enabled_at = $2, last_step = $3 WHERE user_id = $1`, u.ID, s.now(), step); err != nil {
			return fmt.Errorf("enable TOTP: %w", err)
		}
		if codes, err = s.newRecoveryCodes(ctx, db, u.ID); err != nil {
			return err
		}
		return s.record(ctx, db, c, u.ID, EventMFAEnabled, map[string]any{"method": "totp"})
	})
	if err != nil {
		return nil, err
	}
	if refusal != nil {
		return nil, refusal
	}
	s.outbox.enqueue(alert)
	return codes, nil
}

// DisableTOTPRequest is the body of POST /api/auth/mfa/totp/disable.
type DisableTOTPRequest struct {
	Password string `json:"password"`
	secondFactor
}

// DisableTOTP turns MFA off: it needs the password and a current code or
// a recovery code, so a stolen session alone cannot remove the factor.
func (s *Service) DisableTOTP(ctx context.Context, p *Principal, req DisableTOTPRequest, c client) error {
	if err := req.normalize(true); err != nil {
		return err
	}
	if req.Password == "" {
		return &FieldError{Field: "password", Message: "is required"}
	}
	u, err := s.UserByID(ctx, p.UserID)
	if err != nil {
		return err
	}
	ok, _, err := s.hasher.Verify(ctx, req.Password, u.passwordHash)
	if err != nil {
		return fmt.Errorf("disable MFA: %w", err)
	}
	if !ok {
		return errCode(http.StatusForbidden, httpx.CodeInvalidCredentials, "the password is not right")
	}
	alert, err := s.alert(kindMFADisabled, u, c, false)
	if err != nil {
		return err
	}
	err = s.withFactor(ctx, u, req.secondFactor, c, "disable", func(db dbtx, method string) error {
		if err := deleteMFA(ctx, db, u.ID); err != nil {
			return err
		}
		return s.record(ctx, db, c, u.ID, EventMFADisabled, map[string]any{"with": method})
	})
	if err != nil {
		return err
	}
	s.outbox.enqueue(alert)
	return nil
}

// RegenerateRecoveryCodes replaces the recovery codes; the old ones stop
// working. It needs a current code from the app.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, p *Principal, code string, c client) ([]string, error) {
	f := secondFactor{Code: code}
	if err := f.normalize(false); err != nil {
		return nil, err
	}
	u, err := s.UserByID(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	alert, err := s.alert(kindRecoveryCodesRenewed, u, c, false)
	if err != nil {
		return nil, err
	}
	var codes []string
	err = s.withFactor(ctx, u, f, c, "recovery_codes", func(db dbtx, _ string) error {
		if codes, err = s.newRecoveryCodes(ctx, db, u.ID); err != nil {
			return err
		}
		return s.record(ctx, db, c, u.ID, EventRecoveryCodesMade, nil)
	})
	if err != nil {
		return nil, err
	}
	s.outbox.enqueue(alert)
	return codes, nil
}

func deleteMFA(ctx context.Context, db dbtx, userID string) error {
	if _, err := db.Exec(ctx, `DELETE FROM abe.mfa_totp WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("remove TOTP factor: %w", err)
	}
	if _, err := db.Exec(ctx, `DELETE FROM abe.mfa_recovery_codes WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("remove recovery codes: %w", err)
	}
	if _, err := db.Exec(ctx, `DELETE FROM abe.mfa_challenges WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("remove login challenges: %w", err)
	}
	return nil
}

// ResetMFA clears a user's second factor, for one who lost the device; an
// administrator (by) does it, and it is recorded. The user's sessions
// end, since whoever holds them may be the reason for the reset.
func (s *Service) ResetMFA(ctx context.Context, userID, by string) error {
	return s.resetMFA(ctx, client{}, userID, by)
}

func (s *Service) resetMFA(ctx context.Context, c client, userID, by string) error {
	var alert *mail.Message
	err := inTxPool(ctx, s, func(db dbtx) error {
		u, err := s.userByID(ctx, db, userID)
		if err != nil {
			return err
		}
		if !u.MFAEnabled {
			return errStatus(http.StatusConflict, "two-factor authentication is not on for %s", u.Email)
		}
		if alert, err = s.alert(kindMFADisabled, u, c, true); err != nil {
			return err
		}
		if err := deleteMFA(ctx, db, u.ID); err != nil {
			return err
		}
		n, err := s.revokeUserSessions(ctx, db, u.ID, "")
		if err != nil {
			return err
		}
		return s.record(ctx, db, c, u.ID, EventMFADisabled, map[string]any{"by": by, "actor": by, "reset": true, "sessions_ended": n})
	})
	if err != nil {
		return err
	}
	s.outbox.enqueue(alert)
	return nil
}

// MFAChallenge is what a login answers when the account has a second
// factor: the token that POST /api/auth/mfa/verify takes with a code.
type MFAChallenge struct {
	Required  bool     `json:"mfa_required"`
	Token     string   `json:"mfa_token"`
	Methods   []string `json:"methods"`
	ExpiresIn int      `json:"expires_in"`
}

// newChallenge starts the second step of a login.
func (s *Service) newChallenge(ctx context.Context, db dbtx, u *User, c client) (*MFAChallenge, error) {
	token, hash := newOpaqueToken()
	now := s.now()
	ttl := time.Duration(s.cfg.MFA.ChallengeTTL)
	_, err := db.Exec(ctx, `INSERT INTO abe.mfa_challenges (id, user_id, token_hash, ip, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		uuid.Must(uuid.NewV7()), u.ID, hash, c.ip, now, now.Add(ttl))
	if err != nil {
		return nil, fmt.Errorf("start MFA challenge: %w", err)
	}
	return &MFAChallenge{Required: true, Token: token, Methods: []string{"totp", "recovery_code"}, ExpiresIn: int(ttl.Seconds())}, nil
}

// VerifyMFARequest is the body of POST /api/auth/mfa/verify.
type VerifyMFARequest struct {
	MFAToken string `json:"mfa_token"`
	secondFactor
}

var errChallengeInvalid = errUnauthenticated(httpx.CodeInvalidMFAToken, "the mfa_token is invalid, was already used, or has expired; log in again")

// VerifyMFA completes a login that passed its password: a code from the
// app or a recovery code, against the challenge the login gave. The
// challenge works once; wrong codes count as failed logins of the
// account, and after a few the challenge ends.
func (s *Service) VerifyMFA(ctx context.Context, req VerifyMFARequest, c client) (*TokenAnswer, error) {
	if req.MFAToken == "" {
		return nil, &FieldError{Field: "mfa_token", Message: "is required: the mfa_token the login answered"}
	}
	if err := req.normalize(true); err != nil {
		return nil, err
	}
	if len(req.MFAToken) > 128 {
		return nil, errChallengeInvalid
	}
	var userID string
	err := s.db.QueryRow(ctx, `SELECT user_id::text FROM abe.mfa_challenges WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2`,
		hashToken(req.MFAToken), s.now()).Scan(&userID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errChallengeInvalid
	}
	if err != nil {
		return nil, fmt.Errorf("read MFA challenge: %w", err)
	}
	u, err := s.UserByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	st, err := s.gate(ctx, u, c)
	if err != nil {
		return nil, err
	}
	var answer *TokenAnswer
	var refusal error
	var alert *mail.Message
	err = inTxPool(ctx, s, func(db dbtx) error {
		// FOR UPDATE: two verifies of one challenge cannot both succeed.
		var id string
		var failures int
		err := db.QueryRow(ctx, `SELECT id::text, failures FROM abe.mfa_challenges
			WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 FOR UPDATE`, hashToken(req.MFAToken), s.now()).Scan(&id, &failures)
		if errors.Is(err, pgx.ErrNoRows) {
			refusal = errChallengeInvalid
			return nil
		}
		if err != nil {
			return fmt.Errorf("read MFA challenge: %w", err)
		}
		method, err := s.checkFactor(ctx, db, u, req.secondFactor)
		if err != nil {
			return err
		}
		if method == "" {
			refusal = errBadCode
			if failures+1 >= maxChallengeFailures {
				refusal = errUnauthenticated(httpx.CodeInvalidMFACode, "the code is not valid, and this login has had too many wrong codes: log in again")
			}
			if _, err := db.Exec(ctx, `UPDATE abe.mfa_challenges SET failures = failures + 1,
				used_at = CASE WHEN failures + 1 >= $2::int THEN $3::timestamptz END WHERE id = $1`, id, maxChallengeFailures, s.now()); err != nil {
				return fmt.Errorf("count MFA failure: %w", err)
			}
			return s.factorFailed(ctx, db, u, c, st, map[string]any{"during": "login"})
		}
		if _, err := db.Exec(ctx, `UPDATE abe.mfa_challenges SET used_at = $2 WHERE id = $1`, id, s.now()); err != nil {
			return fmt.Errorf("spend MFA challenge: %w", err)
		}
		if alert, err = s.newDeviceAlert(ctx, db, u, c); err != nil {
			return err
		}
		if err := s.recordAttempt(ctx, db, normalizeEmail(u.Email), c.ip, true); err != nil {
			return err
		}
		if method == "recovery_code" {
			var left int
			if err := db.QueryRow(ctx, `SELECT count(*) FROM abe.mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL`, u.ID).Scan(&left); err != nil {
				return fmt.Errorf("count recovery codes: %w", err)
			}
			if err := s.record(ctx, db, c, u.ID, EventRecoveryCodeUsed, map[string]any{"left": left}); err != nil {
				return err
			}
		}
		if err := s.record(ctx, db, c, u.ID, EventLoginSucceeded, map[string]any{"mfa": method}); err != nil {
			return err
		}
		answer, err = s.startSession(ctx, db, u, c, true)
		return err
	})
	if err != nil {
		return nil, err
	}
	if refusal != nil {
		return nil, refusal
	}
	s.outbox.sendAlert(alert)
	s.afterLogin(ctx, u, true, c)
	return answer, nil
}

// effectiveRoles drops the roles of auth.require_mfa_for_roles from a
// session that did not pass a second factor.
func (s *Service) effectiveRoles(roles []string, mfa bool) []string {
	if mfa || len(s.cfg.RequireMFAForRoles) == 0 {
		return roles
	}
	out := make([]string, 0, len(roles))
	for _, r := range roles {
		if !slices.Contains(s.cfg.RequireMFAForRoles, r) {
			out = append(out, r)
		}
	}
	return out
}

package abe_test

import (
	"bytes"
	"encoding/base64"
	"image/png"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/abe-stack/abe"
)

// testClock is a clock the test moves, so TOTP steps are chosen, not
// waited for.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *testClock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// readQR decodes the QR code of a PNG data URL, as a phone's camera does.
func readQR(t *testing.T, dataURL string) string {
	t.Helper()
	b64, ok := strings.CutPrefix(dataURL, "data:image/png;base64,")
	if !ok {
		t.Fatalf("not a PNG data URL: %.40s", dataURL)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("the QR code does not decode: %v", err)
	}
	return res.GetText()
}

// TestMFAEndToEnd enrols a moderator by scanning the QR code, logs in
// with codes and recovery codes over HTTP, and shows that the moderator
// role, which requires MFA in this configuration, only works in a session
// that passed the second factor.
func TestMFAEndToEnd(t *testing.T) {
	t.Parallel()
	cfg := loadExample(t)
	cfg.Auth.RequireMFAForRoles = []string{"moderator"}
	cfg.Auth.MFA.Issuer = "Todo App"
	clk := &testClock{t: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}
	w := newWorldWith(t, cfg, &abe.Options{Now: clk.Now})
	code := func(secret string) string {
		c, err := totp.GenerateCodeCustom(secret, clk.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	pid := w.mustDo(ann, "POST", "/api/collections/projects/records", map[string]any{"name": "P", "owner": w.ids[ann], "members": []string{w.ids[mod]}}, 201).str("id")
	todo := func() string {
		return w.mustDo(ann, "POST", "/api/collections/todos/records", map[string]any{"project": pid, "title": "t"}, 201).str("id")
	}
	// With a password alone, the moderator role does not count.
	w.mustDo(mod, "DELETE", "/api/collections/todos/records/"+todo(), nil, 403)

	// Enrol: scan the QR code, type the code the app shows.
	setup := w.mustDo(mod, "POST", "/api/auth/mfa/totp/setup", nil, 200)
	key, err := otp.NewKeyFromURL(readQR(t, setup.str("qr_code")))
	if err != nil {
		t.Fatal(err)
	}
	if key.Issuer() != "Todo App" || key.AccountName() != mod || key.Secret() != setup.str("secret") || key.URL() != setup.str("otpauth_url") {
		t.Fatalf("the QR code holds %s (issuer %q, account %q)", key.URL(), key.Issuer(), key.AccountName())
	}
	enabled := w.mustDo(mod, "POST", "/api/auth/mfa/totp/enable", map[string]string{"code": code(key.Secret())}, 200)
	recovery := enabled.body["recovery_codes"].([]any)
	clk.Advance(30 * time.Second)

	login := func() string {
		r := w.mustDo("", "POST", "/api/auth/login", map[string]string{"email": mod, "password": "long enough pass phrase 9"}, 200)
		if r.body["mfa_required"] != true || r.str("access_token") != "" {
			t.Fatalf("login: %s", r.raw)
		}
		return r.str("mfa_token")
	}
	c := code(key.Secret())
	r := w.mustDo("", "POST", "/api/auth/mfa/verify", map[string]string{"mfa_token": login(), "code": c}, 200)
	w.tokens[mod] = r.str("access_token")
	w.mustDo(mod, "DELETE", "/api/collections/todos/records/"+todo(), nil, 204)

	// The code again: refused. A recovery code: once.
	tok := login()
	w.mustDo("", "POST", "/api/auth/mfa/verify", map[string]string{"mfa_token": tok, "code": c}, 401)
	clk.Advance(time.Minute)
	w.mustDo("", "POST", "/api/auth/mfa/verify", map[string]string{"mfa_token": tok, "recovery_code": recovery[0].(string)}, 200)
	w.mustDo("", "POST", "/api/auth/mfa/verify", map[string]string{"mfa_token": login(), "recovery_code": recovery[0].(string)}, 401)
	clk.Advance(time.Minute)

	// New recovery codes, then off.
	regen := w.mustDo(mod, "POST", "/api/auth/mfa/recovery-codes", map[string]string{"code": code(key.Secret())}, 200)
	if len(regen.body["recovery_codes"].([]any)) != 10 {
		t.Fatalf("regenerate: %s", regen.raw)
	}
	clk.Advance(time.Minute)
	w.mustDo(mod, "POST", "/api/auth/mfa/totp/disable", map[string]string{"password": "long enough pass phrase 9", "code": code(key.Secret())}, 204)
	r = w.mustDo("", "POST", "/api/auth/login", map[string]string{"email": mod, "password": "long enough pass phrase 9"}, 200)
	if r.str("access_token") == "" {
		t.Fatalf("login after disabling: %s", r.raw)
	}
}

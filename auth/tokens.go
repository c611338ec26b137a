package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/abe-stack/abe/internal/httpx"
)

// accessClaims are the claims of an access token.
type accessClaims struct {
	jwt.RegisteredClaims
	Email    string   `json:"email"`
	Verified bool     `json:"email_verified"`
	Roles    []string `json:"roles"`
	SID      string   `json:"sid"`
	AMR      []string `json:"amr,omitempty"`
}

// issueAccess signs an access token for u in session sid. Its amr claim
// (RFC 8176) says how the session's login was authenticated: pwd, and otp
// after a TOTP code or a recovery code.
func (s *Service) issueAccess(u *User, sid string, now time.Time, mfa bool) (token string, exp time.Time, err error) {
	exp = now.Add(s.accessTTL)
	c := accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.cfg.Issuer,
			Subject:   u.ID,
			ID:        uuid.Must(uuid.NewV7()).String(),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
		Email:    u.Email,
		Verified: u.EmailVerified,
		Roles:    u.Roles,
		SID:      sid,
		AMR:      []string{"pwd"},
	}
	if mfa {
		c.AMR = append(c.AMR, "otp")
	}
	if c.Roles == nil {
		c.Roles = []string{}
	}
	token, err = s.keys.sign(c)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign access token: %w", err)
	}
	return token, exp, nil
}

// ErrTokenInvalid is returned for access tokens that are malformed,
// forged, expired or revoked; Reason says which, for the client.
type TokenError struct {
	Reason string
	// Code is httpx.CodeTokenExpired, CodeTokenRevoked or CodeInvalidToken.
	Code string
}

func (e *TokenError) Error() string { return "invalid access token: " + e.Reason }

// VerifyAccess checks an access token: its signature with the key it
// names (and only that key's algorithm), issuer, expiry and revocation.
// A token verified before is not parsed again (see verifiedTokens); its
// expiry and revocation are checked on every call.
func (s *Service) VerifyAccess(token string) (*Principal, error) {
	p, ok := s.verified.get(token, s.now())
	if !ok {
		var err error
		if p, err = s.parseAccess(token); err != nil {
			return nil, err
		}
		s.verified.put(token, p)
	}
	if s.revoked.has(p.TokenID, p.SessionID) {
		return nil, &TokenError{Reason: "the token has been revoked; log in again", Code: httpx.CodeTokenRevoked}
	}
	cp := *p
	return &cp, nil
}

// parseAccess verifies a token's signature and claims.
func (s *Service) parseAccess(token string) (*Principal, error) {
	var c accessClaims
	_, err := s.parser.ParseWithClaims(token, &c, s.keys.keyfunc)
	if err != nil {
		reason, code := "the token is malformed or its signature does not verify", httpx.CodeInvalidToken
		switch {
		case errors.Is(err, jwt.ErrTokenExpired):
			reason, code = "the token has expired; refresh it", httpx.CodeTokenExpired
		case errors.Is(err, errUnknownKey):
			reason = "the token was signed with a key this server no longer has; log in again"
		case errors.Is(err, jwt.ErrTokenInvalidIssuer):
			reason = "the token was issued by another service"
		case errors.Is(err, jwt.ErrTokenUsedBeforeIssued), errors.Is(err, jwt.ErrTokenNotValidYet):
			reason = "the token is not valid yet"
		}
		return nil, &TokenError{Reason: reason, Code: code}
	}
	if c.Subject == "" || c.ID == "" || c.SID == "" || c.IssuedAt == nil {
		return nil, &TokenError{Reason: "the token lacks required claims", Code: httpx.CodeInvalidToken}
	}
	// sub, jti and sid reach SQL as uuid values; a token signed with our
	// key but holding anything else (a key shared with another issuer, a
	// hand-made token) is refused here rather than failing a query.
	if !canonicalUUID(c.Subject) || !canonicalUUID(c.ID) || !canonicalUUID(c.SID) {
		return nil, &TokenError{Reason: "the token's sub, jti and sid claims must be UUIDs", Code: httpx.CodeInvalidToken}
	}
	p := &Principal{
		UserID: c.Subject, Email: c.Email, Verified: c.Verified, Roles: c.Roles,
		SessionID: c.SID, TokenID: c.ID, IssuedAt: c.IssuedAt.Time, ExpiresAt: c.ExpiresAt.Time,
	}
	for _, m := range c.AMR {
		if m == "otp" {
			p.MFA = true
		}
	}
	return p, nil
}

// canonicalUUID tells whether s is a UUID in the form abe writes it:
// lower case, with hyphens, without braces or a urn: prefix.
func canonicalUUID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

// verifiedTokens remembers the principals of access tokens whose
// signature and claims checked out, keyed by the whole token, so a
// client's next requests with the same token skip decoding its claims
// (most of the cost of a check, measured by bench/records). Only an
// identical token hits, so nothing unverified is ever trusted; an entry
// is used only until its token expires. The map is bounded: when full it
// starts over, which costs one parse per active token.
type verifiedTokens struct {
	mu sync.RWMutex
	m  map[string]*Principal
}

const maxVerifiedTokens = 20000

func (v *verifiedTokens) get(token string, now time.Time) (*Principal, bool) {
	v.mu.RLock()
	p, ok := v.m[token]
	v.mu.RUnlock()
	if !ok || !now.Before(p.ExpiresAt) {
		return nil, false
	}
	return p, true
}

func (v *verifiedTokens) put(token string, p *Principal) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil || len(v.m) >= maxVerifiedTokens {
		v.m = make(map[string]*Principal, 1024)
	}
	v.m[token] = p
}

// newOpaqueToken returns a random token for a client and the hash to store.
func newOpaqueToken() (token string, hash []byte) {
	var b [32]byte
	_, _ = rand.Read(b[:]) //nolint:errcheck // crypto/rand does not fail
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, hashToken(token)
}

func hashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

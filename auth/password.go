package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
	"golang.org/x/crypto/argon2"
)

// Argon2Params are the Argon2id cost parameters.
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
	SaltLen uint32
	KeyLen  uint32
}

// DefaultArgon2 are OWASP's parameters: m=19456 KiB, t=2, p=1.
var DefaultArgon2 = Argon2Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Hasher hashes passwords with Argon2id in the PHC string format and
// bounds how many hashes run at once: each takes Memory KiB, and a burst of
// logins must not exhaust the machine.
type Hasher struct {
	params Argon2Params
	slots  chan struct{}
	// dummy is a hash of a random password, verified against when an
	// account does not exist, so the answer takes as long as a real check.
	dummy string
}

// NewHasher returns a hasher with params.
func NewHasher(params Argon2Params) *Hasher {
	h := &Hasher{params: params, slots: make(chan struct{}, 2*runtime.GOMAXPROCS(0))}
	var pw [16]byte
	_, _ = rand.Read(pw[:]) //nolint:errcheck // crypto/rand does not fail
	h.dummy = h.hash(string(pw[:]))
	return h
}

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) release() { <-h.slots }

// Hash returns the PHC string of password.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return h.hash(password), nil
}

func (h *Hasher) hash(password string) string {
	p := h.params
	salt := make([]byte, p.SaltLen)
	_, _ = rand.Read(salt) //nolint:errcheck // crypto/rand does not fail
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// Verify reports whether password matches the PHC string encoded, and
// whether the hash should be replaced because the parameters changed. An
// empty encoded (no account, or no password) is checked against a dummy
// hash so that it costs the same, and never matches.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (ok, rehash bool, err error) {
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer h.release()
	if encoded == "" {
		_, _, _ = h.verify(password, h.dummy) //nolint:errcheck // only its cost matters
		return false, false, nil
	}
	return h.verify(password, encoded)
}

func (h *Hasher) verify(password, encoded string) (ok, rehash bool, err error) {
	p, salt, key, err := parsePHC(encoded)
	if err != nil {
		return false, false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	ok = subtle.ConstantTimeCompare(got, key) == 1
	rehash = p.Memory != h.params.Memory || p.Time != h.params.Time || p.Threads != h.params.Threads || uint32(len(key)) != h.params.KeyLen
	return ok, rehash, nil
}

var errPHC = errors.New("not an argon2id PHC string")

func parsePHC(s string) (Argon2Params, []byte, []byte, error) {
	var p Argon2Params
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, errPHC
	}
	var threads uint32
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &threads); err != nil || threads == 0 || threads > 255 || p.Time == 0 || p.Memory == 0 {
		return p, nil, nil, errPHC
	}
	p.Threads = uint8(threads)
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	key, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 {
		return p, nil, nil, errPHC
	}
	return p, salt, key, nil
}

// PasswordPolicy says what a password must be.
type PasswordPolicy struct {
	MinLength, MaxLength, MinScore int
}

// Check explains, in one sentence for the user, what is wrong with a
// password and how to make it stronger; "" means it is acceptable.
// userInputs (the email, the name) count as easy to guess.
func (p PasswordPolicy) Check(password string, userInputs ...string) string {
	n := utf8.RuneCountInString(password)
	switch {
	case !utf8.ValidString(password):
		return "the password is not valid UTF-8 text"
	case n < p.MinLength:
		return fmt.Sprintf("use at least %d characters (this has %d)", p.MinLength, n)
	case n > p.MaxLength:
		return fmt.Sprintf("use at most %d characters (this has %d)", p.MaxLength, n)
	}
	var inputs []string
	for _, in := range userInputs {
		for _, part := range strings.FieldsFunc(strings.ToLower(in), func(r rune) bool { return r == '@' || r == '.' || r == ' ' || r == '_' || r == '-' || r == '+' }) {
			if len(part) >= 3 {
				inputs = append(inputs, part)
			}
		}
		inputs = append(inputs, strings.ToLower(in))
		if local, _, ok := strings.Cut(strings.ToLower(in), "@"); ok {
			inputs = append(inputs, local)
		}
	}
	res := zxcvbn.PasswordStrength(password, inputs)
	if res.Score >= p.MinScore {
		return ""
	}
	return "this password is too easy to guess: " + advice(res, inputs)
}

// advice turns the weakest parts zxcvbn found into a suggestion.
func advice(res zxcvbn.Result, inputs []string) string {
	for _, m := range res.Sequence {
		switch m.Pattern {
		case "dictionary":
			for _, in := range inputs {
				if strings.EqualFold(m.MatchedWord, in) {
					return "do not use your email or name in it; add a few unrelated words"
				}
			}
			if m.Rank <= 1000 {
				return fmt.Sprintf("%q is one of the most common passwords or words; use a few unrelated words, or a password manager", m.Token)
			}
		case "spatial":
			return "avoid keyboard patterns like qwerty or asdf; add a few unrelated words"
		case "repeat":
			return "avoid repeated characters or words like aaa or abcabc"
		case "sequence":
			return "avoid sequences like abc or 1234"
		case "date":
			return "avoid dates and years, which are easy to guess"
		}
	}
	return "make it longer: a few unrelated words, or a password manager, work well"
}

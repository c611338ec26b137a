package engine

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// A file field holds names the server made: 26 random characters of
// lower-case base32 (130 bits), never the client's file name. A file is
// stored under <record id>/<name>; the client's name is kept only as
// metadata, for Content-Disposition.

var nameEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

const fileNameLen = 26

// newFileName makes the name of a new file.
func newFileName() string {
	var b [16]byte
	rand.Read(b[:])
	return nameEncoding.EncodeToString(b[:])
}

// isFileName tells whether s is a name newFileName could have made.
func isFileName(s string) bool {
	if len(s) != fileNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// fileKey is where a record's file is stored. The trigger that queues
// deletions builds the same key.
func fileKey(recordID, name string) string { return recordID + "/" + name }

// maxOriginalName bounds the kept file name, in bytes: what most file
// systems allow.
const maxOriginalName = 255

// sanitizeFilename keeps what of a client's file name is safe to show
// and to offer back in Content-Disposition: the last path element, valid
// UTF-8 without control or invisible formatting characters (a right-to-left
// override could disguise "gpj.exe" as "exe.jpg"), without leading dots or
// surrounding spaces, at most maxOriginalName bytes. An empty result is
// "file".
func sanitizeFilename(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r) {
			return -1
		}
		if unicode.IsSpace(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(name, ""))
	if len(name) > maxOriginalName {
		// Cut at a rune boundary, keeping an extension when there is a
		// short one.
		ext := ""
		if i := strings.LastIndexByte(name, '.'); i > 0 && len(name)-i <= 16 {
			ext = name[i:]
		}
		cut := maxOriginalName - len(ext)
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut] + ext
	}
	name = strings.TrimLeft(strings.TrimSpace(name), ". ")
	name = strings.TrimSpace(name)
	if name == "" {
		return "file"
	}
	return name
}

// contentDisposition is the header for a download of a file called name:
// an ASCII filename for old clients and, when the name needs more, its
// UTF-8 form (RFC 6266, RFC 8187).
func contentDisposition(kind, name string) string {
	ascii := strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return '_'
		}
		return r
	}, name)
	v := kind + `; filename="` + ascii + `"`
	if ascii != name {
		v += "; filename*=UTF-8''" + extValue(name)
	}
	return v
}

// extValue percent-encodes every byte outside RFC 8187's attr-char.
func extValue(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// A signed download URL carries ?token=<expiry>.<signature>: the expiry
// in Unix seconds, and an HMAC-SHA256 over it and the file it opens
// (collection, record, field, name), so a token opens one file until it
// expires and cannot be moved to another.

var (
	errTokenForm    = errors.New("the token is not a download token")
	errTokenExpired = errors.New("the link has expired; ask for a new one")
	errTokenForged  = errors.New("the token does not open this file")
)

// fileToken signs a download of one file until exp.
func fileToken(key []byte, collection, id, field, name string, exp time.Time) string {
	e := strconv.FormatInt(exp.Unix(), 10)
	return e + "." + base64.RawURLEncoding.EncodeToString(fileMAC(key, collection, id, field, name, e))
}

func fileMAC(key []byte, collection, id, field, name, exp string) []byte {
	m := hmac.New(sha256.New, key)
	for _, part := range []string{"abe file v1", collection, strings.ToLower(id), field, name, exp} {
		m.Write([]byte(part))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// parseFileToken splits a token into its expiry and signature.
func parseFileToken(tok string) (exp string, sig []byte, err error) {
	exp, enc, ok := strings.Cut(tok, ".")
	if !ok || len(exp) == 0 || len(exp) > 12 || strings.TrimLeft(exp, "0123456789") != "" || exp[0] == '0' {
		return "", nil, errTokenForm
	}
	sig, err = base64.RawURLEncoding.Strict().DecodeString(enc)
	// The decoder skips \r and \n, so a signature with line breaks in it
	// would decode to the real one: only the canonical spelling is a token,
	// or one link would have many spellings that all open the file.
	if err != nil || len(sig) != sha256.Size || base64.RawURLEncoding.EncodeToString(sig) != enc {
		return "", nil, errTokenForm
	}
	return exp, sig, nil
}

// checkFileToken verifies a token for one file at time now.
func checkFileToken(key []byte, tok, collection, id, field, name string, now time.Time) (time.Time, error) {
	exp, sig, err := parseFileToken(tok)
	if err != nil {
		return time.Time{}, err
	}
	if !hmac.Equal(sig, fileMAC(key, collection, id, field, name, exp)) {
		return time.Time{}, errTokenForged
	}
	secs, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return time.Time{}, errTokenForm
	}
	at := time.Unix(secs, 0)
	if !now.Before(at) {
		return time.Time{}, errTokenExpired
	}
	return at, nil
}

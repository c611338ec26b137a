package engine

import (
	"errors"
	"mime"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/abe-stack/abe/schema"
)

var filenameCases = []struct{ in, want string }{
	{"photo.png", "photo.png"},
	{"../../etc/passwd", "passwd"},
	{`..\..\windows\system32\cmd.exe`, "cmd.exe"},
	{"/abs/path/a.txt", "a.txt"},
	{"dir/", "file"},
	{"", "file"},
	{"..", "file"},
	{".htaccess", "htaccess"},
	{"  spaced name.pdf  ", "spaced name.pdf"},
	{"tab\there\r\n.txt", "tabhere.txt"},
	{"nul\x00byte.png", "nulbyte.png"},
	{"invoice\u202efdp.exe", "invoicefdp.exe"}, // a right-to-left override would show "exe.pdf"
	{"zero\u200bwidth.txt", "zerowidth.txt"},
	{"Grüße résumé.pdf", "Grüße résumé.pdf"},
	{"bad\xffutf8.txt", "badutf8.txt"},
	{`quote".png`, `quote".png`},
	{"no\u00a0break.txt", "no break.txt"},
	{strings.Repeat("é", 200) + ".jpeg", strings.Repeat("é", 125) + ".jpeg"},
	{strings.Repeat("a", 300), strings.Repeat("a", 255)},
}

func TestSanitizeFilename(t *testing.T) {
	for _, tc := range filenameCases {
		if got := sanitizeFilename(tc.in); got != tc.want {
			t.Errorf("sanitizeFilename(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzSanitizeFilename: whatever a client sends, the kept name is short,
// valid, one path element, shows what it is, and survives the round trip
// through Content-Disposition unchanged.
func FuzzSanitizeFilename(f *testing.F) {
	for _, tc := range filenameCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := sanitizeFilename(in)
		if got == "" || len(got) > maxOriginalName || !utf8.ValidString(got) || strings.ContainsAny(got, `/\`) ||
			strings.HasPrefix(got, ".") || got != strings.TrimSpace(got) {
			t.Fatalf("sanitizeFilename(%q) = %q", in, got)
		}
		for _, r := range got {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				t.Fatalf("sanitizeFilename(%q) keeps %U", in, r)
			}
		}
		if again := sanitizeFilename(got); again != got {
			t.Fatalf("not stable: %q then %q", got, again)
		}
		for _, kind := range []string{"inline", "attachment"} {
			cd := contentDisposition(kind, got)
			if strings.ContainsAny(cd, "\r\n\x00") {
				t.Fatalf("header breaks: %q", cd)
			}
			k, params, err := mime.ParseMediaType(cd)
			if err != nil || k != kind || params["filename"] != got {
				t.Fatalf("contentDisposition(%q) = %q reads back %q %v %v", got, cd, k, params, err)
			}
		}
	})
}

func TestFileToken(t *testing.T) {
	key := deriveFileKey(strings.Repeat("k", 40))
	now := time.Unix(1_800_000_000, 0)
	id := "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	name := newFileName()
	tok := fileToken(key, "albums", id, "cover", name, now.Add(time.Minute))
	if _, err := checkFileToken(key, tok, "albums", strings.ToUpper(id), "cover", name, now); err != nil {
		t.Fatalf("a fresh token: %v", err)
	}
	for _, tc := range []struct {
		what                             string
		key                              []byte
		tok, collection, id, field, name string
		at                               time.Time
		want                             error
	}{
		{"expired", key, tok, "albums", id, "cover", name, now.Add(time.Minute), errTokenExpired},
		{"another key", deriveFileKey(strings.Repeat("x", 40)), tok, "albums", id, "cover", name, now, errTokenForged},
		{"another collection", key, tok, "pages", id, "cover", name, now, errTokenForged},
		{"another record", key, tok, "albums", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c", "cover", name, now, errTokenForged},
		{"another field", key, tok, "albums", id, "photos", name, now, errTokenForged},
		{"another file", key, tok, "albums", id, "cover", newFileName(), now, errTokenForged},
		{"a later expiry", key, "1900000000" + tok[strings.IndexByte(tok, '.'):], "albums", id, "cover", name, now, errTokenForged},
		{"no signature", key, tok[:strings.IndexByte(tok, '.')+1], "albums", id, "cover", name, now, errTokenForm},
		{"no dot", key, strings.Replace(tok, ".", "", 1), "albums", id, "cover", name, now, errTokenForm},
		{"a line break", key, tok[:20] + "\r\n" + tok[20:], "albums", id, "cover", name, now, errTokenForm},
		{"padded", key, tok + "=", "albums", id, "cover", name, now, errTokenForm},
		{"leading zero", key, "0" + tok, "albums", id, "cover", name, now, errTokenForm},
		{"negative", key, "-" + tok, "albums", id, "cover", name, now, errTokenForm},
	} {
		if _, err := checkFileToken(tc.key, tc.tok, tc.collection, tc.id, tc.field, tc.name, tc.at); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.what, err, tc.want)
		}
	}
}

// FuzzFileToken: the parser never panics, and only what fileToken made
// for this very file verifies.
func FuzzFileToken(f *testing.F) {
	key := deriveFileKey(strings.Repeat("k", 40))
	now := time.Unix(1_800_000_000, 0)
	good := fileToken(key, "c", "id", "f", "n", now.Add(time.Hour))
	for _, s := range []string{good, "", ".", "1.", "1800003600.", good + "A", "99999999999999999999." + good[11:], "1e9.abc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		exp, sig, err := parseFileToken(tok)
		if err == nil && (len(sig) != 32 || exp == "" || exp[0] == '0') {
			t.Fatalf("parsed %q into %q %x", tok, exp, sig)
		}
		if _, err := checkFileToken(key, tok, "c", "id", "f", "n", now); err == nil && tok != good {
			t.Fatalf("a token that fileToken did not make verifies: %q", tok)
		}
	})
}

func TestFileNames(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		n := newFileName()
		if !isFileName(n) || seen[n] {
			t.Fatalf("%q", n)
		}
		seen[n] = true
	}
	for _, s := range []string{"", "url", strings.Repeat("a", 25), strings.Repeat("A", 26), strings.Repeat("a", 25) + "1", "../" + strings.Repeat("a", 23)} {
		if isFileName(s) {
			t.Errorf("%q passes as a file name", s)
		}
	}
}

func TestAccepts(t *testing.T) {
	f := &schema.Field{Type: schema.File, MIMETypes: []string{"image/png", "text/*"}}
	for ct, want := range map[string]bool{
		"image/png": true, "text/plain; charset=utf-8": true, "text/html; charset=utf-8": true,
		"image/jpeg": false, "application/pdf": false, "textual/x": false, "": false,
	} {
		if got := accepts(f, ct); got != want {
			t.Errorf("accepts(%q) = %v", ct, got)
		}
	}
	if !accepts(&schema.Field{Type: schema.File}, "application/octet-stream") {
		t.Error("a field without mime_types takes anything")
	}
}

// TestFileValuesAreNotWritten: JSON writes may keep or remove file names,
// never add one.
func TestFileValuesAreNotWritten(t *testing.T) {
	co := exampleColls(t)["projects"]
	before := Record{"logo": "aaaaaaaaaaaaaaaaaaaaaaaaaa"}
	for _, tc := range []struct {
		vals, before Record
		uploading    string
		ok           bool
	}{
		{Record{"logo": "aaaaaaaaaaaaaaaaaaaaaaaaaa"}, before, "", true},
		{Record{"logo": nil}, before, "", true},
		{Record{"name": "x"}, nil, "", true},
		{Record{"logo": "bbbbbbbbbbbbbbbbbbbbbbbbbb"}, before, "", false},
		{Record{"logo": "bbbbbbbbbbbbbbbbbbbbbbbbbb"}, before, "logo", true},
		{Record{"logo": "aaaaaaaaaaaaaaaaaaaaaaaaaa"}, nil, "", false},
	} {
		err := co.checkFileValues(tc.vals, tc.before, tc.uploading)
		if (err == nil) != tc.ok {
			t.Errorf("%v over %v: %v", tc.vals, tc.before, err)
		}
	}
}

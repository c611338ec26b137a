package storage_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"go.uber.org/goleak"

	"github.com/abe-stack/abe/internal/storage"
	"github.com/abe-stack/abe/internal/storage/s3test"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// backend is one implementation under test, with a way to look behind
// its API at what it really stored.
type backend struct {
	name string
	open func(t *testing.T) (storage.Backend, func(t *testing.T) []string)
}

func backends() []backend {
	return []backend{
		{"local", func(t *testing.T) (storage.Backend, func(t *testing.T) []string) {
			dir := t.TempDir()
			l, err := storage.NewLocal(dir)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return l, func(t *testing.T) []string { return filesUnder(t, dir) }
		}},
		{"s3", func(t *testing.T) (storage.Backend, func(t *testing.T) []string) {
			srv := s3test.Start(t)
			s, err := storage.NewS3(srv.Config)
			if err != nil {
				t.Fatal(err)
			}
			return s, func(t *testing.T) []string {
				keys := srv.Keys(t)
				ups, err := (&minio.Core{Client: s.Client()}).ListMultipartUploads(context.Background(), s3test.Bucket, "", "", "", "", 100)
				// gofakes3 answers NoSuchUpload for a bucket that never had one.
				if err != nil && minio.ToErrorResponse(err).Code != minio.NoSuchUpload {
					t.Fatal(err)
				}
				for _, up := range ups.Uploads {
					keys = append(keys, "incomplete upload: "+up.Key)
				}
				return keys
			}
		}},
	}
}

// filesUnder lists every file under dir, hidden ones included.
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func put(t *testing.T, s storage.Storage, key, body string, opts *storage.PutOptions) storage.Info {
	t.Helper()
	in, err := s.Put(context.Background(), key, strings.NewReader(body), opts)
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return in
}

func read(t *testing.T, s storage.Storage, key string) (string, storage.Info) {
	t.Helper()
	rc, in, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), in
}

// TestConformance runs every behaviour the engine relies on against each
// backend: local disk and a real S3 API server.
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range conformanceCases {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					s, stored := b.open(t)
					tc.run(t, s, stored)
				})
			}
		})
	}
}

var conformanceCases = []struct {
	name string
	run  func(t *testing.T, s storage.Backend, stored func(*testing.T) []string)
}{
	{"round trip with type and metadata", func(t *testing.T, s storage.Backend, _ func(*testing.T) []string) {
		before := time.Now().Add(-time.Minute)
		in := put(t, s, "rec/one.txt", "hello", &storage.PutOptions{ContentType: "text/plain; charset=utf-8",
			Metadata: map[string]string{"filename": "Grüße \"quoted\"/résumé.txt", "by": "ann"}})
		if in.Size != 5 || in.Key != "rec/one.txt" {
			t.Errorf("put info: %+v", in)
		}
		body, got := read(t, s, "rec/one.txt")
		if body != "hello" || got.Size != 5 || got.ContentType != "text/plain; charset=utf-8" || got.ModTime.Before(before) {
			t.Errorf("get: %q %+v", body, got)
		}
		if got.Metadata["filename"] != "Grüße \"quoted\"/résumé.txt" || got.Metadata["by"] != "ann" {
			t.Errorf("metadata: %v", got.Metadata)
		}
		st, err := s.Stat(context.Background(), "rec/one.txt")
		if err != nil || st.Size != 5 || st.Metadata["filename"] != got.Metadata["filename"] {
			t.Errorf("stat: %+v %v", st, err)
		}
	}},
	{"default type and empty file", func(t *testing.T, s storage.Backend, _ func(*testing.T) []string) {
		put(t, s, "empty", "", nil)
		body, in := read(t, s, "empty")
		if body != "" || in.Size != 0 || in.ContentType != storage.DefaultContentType {
			t.Errorf("%q %+v", body, in)
		}
	}},
	{"replace", func(t *testing.T, s storage.Backend, stored func(*testing.T) []string) {
		put(t, s, "a/b/c", "first", nil)
		put(t, s, "a/b/c", "second, longer", &storage.PutOptions{ContentType: "text/plain"})
		if body, in := read(t, s, "a/b/c"); body != "second, longer" || in.ContentType != "text/plain" {
			t.Errorf("%q %+v", body, in)
		}
	}},
	{"missing", func(t *testing.T, s storage.Backend, _ func(*testing.T) []string) {
		ctx := context.Background()
		if _, _, err := s.Get(ctx, "nope/x"); !errors.Is(err, storage.ErrNotExist) {
			t.Errorf("get: %v", err)
		}
		if _, err := s.Stat(ctx, "nope"); !errors.Is(err, storage.ErrNotExist) {
			t.Errorf("stat: %v", err)
		}
		if err := s.Delete(ctx, "nope/x"); err != nil {
			t.Errorf("deleting what is not there: %v", err)
		}
		// A prefix of keys is not a file.
		put(t, s, "dir/file", "x", nil)
		if _, _, err := s.Get(ctx, "dir"); !errors.Is(err, storage.ErrNotExist) {
			t.Errorf("get of a prefix: %v", err)
		}
	}},
	{"delete", func(t *testing.T, s storage.Backend, stored func(*testing.T) []string) {
		ctx := context.Background()
		put(t, s, "r1/f1", "one", &storage.PutOptions{Metadata: map[string]string{"filename": "a"}})
		put(t, s, "r1/f2", "two", nil)
		if err := s.Delete(ctx, "r1/f1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stat(ctx, "r1/f1"); !errors.Is(err, storage.ErrNotExist) {
			t.Errorf("deleted file: %v", err)
		}
		if body, _ := read(t, s, "r1/f2"); body != "two" {
			t.Errorf("neighbour: %q", body)
		}
		if err := s.Delete(ctx, "r1/f2"); err != nil {
			t.Fatal(err)
		}
		if left := stored(t); len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
	}},
	{"too large stores nothing", func(t *testing.T, s storage.Backend, stored func(*testing.T) []string) {
		ctx := context.Background()
		for _, size := range []int{11, 3 << 20} { // read ahead whole, and streamed in parts
			_, err := s.Put(ctx, "big/x", bytes.NewReader(make([]byte, size)), &storage.PutOptions{MaxSize: 10})
			if !errors.Is(err, storage.ErrTooLarge) {
				t.Errorf("%d bytes: %v", size, err)
			}
			_, err = s.Put(ctx, "big/y", bytes.NewReader(make([]byte, size)), &storage.PutOptions{MaxSize: int64(size) - 1})
			if !errors.Is(err, storage.ErrTooLarge) {
				t.Errorf("%d bytes, one over: %v", size, err)
			}
		}
		if left := stored(t); len(left) != 0 {
			t.Errorf("stored: %v", left)
		}
		// Exactly the limit fits.
		put(t, s, "big/z", "0123456789", &storage.PutOptions{MaxSize: 10})
	}},
	{"large file streams in parts", func(t *testing.T, s storage.Backend, _ func(*testing.T) []string) {
		data := make([]byte, 17<<20+123) // more than one S3 part
		rand.Read(data)
		// A reader that is only an io.Reader: no size to peek at.
		in, err := s.Put(context.Background(), "large", io.MultiReader(bytes.NewReader(data)), &storage.PutOptions{MaxSize: int64(len(data))})
		if err != nil {
			t.Fatal(err)
		}
		if in.Size != int64(len(data)) {
			t.Errorf("size %d", in.Size)
		}
		body, _ := read(t, s, "large")
		if body != string(data) {
			t.Error("content differs")
		}
	}},
	{"seek for ranges", func(t *testing.T, s storage.Backend, _ func(*testing.T) []string) {
		put(t, s, "seek", "0123456789", nil)
		rc, _, err := s.Get(context.Background(), "seek")
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		rs, ok := rc.(io.ReadSeeker)
		if !ok {
			t.Fatalf("%T is no io.Seeker", rc)
		}
		if _, err := rs.Seek(6, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 3)
		if _, err := io.ReadFull(rs, b); err != nil || string(b) != "678" {
			t.Errorf("%q %v", b, err)
		}
		if n, err := rs.Seek(0, io.SeekEnd); err != nil || n != 10 {
			t.Errorf("end: %d %v", n, err)
		}
	}},
	{"invalid keys", func(t *testing.T, s storage.Backend, stored func(*testing.T) []string) {
		ctx := context.Background()
		for _, key := range invalidKeys {
			if _, err := s.Put(ctx, key, strings.NewReader("x"), nil); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("put %q: %v", key, err)
			}
			if _, _, err := s.Get(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("get %q: %v", key, err)
			}
			if _, err := s.Stat(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("stat %q: %v", key, err)
			}
			if err := s.Delete(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("delete %q: %v", key, err)
			}
		}
		if left := stored(t); len(left) != 0 {
			t.Errorf("stored: %v", left)
		}
	}},
	{"concurrent writers never mix", func(t *testing.T, s storage.Backend, _ func(*testing.T) []string) {
		var wg sync.WaitGroup
		bodies := map[string]bool{}
		for i := range 6 {
			body := strings.Repeat(fmt.Sprint(i), 64<<10)
			bodies[body] = true
			wg.Go(func() {
				if _, err := s.Put(context.Background(), "race/key", strings.NewReader(body), nil); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if body, _ := read(t, s, "race/key"); !bodies[body] {
			t.Errorf("a mix of writes: %d bytes starting %q", len(body), body[:8])
		}
	}},
	{"cancelled upload stores nothing", func(t *testing.T, s storage.Backend, stored func(*testing.T) []string) {
		ctx, cancel := context.WithCancel(context.Background())
		pr, pw := io.Pipe()
		go func() {
			pw.Write(make([]byte, 2<<20)) //nolint:errcheck // the reader may stop
			cancel()
			pw.CloseWithError(context.Canceled)
		}()
		if _, err := s.Put(ctx, "gone/x", pr, nil); err == nil {
			t.Fatal("a cancelled upload succeeded")
		}
		if left := stored(t); len(left) != 0 {
			t.Errorf("stored: %v", left)
		}
	}},
	{"check", func(t *testing.T, s storage.Backend, stored func(*testing.T) []string) {
		if err := s.Check(context.Background()); err != nil {
			t.Fatal(err)
		}
		if left := stored(t); len(left) != 0 {
			t.Errorf("the check left %v", left)
		}
	}},
}

var invalidKeys = []string{
	"", "..", ".", "../x", "a/../../x", "a/..", "/etc/passwd", "a//b", "a/", "a\\b", "..\\x", "a\x00b", ".hidden",
	"rec/.one.meta", "a b", "a/b?c", "ü", strings.Repeat("a", 256), strings.Repeat("a/", 600) + "a", "C:/x", "a\nb",
}

func TestLocalRefusesSymlinksOutOfTheRoot(t *testing.T) {
	t.Parallel()
	root, outside := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	l, err := storage.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	if _, err := l.Put(ctx, "evil/planted", strings.NewReader("x"), nil); err == nil {
		t.Error("wrote through a symlink out of the root")
	}
	if _, err := l.Put(ctx, "evil/secret", strings.NewReader("overwritten"), nil); err == nil {
		t.Error("overwrote through a symlink out of the root")
	}
	for _, key := range []string{"evil/secret", "link"} {
		if rc, _, err := l.Get(ctx, key); err == nil {
			rc.Close()
			t.Errorf("read %s out of the root", key)
		}
		if _, err := l.Stat(ctx, key); err == nil {
			t.Errorf("stat %s out of the root", key)
		}
	}
	if err := l.Delete(ctx, "evil/secret"); err == nil {
		t.Error("deleted through a symlink out of the root")
	}
	if files := filesUnder(t, outside); len(files) != 1 || files[0] != "secret" {
		t.Errorf("outside: %v", files)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "secret")); string(b) != "secret" {
		t.Errorf("the outside file changed: %q", b)
	}
}

// TestLocalReadersSeeWholeFiles holds a write open half-way and reads the
// key meanwhile: the old file, whole.
func TestLocalReadersSeeWholeFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l, err := storage.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	put(t, l, "k", "old content", nil)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := l.Put(context.Background(), "k", pr, nil)
		done <- err
	}()
	if _, err := pw.Write([]byte("new ")); err != nil {
		t.Fatal(err)
	}
	if body, _ := read(t, l, "k"); body != "old content" {
		t.Errorf("mid-write read: %q", body)
	}
	pw.Write([]byte("content")) //nolint:errcheck // read by Put
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if body, _ := read(t, l, "k"); body != "new content" {
		t.Errorf("after: %q", body)
	}
	if files := filesUnder(t, dir); len(files) != 2 { // k and .k.meta: no temporary file left
		t.Errorf("files: %v", files)
	}
}

func TestS3SignedURL(t *testing.T) {
	t.Parallel()
	srv := s3test.Start(t)
	cfg := srv.Config
	cfg.Prefix = "app1"
	s, err := storage.NewS3(cfg)
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "r/f", "signed body", &storage.PutOptions{ContentType: "image/png"})
	if keys := srv.Keys(t); len(keys) != 1 || keys[0] != "app1/r/f" {
		t.Errorf("the prefix is not used: %v", keys)
	}
	u, err := s.SignedURL(context.Background(), "r/f", time.Minute, &storage.URLOptions{ContentDisposition: `attachment; filename="a.png"`})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(u, "X-Amz-Signature=") || !strings.Contains(u, "X-Amz-Expires=60") {
		t.Errorf("not a presigned URL: %s", u)
	}
	client := &http.Client{Transport: cfg.Transport}
	res, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || string(b) != "signed body" || res.Header.Get("Content-Disposition") != `attachment; filename="a.png"` {
		t.Errorf("%d %q %v", res.StatusCode, b, res.Header)
	}
	if _, err := storage.NewS3(storage.S3Config{Endpoint: "s3.amazonaws.com", Bucket: "b"}); err == nil {
		t.Error("an endpoint without a scheme was accepted")
	}
	down := cfg
	down.Bucket = "missing"
	if s, err := storage.NewS3(down); err != nil || s.Check(context.Background()) == nil {
		t.Errorf("a missing bucket passed the check: %v", err)
	}
}

func TestCheckKey(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"a", "0190a1b2-0000-7000-8000-000000000000/abcdefghijklmnopqrstuvwxyz", "a/b/c.txt", "A_b-c.d", "x..y"} {
		if err := storage.CheckKey(key); err != nil {
			t.Errorf("%q: %v", key, err)
		}
	}
	for _, key := range invalidKeys {
		if err := storage.CheckKey(key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("%q accepted", key)
		}
	}
}

// FuzzCheckKey: an accepted key never leaves the root, whatever joins it.
func FuzzCheckKey(f *testing.F) {
	for _, k := range append(invalidKeys, "a/b", "x.y", "a-b_c") {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if storage.CheckKey(key) != nil {
			return
		}
		root := "/srv/files"
		joined := filepath.Join(root, key)
		if !strings.HasPrefix(joined, root+"/") || filepath.Clean(joined) != root+"/"+key {
			t.Fatalf("%q leaves or rewrites the root: %s", key, joined)
		}
		for seg := range strings.SplitSeq(key, "/") {
			if seg == "" || seg[0] == '.' {
				t.Fatalf("%q has a hidden or empty part", key)
			}
		}
	})
}

// TestLocalMakesItsDirectoryOnFirstWrite: a server that never stores a
// file never makes the directory, and reads of it find nothing.
func TestLocalMakesItsDirectoryOnFirstWrite(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "not", "yet")
	l, err := storage.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	if _, _, err := l.Get(ctx, "a/b"); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("get: %v", err)
	}
	if _, err := l.Stat(ctx, "a"); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("stat: %v", err)
	}
	if err := l.Delete(ctx, "a"); err != nil {
		t.Errorf("delete: %v", err)
	}
	if err := l.Check(ctx); err != nil {
		t.Errorf("check: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("made before the first write: %v", err)
	}
	put(t, l, "a/b", "x", nil)
	if body, _ := read(t, l, "a/b"); body != "x" {
		t.Errorf("%q", body)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := storage.NewLocal(file); err == nil {
		t.Error("a file was taken for the directory")
	}
	if _, err := storage.NewLocal(""); err == nil {
		t.Error("an empty root was accepted")
	}
}

// Package storage keeps files: on local disk (Local) or in a bucket of any
// S3-compatible service (S3). Both refuse keys that could name anything
// outside their root or bucket prefix, write atomically (a reader sees the
// old file or the new one, never a part), and enforce a size limit while
// the body streams in, so a file never has to fit in memory.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Errors every backend answers with, for callers to test with errors.Is.
var (
	// ErrNotExist: no file has this key.
	ErrNotExist = errors.New("storage: no such file")
	// ErrTooLarge: the body was longer than PutOptions.MaxSize; nothing
	// was stored.
	ErrTooLarge = errors.New("storage: file is larger than allowed")
	// ErrInvalidKey: the key is not one CheckKey accepts.
	ErrInvalidKey = errors.New("storage: invalid key")
)

// Storage keeps files under keys. Keys are checked by CheckKey.
type Storage interface {
	// Put stores what r yields under key, replacing any file there. It
	// streams: memory use does not grow with the size of the file.
	Put(ctx context.Context, key string, r io.Reader, opts *PutOptions) (Info, error)
	// Get opens a file. The reader is also an io.Seeker in both backends
	// here, so http.ServeContent can answer Range requests without
	// reading what it skips.
	Get(ctx context.Context, key string) (io.ReadCloser, Info, error)
	// Stat describes a file without opening it.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes a file; removing one that does not exist is not an
	// error, so deletes can be retried.
	Delete(ctx context.Context, key string) error
}

// Signer is a Storage that can hand out a URL reading a file directly from
// the backend, bypassing the server, for a limited time.
type Signer interface {
	SignedURL(ctx context.Context, key string, ttl time.Duration, opts *URLOptions) (string, error)
}

// URLOptions shape what a signed URL answers.
type URLOptions struct {
	// ContentDisposition is sent as the answer's Content-Disposition.
	ContentDisposition string
	// ContentType overrides the stored type.
	ContentType string
}

// PutOptions describe a file being stored.
type PutOptions struct {
	// ContentType is stored with the file; empty is
	// application/octet-stream.
	ContentType string
	// MaxSize refuses a body longer than this many bytes with ErrTooLarge
	// and stores nothing; 0 is no limit.
	MaxSize int64
	// Metadata is stored with the file and returned by Get and Stat.
	// Names are lower-case letters, digits and '-'; values any UTF-8 text.
	Metadata map[string]string
}

// Info describes a stored file.
type Info struct {
	Key         string
	Size        int64
	ModTime     time.Time
	ContentType string
	Metadata    map[string]string
}

// DefaultContentType is the type of files stored without one.
const DefaultContentType = "application/octet-stream"

// MaxKeyLen is the longest key accepted: S3's limit.
const MaxKeyLen = 1024

// maxSegmentLen is the longest part of a key between slashes: the longest
// file name most file systems allow.
const maxSegmentLen = 255

// CheckKey accepts keys that are paths of one or more segments separated
// by '/', each made of ASCII letters, digits, '.', '_' and '-', and not
// starting with '.'. That rules out every way to leave the root: "..",
// absolute paths, empty segments, backslashes, NUL and other control
// characters. Names starting with '.' are the local backend's own (its
// temporary and metadata files), so a key can never address them.
func CheckKey(key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return fmt.Errorf("%w: a key has 1 to %d bytes", ErrInvalidKey, MaxKeyLen)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || len(seg) > maxSegmentLen {
			return fmt.Errorf("%w %q: every part between slashes has 1 to %d bytes", ErrInvalidKey, key, maxSegmentLen)
		}
		if seg[0] == '.' {
			return fmt.Errorf("%w %q: a part may not start with '.'", ErrInvalidKey, key)
		}
		for i := 0; i < len(seg); i++ {
			if c := seg[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return fmt.Errorf("%w %q: only letters, digits, '.', '_', '-' and '/' are allowed", ErrInvalidKey, key)
			}
		}
	}
	return nil
}

func checkMetadata(md map[string]string) error {
	for k := range md {
		if k == "" || len(k) > 64 || strings.TrimLeft(k, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return fmt.Errorf("storage: metadata name %q: use lower-case letters, digits and '-'", k)
		}
	}
	return nil
}

// limitReader fails with ErrTooLarge once more than max bytes were read,
// so a backend stops at the first byte over the limit rather than after
// storing the whole body.
type limitReader struct {
	r        io.Reader
	max, n   int64
	exceeded bool
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.exceeded {
		return 0, ErrTooLarge
	}
	if l.max > 0 && l.n+int64(len(p)) > l.max+1 {
		// Reading one byte past the limit is enough to know.
		p = p[:l.max+1-l.n]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.max > 0 && l.n > l.max {
		l.exceeded = true
		return n, ErrTooLarge
	}
	return n, err
}

// Config selects and configures a backend.
type Config struct {
	// Backend is "local" or "s3".
	Backend string
	// Root is the local backend's directory.
	Root string
	S3   S3Config
}

// Backend is a Storage that holds resources (a directory handle,
// connections) and can tell whether it works.
type Backend interface {
	Storage
	// Check tells whether the backend can be reached, for readiness.
	Check(ctx context.Context) error
	Close() error
}

// New opens the backend cfg names.
func New(cfg Config) (Backend, error) {
	switch cfg.Backend {
	case "", "local":
		return NewLocal(cfg.Root)
	case "s3":
		return NewS3(cfg.S3)
	}
	return nil, fmt.Errorf("storage: unknown backend %q (local or s3)", cfg.Backend)
}

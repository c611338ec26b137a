package storage

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
)

// Local keeps files in a directory on disk, a file per key, with the
// content type and metadata in a small JSON file beside it (named
// .<name>.meta, which no key can name). Every access goes through an
// os.Root, so neither a key nor a symbolic link planted in the directory
// can reach a file outside it.
//
// A write goes to a temporary file in the same directory, is synced, and
// is renamed over the key, and the directory is synced: after a crash the
// key holds the old file or the new one, never a part of either.
type Local struct {
	dir string
	mu  sync.Mutex
	// root is opened on first use, so a server that never stores a file
	// never makes the directory.
	root *os.Root
}

var _ Backend = (*Local)(nil)

// errNoRoot: the directory does not exist yet, so neither does any file.
var errNoRoot = fmt.Errorf("%w: the storage directory does not exist yet", ErrNotExist)

// NewLocal uses the directory dir, made on the first write.
func NewLocal(dir string) (*Local, error) {
	if dir == "" {
		return nil, errors.New("storage: the local backend needs a root directory")
	}
	if st, err := os.Stat(dir); err == nil && !st.IsDir() {
		return nil, fmt.Errorf("storage: %s is not a directory", dir)
	}
	return &Local{dir: dir}, nil
}

// open returns the root, making the directory when create is set.
func (l *Local) open(create bool) (*os.Root, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.root != nil {
		return l.root, nil
	}
	if create {
		if err := os.MkdirAll(l.dir, 0o750); err != nil {
			return nil, fmt.Errorf("storage: create the root directory: %w", err)
		}
	}
	root, err := os.OpenRoot(l.dir)
	if errors.Is(err, fs.ErrNotExist) && !create {
		return nil, errNoRoot
	}
	if err != nil {
		return nil, fmt.Errorf("storage: open the root directory: %w", err)
	}
	l.root = root
	return root, nil
}

// sidecar is what the .meta file beside a file holds.
type sidecar struct {
	ContentType string            `json:"content_type"`
	Metadata    map[string]string `json:"metadata,omitempty"`
}

func metaName(key string) string {
	dir, name := path.Split(key)
	return dir + "." + name + ".meta"
}

// Put implements Storage.
func (l *Local) Put(ctx context.Context, key string, r io.Reader, opts *PutOptions) (Info, error) {
	if err := CheckKey(key); err != nil {
		return Info{}, err
	}
	if opts == nil {
		opts = &PutOptions{}
	}
	if err := checkMetadata(opts.Metadata); err != nil {
		return Info{}, err
	}
	meta, err := json.Marshal(sidecar{ContentType: cmp.Or(opts.ContentType, DefaultContentType), Metadata: opts.Metadata})
	if err != nil {
		return Info{}, fmt.Errorf("storage: encode metadata: %w", err)
	}
	root, err := l.open(true)
	if err != nil {
		return Info{}, err
	}
	lr := &limitReader{r: ctxReader{ctx: ctx, r: r}, max: opts.MaxSize}
	tmp, err := writeTemp(root, key, lr)
	if err != nil {
		if lr.exceeded {
			return Info{}, ErrTooLarge
		}
		return Info{}, fmt.Errorf("storage: write %s: %w", key, err)
	}
	metaTmp, err := writeTemp(root, metaName(key), strings.NewReader(string(meta)))
	if err != nil {
		root.Remove(tmp) //nolint:errcheck // best effort: a stray temporary file holds no key
		return Info{}, fmt.Errorf("storage: write metadata of %s: %w", key, err)
	}
	// The metadata goes first: a crash between the renames leaves a new
	// key without its file (which reads as missing), never a file without
	// its type.
	if err := root.Rename(metaTmp, metaName(key)); err != nil {
		root.Remove(tmp)     //nolint:errcheck // best effort
		root.Remove(metaTmp) //nolint:errcheck // best effort
		return Info{}, fmt.Errorf("storage: store metadata of %s: %w", key, err)
	}
	if err := root.Rename(tmp, key); err != nil {
		root.Remove(tmp) //nolint:errcheck // best effort
		return Info{}, fmt.Errorf("storage: store %s: %w", key, err)
	}
	if err := syncDir(root, path.Dir(key)); err != nil {
		return Info{}, fmt.Errorf("storage: sync the directory of %s: %w", key, err)
	}
	return l.Stat(ctx, key)
}

// writeTemp copies r into a new temporary file beside name, synced, and
// returns the temporary file's name. It makes the directory if needed;
// a Delete removing that directory at the same moment only costs a retry.
func writeTemp(root *os.Root, name string, r io.Reader) (string, error) {
	dir, base := path.Split(name)
	var suffix [8]byte
	rand.Read(suffix[:])
	tmp := dir + "." + strings.TrimPrefix(base, ".") + ".tmp-" + hex.EncodeToString(suffix[:])
	var f *os.File
	var err error
	for range 3 {
		if dir != "" {
			if err = root.MkdirAll(strings.TrimSuffix(dir, "/"), 0o750); err != nil {
				return "", err
			}
		}
		f, err = root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return "", err
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		root.Remove(tmp) //nolint:errcheck // best effort: nothing refers to it
		return "", err
	}
	return tmp, nil
}

// syncDir makes a rename in dir durable.
func syncDir(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Get implements Storage. The reader is an *os.File.
func (l *Local) Get(_ context.Context, key string) (io.ReadCloser, Info, error) {
	if err := CheckKey(key); err != nil {
		return nil, Info{}, err
	}
	root, err := l.open(false)
	if err != nil {
		return nil, Info{}, err
	}
	f, err := root.Open(key)
	if err != nil {
		return nil, Info{}, notExist(key, err)
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close() //nolint:errcheck // read-only
		if err != nil {
			return nil, Info{}, fmt.Errorf("storage: stat %s: %w", key, err)
		}
		return nil, Info{}, fmt.Errorf("%w: %s", ErrNotExist, key)
	}
	return f, info(root, key, st), nil
}

// Stat implements Storage.
func (l *Local) Stat(_ context.Context, key string) (Info, error) {
	if err := CheckKey(key); err != nil {
		return Info{}, err
	}
	root, err := l.open(false)
	if err != nil {
		return Info{}, err
	}
	st, err := root.Stat(key)
	if err != nil {
		return Info{}, notExist(key, err)
	}
	if !st.Mode().IsRegular() {
		return Info{}, fmt.Errorf("%w: %s", ErrNotExist, key)
	}
	return info(root, key, st), nil
}

func info(root *os.Root, key string, st fs.FileInfo) Info {
	in := Info{Key: key, Size: st.Size(), ModTime: st.ModTime(), ContentType: DefaultContentType}
	if b, err := root.ReadFile(metaName(key)); err == nil {
		var m sidecar
		if json.Unmarshal(b, &m) == nil {
			in.ContentType = cmp.Or(m.ContentType, DefaultContentType)
			in.Metadata = m.Metadata
		}
	}
	return in
}

func notExist(key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotExist, key)
	}
	return fmt.Errorf("storage: open %s: %w", key, err)
}

// Delete implements Storage. Directories left empty are removed, up to
// the root, so deleted records leave no trace.
func (l *Local) Delete(_ context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	root, err := l.open(false)
	if errors.Is(err, errNoRoot) {
		return nil
	}
	if err != nil {
		return err
	}
	st, err := root.Lstat(key)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("storage: delete %s: %w", key, err)
	case st.IsDir():
		// A key that is a directory of other keys is no file.
		return nil
	default:
		if err := root.Remove(key); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("storage: delete %s: %w", key, err)
		}
	}
	if err := root.Remove(metaName(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("storage: delete the metadata of %s: %w", key, err)
	}
	for dir := path.Dir(key); dir != "."; dir = path.Dir(dir) {
		if root.Remove(dir) != nil {
			break // not empty, or gone
		}
	}
	return nil
}

// Check implements Backend: the directory must take a new file. Of one
// not made yet, the nearest existing parent must be a directory.
func (l *Local) Check(context.Context) error {
	root, err := l.open(false)
	if errors.Is(err, errNoRoot) {
		dir := l.dir
		for {
			st, err := os.Stat(dir)
			if err == nil {
				if !st.IsDir() {
					return fmt.Errorf("storage: cannot make %s: %s is not a directory", l.dir, dir)
				}
				return nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				return fmt.Errorf("storage: cannot make %s", l.dir)
			}
			dir = parent
		}
	}
	if err != nil {
		return err
	}
	tmp, err := writeTemp(root, ".check", strings.NewReader("ok"))
	if err != nil {
		return fmt.Errorf("storage: %s is not writable: %w", l.dir, err)
	}
	return root.Remove(tmp)
}

// Close releases the directory.
func (l *Local) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.root == nil {
		return nil
	}
	err := l.root.Close()
	l.root = nil
	return err
}

// ctxReader stops reading once ctx is done, so an abandoned upload stops
// writing.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

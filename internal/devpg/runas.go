package devpg

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// fallbackUser is created when abe runs as root and the system has no
// postgres user, because PostgreSQL refuses to run as root.
const fallbackUser = "abe-postgres"

// account is the unprivileged OS user initdb and postgres run as when abe
// runs as root.
type account struct {
	name     string
	uid, gid uint32
}

// ensureAccount returns the system user postgres if it exists, else
// fallbackUser, creating it when needed.
func ensureAccount(ctx context.Context) (*account, error) {
	for _, name := range []string{"postgres", fallbackUser} {
		a, err := lookupAccount(name)
		if err == nil {
			return a, nil
		}
		if !errors.As(err, new(user.UnknownUserError)) {
			return nil, err
		}
	}
	createErr := createSystemUser(ctx, fallbackUser)
	// Look up even after a failure: another abe may have created the user
	// concurrently, which makes our useradd fail with "already exists".
	a, err := lookupAccount(fallbackUser)
	if err == nil {
		return a, nil
	}
	if createErr == nil {
		createErr = err
	}
	return nil, fmt.Errorf("PostgreSQL refuses to run as root and this system has no postgres user; creating user %s failed: %w "+
		"(create a system user named postgres, run abe as a non-root user, or set DATABASE_URL to use an existing server)", fallbackUser, createErr)
}

func lookupAccount(name string) (*account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s has a non-numeric uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s has a non-numeric gid %q: %w", name, u.Gid, err)
	}
	return &account{name: name, uid: uint32(uid), gid: uint32(gid)}, nil
}

func createSystemUser(ctx context.Context, name string) error {
	if path, ok := findTool("useradd"); ok {
		return runTool(ctx, path, "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", name)
	}
	path, ok := findTool("adduser")
	if !ok {
		return errors.New("neither useradd nor adduser is installed")
	}
	// Debian's adduser takes long options; BusyBox's (Alpine) only short
	// ones, and creates a same-named group by itself.
	debErr := runTool(ctx, path, "--system", "--group", "--no-create-home", "--shell", "/usr/sbin/nologin", name)
	if debErr == nil {
		return nil
	}
	if err := runTool(ctx, path, "-S", "-D", "-H", "-s", "/sbin/nologin", name); err != nil {
		return fmt.Errorf("%w; %w", debErr, err)
	}
	return nil
}

// findTool looks in PATH and then in the sbin directories, which a root
// shell started with a minimal environment may lack in PATH.
func findTool(name string) (string, bool) {
	if path, err := exec.LookPath(name); err == nil {
		return path, true
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		path := filepath.Join(dir, name)
		if isExecutable(path) {
			return path, true
		}
	}
	return "", false
}

func runTool(ctx context.Context, path string, args ...string) error {
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			return fmt.Errorf("%s %s: %w", path, strings.Join(args, " "), err)
		}
		return fmt.Errorf("%s %s: %w: %s", path, strings.Join(args, " "), err, msg)
	}
	return nil
}

// chownTree hands dir and everything below it to a. Entries that already
// belong to a are left alone, so that restarting a large data directory
// costs a walk but no writes.
func chownTree(dir string, a *account) error {
	// WalkDir does not descend into a root that is a symlink.
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("handing %s to user %s: %w", dir, a.name, err)
	}
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("handing %s to user %s: %w", dir, a.name, err)
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("handing %s to user %s: %w", dir, a.name, err)
		}
		if uid, gid, ok := fileOwner(fi); ok && uid == a.uid && gid == a.gid {
			return nil
		}
		if err := os.Lchown(path, int(a.uid), int(a.gid)); err != nil {
			return fmt.Errorf("handing %s to user %s: %w", dir, a.name, err)
		}
		return nil
	})
}

// checkTraversable reports an error naming the first ancestor of dir that a
// cannot enter. Without this check postgres fails with a terse "Permission
// denied" about a path the user never typed.
func checkTraversable(dir string, a *account) error {
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("resolving %s: %w", dir, err)
	}
	// The server opens dir by the path it is given, so the ancestors of both
	// that path and the one it resolves to must be reachable.
	if err := checkAncestors(filepath.Clean(dir), a); err != nil || resolved == filepath.Clean(dir) {
		return err
	}
	return checkAncestors(resolved, a)
}

func checkAncestors(dir string, a *account) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("checking access to %s: %w", p, err)
		}
		uid, gid, ok := fileOwner(fi)
		if ok {
			if bit, class := traverseBit(uid, gid, a); fi.Mode().Perm()&bit == 0 {
				return fmt.Errorf("user %s, which runs PostgreSQL because abe runs as root, cannot enter %s (mode %#o): "+
					"run `chmod %s+x %s`, put the data directory elsewhere, or set DATABASE_URL to use an existing server",
					a.name, p, uint32(fi.Mode().Perm()), class, p)
			}
		}
		if parent := filepath.Dir(p); parent == p {
			return nil
		}
	}
}

// traverseBit returns the permission bit that governs whether a may enter a
// directory owned by uid:gid. Like the kernel, it looks only at the most
// specific class: the group bits do not apply to the owner. Supplementary
// groups are ignored because the server runs without them.
func traverseBit(uid, gid uint32, a *account) (fs.FileMode, string) {
	switch {
	case uid == a.uid:
		return 0o100, "u"
	case gid == a.gid:
		return 0o010, "g"
	default:
		return 0o001, "o"
	}
}

func lookupUID(uid string) (string, error) {
	u, err := user.LookupId(uid)
	if err != nil {
		return "", err
	}
	return u.Username, nil
}

package devpg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrNoBinaries is returned (wrapped) by FindBinaries and Start when no
// directory holds both initdb and postgres.
var ErrNoBinaries = errors.New("PostgreSQL server binaries (initdb, postgres) not found in PATH or /usr/lib/postgresql/*/bin: " +
	"install them (Debian/Ubuntu: apt-get install postgresql; Fedora: dnf install postgresql-server; macOS: brew install postgresql@16), " +
	"or set DATABASE_URL to use an existing server")

// defaultSearchRoots lists the glob patterns tried after PATH. Distributions
// keep the server binaries out of PATH (Debian puts them in a versioned
// directory and only wraps the client tools), so PATH alone is not enough.
func defaultSearchRoots() []string {
	return []string{
		"/usr/lib/postgresql/*/bin",         // Debian, Ubuntu
		"/usr/pgsql-*/bin",                  // PGDG packages for RHEL, Fedora
		"/usr/local/pgsql/bin",              // built from source
		"/opt/homebrew/opt/postgresql*/bin", // Homebrew, Apple silicon
		"/usr/local/opt/postgresql*/bin",    // Homebrew, Intel
		"/Applications/Postgres.app/Contents/Versions/*/bin",
	}
}

// FindBinaries returns the directory holding initdb and postgres. It searches
// PATH first, then the highest version under /usr/lib/postgresql/*/bin and the
// other usual install locations (/usr/pgsql-*/bin, /usr/local/pgsql/bin,
// Homebrew's /opt/homebrew/opt/postgresql*/bin and
// /usr/local/opt/postgresql*/bin). The error wraps ErrNoBinaries when nothing
// is found.
func FindBinaries() (string, error) {
	return findBinaries(os.Getenv("PATH"), defaultSearchRoots())
}

// findBinaries is FindBinaries with the search path and glob roots as
// parameters, so that tests can point it at empty directories.
func findBinaries(pathList string, roots []string) (string, error) {
	for _, dir := range filepath.SplitList(pathList) {
		if dir == "" {
			// An empty PATH element means the current directory; a server
			// binary picked up from there would be a surprise, not a feature.
			continue
		}
		if hasServerBinaries(dir) {
			return dir, nil
		}
	}

	type candidate struct {
		dir      string
		version  []int
		priority int
	}
	var found []candidate
	for i, pattern := range roots {
		matches, err := filepath.Glob(pattern)
		if err != nil {
			return "", fmt.Errorf("searching %s: %w", pattern, err)
		}
		for _, dir := range matches {
			if hasServerBinaries(dir) {
				found = append(found, candidate{dir: dir, version: pathVersion(dir), priority: i})
			}
		}
	}
	if len(found) == 0 {
		return "", fmt.Errorf("%w (searched PATH=%q and %s)", ErrNoBinaries, pathList, strings.Join(roots, ", "))
	}
	slices.SortStableFunc(found, func(a, b candidate) int {
		if c := slices.Compare(b.version, a.version); c != 0 {
			return c
		}
		return a.priority - b.priority
	})
	return found[0].dir, nil
}

func hasServerBinaries(dir string) bool {
	return isExecutable(filepath.Join(dir, "initdb")) && isExecutable(filepath.Join(dir, "postgres"))
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// pathVersion extracts the numbers in a directory name such as
// /usr/lib/postgresql/15/bin or /opt/homebrew/opt/postgresql@16/bin, so that
// candidates can be ordered by version without running each of them.
func pathVersion(dir string) []int {
	var v []int
	for _, field := range strings.FieldsFunc(dir, func(r rune) bool { return r < '0' || r > '9' }) {
		n, err := strconv.Atoi(field)
		if err == nil {
			v = append(v, n)
		}
	}
	return v
}

// serverVersion returns the major version of the postgres binary in bin, in
// the form PG_VERSION uses ("15", or "9.6" before PostgreSQL 10).
func serverVersion(ctx context.Context, bin string) (string, error) {
	path := filepath.Join(bin, "postgres")
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("running %s --version: %w", path, err)
	}
	// "postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"
	fields := strings.Fields(string(out))
	if len(fields) < 3 {
		return "", fmt.Errorf("%s --version printed %q, which is not a PostgreSQL version", path, strings.TrimSpace(string(out)))
	}
	return majorVersion(fields[2]), nil
}

func majorVersion(full string) string {
	parts := strings.FieldsFunc(full, func(r rune) bool { return r < '0' || r > '9' })
	if len(parts) == 0 {
		return full
	}
	if n, err := strconv.Atoi(parts[0]); err == nil && n < 10 && len(parts) > 1 {
		return parts[0] + "." + parts[1]
	}
	return parts[0]
}

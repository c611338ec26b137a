//go:build !unix

package devpg

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"syscall"
	"time"
)

func platformSupported() error {
	return fmt.Errorf("running a local PostgreSQL server is not supported on %s: set DATABASE_URL to use an existing server", runtime.GOOS)
}

func procAttr(*account) *syscall.SysProcAttr           { return nil }
func signalPID(int, syscall.Signal) error              { return errors.ErrUnsupported }
func killTree(int)                                     {}
func processAlive(int) bool                            { return false }
func looksLikePostgres(int) bool                       { return false }
func fileOwner(fs.FileInfo) (uid, gid uint32, ok bool) { return 0, 0, false }
func lockFile(context.Context, string, time.Duration) (func(), error) {
	return nil, errors.ErrUnsupported
}

package benchkit

import (
	"os"
	"path/filepath"
	"testing"
)

func TestProcCPU(t *testing.T) {
	// The command name may hold spaces and parentheses; utime and stime
	// are the 14th and 15th fields.
	stat := "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 1 0 123 4096 100\n"
	file := filepath.Join(t.TempDir(), "stat")
	if err := os.WriteFile(file, []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := ProcCPU(file), 380*ClockTick; got != want {
		t.Errorf("ProcCPU = %s, want %s", got, want)
	}
	if got := ProcCPU(filepath.Join(t.TempDir(), "missing")); got != 0 {
		t.Errorf("ProcCPU of a missing file = %s, want 0", got)
	}
}

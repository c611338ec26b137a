package httpx

import (
	"testing"

	"github.com/abe-stack/abe/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

package webhooks

import (
	"strings"
	"testing"
	"time"

	"github.com/abe-stack/abe/schema"
)

// TestSignStandardWebhooksVector: the signature of the Standard Webhooks
// specification's own test vector, so that its libraries verify ours.
func TestSignStandardWebhooksVector(t *testing.T) {
	t.Parallel()
	key, err := decodeSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestDecodeSecret(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want string // the key; "" is an error
	}{
		{in: "a plain secret of some length", want: "a plain secret of some length"},
		{in: "short"},
		{in: "whsec_not base64!"},
		{in: "whsec_c2hvcnQ="}, // "short"
		{in: "whsec_MDEyMzQ1Njc4OWFiY2RlZg==", want: "0123456789abcdef"},
	} {
		key, err := decodeSecret(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%q: got key %q, want an error", tc.in, key)
		case tc.want != "" && (err != nil || string(key) != tc.want):
			t.Errorf("%q: got %q, %v; want %q", tc.in, key, err, tc.want)
		}
	}
}

// TestBackoff: the wait doubles per attempt from webhooks.backoff, within
// a tenth either way, and stops growing at the cap.
func TestBackoff(t *testing.T) {
	t.Parallel()
	s := &Service{cfg: Config{Settings: schema.Webhooks{Backoff: schema.Duration(10 * time.Second)}}}
	for attempt, base := range map[int]time.Duration{1: 10 * time.Second, 2: 20 * time.Second, 3: 40 * time.Second, 8: 1280 * time.Second, 30: schema.WebhookBackoffMax, 1000: schema.WebhookBackoffMax} {
		for range 20 {
			if d := s.backoff(attempt); d < base-base/10 || d > base+base/10 {
				t.Fatalf("attempt %d: waits %s, want %s give or take a tenth", attempt, d, base)
			}
		}
	}
}

func TestPrintableAndRedact(t *testing.T) {
	t.Parallel()
	if got := printable([]byte("line\r\nbreak\x00\xff")); got != "line  break ?" {
		t.Errorf("printable: %q", got)
	}
	if got := printable([]byte(strings.Repeat("é", 300))); len(got) > 203 || !strings.HasSuffix(got, "...") {
		t.Errorf("printable of a long answer: %d bytes", len(got))
	}
	if got := redact("https://u:p@hooks.example.com/in?token=t#f"); got != "https://hooks.example.com/in" {
		t.Errorf("redact: %q", got)
	}
}

package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// Headers of a delivery, as Standard Webhooks names them.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// secretPrefix marks a Standard Webhooks secret: base64 of the key bytes.
const secretPrefix = "whsec_"

// minSecretLen is the shortest key accepted: an HMAC-SHA256 key shorter
// than 16 bytes is guessable.
const minSecretLen = 16

// decodeSecret turns the environment's secret into the HMAC key: the
// bytes of a whsec_<base64> secret (what Standard Webhooks libraries
// take), else the secret's own bytes.
func decodeSecret(s string) ([]byte, error) {
	if b64, ok := strings.CutPrefix(s, secretPrefix); ok {
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, errors.New("a whsec_ secret must be followed by standard base64")
		}
		if len(key) < minSecretLen {
			return nil, errors.New("the secret's key is shorter than 16 bytes")
		}
		return key, nil
	}
	if len(s) < minSecretLen {
		return nil, errors.New("the secret is shorter than 16 characters; generate one with `openssl rand -base64 32`")
	}
	return []byte(s), nil
}

// Sign is the webhook-signature header of a delivery: "v1," and the
// base64 HMAC-SHA256, under key, of "<id>.<timestamp>.<body>".
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

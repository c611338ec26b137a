package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"

	"github.com/golang-jwt/jwt/v5"

	"github.com/abe-stack/abe/schema"
)

// signingKey is one key of the key set. Verification is pinned to its
// algorithm: a token whose header names another one is refused, which
// rules out "none" and algorithm confusion (an HMAC made with a public
// key).
type signingKey struct {
	id     string
	method jwt.SigningMethod
	sign   any // nil when the key only verifies
	verify any
	public crypto.PublicKey // asymmetric keys, for the JWKS
}

// KeySet signs access tokens with one key and verifies them with any key
// still configured, so keys can be rotated: add the new key first, keep the
// old one as public_key until its tokens have expired, then remove it.
type KeySet struct {
	signer *signingKey
	byID   map[string]*signingKey
}

// derive makes a key for one purpose from the auth secret, so the secret
// itself signs nothing and each use has a key of its own.
func derive(secret, purpose string) []byte {
	key, err := hkdf.Key(sha256.New, []byte(secret), nil, "abe "+purpose, 32)
	if err != nil {
		panic(err) // only for an impossible length
	}
	return key
}

// NewKeySet builds the keys of cfg: auth.keys when given, else an HS256
// key derived from auth.secret.
func NewKeySet(cfg schema.Auth) (*KeySet, error) {
	ks := &KeySet{byID: map[string]*signingKey{}}
	if len(cfg.Keys) == 0 {
		if len(cfg.Secret) < schema.MinSecretLen {
			return nil, fmt.Errorf("auth.secret must have at least %d characters", schema.MinSecretLen)
		}
		mac := hmac.New(sha256.New, []byte(cfg.Secret))
		mac.Write([]byte("abe key id"))
		k := &signingKey{id: "hs-" + hex.EncodeToString(mac.Sum(nil))[:12], method: jwt.SigningMethodHS256}
		k.sign = derive(cfg.Secret, "access token signing")
		k.verify = k.sign
		ks.byID[k.id], ks.signer = k, k
		return ks, nil
	}
	for _, c := range cfg.Keys {
		if _, err := schema.CheckSigningKey(c); err != nil {
			return nil, err
		}
		k := &signingKey{id: c.ID, method: jwt.GetSigningMethod(c.Algorithm)}
		switch {
		case c.Algorithm == "HS256":
			k.sign = []byte(c.Secret)
			k.verify = k.sign
		case c.PrivateKey != "":
			priv, err := schema.ParsePrivateKey(c.PrivateKey)
			if err != nil {
				return nil, fmt.Errorf("auth key %q: %w", c.ID, err)
			}
			k.sign, k.verify, k.public = priv, priv.Public(), priv.Public()
		default:
			pub, err := schema.ParsePublicKey(c.PublicKey)
			if err != nil {
				return nil, fmt.Errorf("auth key %q: %w", c.ID, err)
			}
			k.verify, k.public = pub, pub
		}
		ks.byID[k.id] = k
		if ks.signer == nil && k.sign != nil {
			ks.signer = k
		}
	}
	if ks.signer == nil {
		return nil, errors.New("auth.keys: no key can sign")
	}
	return ks, nil
}

// sign signs claims with the signing key, naming it in the kid header.
func (ks *KeySet) sign(claims jwt.Claims) (string, error) {
	t := jwt.NewWithClaims(ks.signer.method, claims)
	t.Header["kid"] = ks.signer.id
	return t.SignedString(ks.signer.sign)
}

var (
	errNoKID       = errors.New("the token names no key (kid)")
	errUnknownKey  = errors.New("the token was signed with a key this server does not have")
	errWrongMethod = errors.New("the token's algorithm does not match its key")
)

// keyfunc finds the verification key a token names and insists on that
// key's algorithm.
func (ks *KeySet) keyfunc(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, errNoKID
	}
	k := ks.byID[kid]
	if k == nil {
		return nil, errUnknownKey
	}
	if t.Method.Alg() != k.method.Alg() {
		return nil, errWrongMethod
	}
	return k.verify, nil
}

// JWK is one public key in a JSON Web Key Set (RFC 7517).
type JWK struct {
	KTY string `json:"kty"`
	KID string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

// JWKS returns the public keys, for clients that verify tokens themselves.
// HS256 keys are secret and never listed.
func (ks *KeySet) JWKS() []JWK {
	b64 := base64.RawURLEncoding
	out := []JWK{}
	for _, k := range ks.byID {
		j := JWK{KID: k.id, Alg: k.method.Alg(), Use: "sig"}
		switch p := k.public.(type) {
		case ed25519.PublicKey:
			j.KTY, j.Crv, j.X = "OKP", "Ed25519", b64.EncodeToString(p)
		case *ecdsa.PublicKey:
			pt, err := p.ECDH()
			if err != nil {
				continue
			}
			raw := pt.Bytes() // 0x04 || X || Y
			j.KTY, j.Crv, j.X, j.Y = "EC", "P-256", b64.EncodeToString(raw[1:33]), b64.EncodeToString(raw[33:])
		case *rsa.PublicKey:
			j.KTY, j.N, j.E = "RSA", b64.EncodeToString(p.N.Bytes()), b64.EncodeToString(big.NewInt(int64(p.E)).Bytes())
		default:
			continue
		}
		out = append(out, j)
	}
	return out
}

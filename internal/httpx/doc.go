// Package httpx holds domain-free HTTP middleware and helpers: request ids,
// structured request logs, panic recovery, problem+json errors (RFC 9457),
// client addresses behind trusted proxies, CORS, security headers, strict
// JSON request bodies and rate limits. Domain middleware, such as
// authentication, lives with its domain.
package httpx

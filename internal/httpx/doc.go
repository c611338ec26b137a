// Package httpx holds domain-free HTTP middleware and helpers: request ids,
// structured request logs, panic recovery and problem+json errors (RFC
// 9457). Domain middleware, such as authentication, lives with its domain.
package httpx

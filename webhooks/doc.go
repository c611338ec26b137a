// Package webhooks tells other services of record writes: for each
// webhook a collection declares in abe.yaml, a write hook of the engine
// queues a delivery job in the write's own transaction (so one exists if
// and only if the write commits), with the event's body sealed; a worker
// POSTs it, signed as Standard Webhooks sign (webhook-id,
// webhook-timestamp, webhook-signature), after every earlier delivery of
// the same record, retrying with exponential backoff until River discards
// it. Connections refuse private, loopback, link-local and unspecified
// addresses unless webhooks.allow lists them, checked on the address each
// connection dials; no redirect is followed.
package webhooks

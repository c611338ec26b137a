// Package engine serves the records of every collection: CRUD with
// version-checked writes, lists with filters, sorting, keyset pagination,
// projection and expansion, operations on lists and json values, batches
// in one transaction, the change log clients catch up from, and the files
// of file fields (uploads, downloads, signed URLs, clean-up). Every
// request is checked by the collection's rules (package rules). Its HTTP
// handlers are mounted by the app at /api/collections and /api/batch.
package engine

// Package schema is abe's declarative model. It loads abe.yaml (Load,
// Parse), checks it against an embedded JSON Schema and semantic rules,
// reporting every problem with its position (Diagnostics), and plans
// migrations: Desired builds the catalog a configuration asks for,
// ReadCatalog reads the live one, Diff plans the steps between them, and a
// Migrator applies a plan in one transaction under an advisory lock.
//
// schema imports no other abe package; components hand it their system
// migrations (Migration) to run before the collection steps.
package schema

// Package openapi describes the HTTP API of an abe configuration as an
// OpenAPI 3.1 document: the records endpoints of every collection, with
// JSON Schemas of its records and bodies made from its fields, the batch,
// auth, admin and health endpoints. The server publishes it at
// /api/openapi.json, and client generators read it.
package openapi

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/abe-stack/abe/schema"
)

// Version is the OpenAPI version the document follows.
const Version = "3.1.0"

// Options name the document and where the API is served.
type Options struct {
	// Title of the API; default "abe".
	Title string
	// Version of the API (info.version); default "dev".
	Version string
	// ServerURL is the base URL clients call; default the configuration's
	// server.public_url.
	ServerURL string
}

// Generate returns the OpenAPI document of cfg as indented JSON. The same
// configuration and options always give the same bytes.
func Generate(cfg *schema.Config, opts Options) ([]byte, error) {
	if cfg == nil {
		return nil, errors.New("openapi: no configuration")
	}
	g := &generator{cfg: cfg, schemas: obj(), responses: obj(), names: map[string]string{}}
	doc, err := g.document(opts)
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("openapi: encode the document: %w", err)
	}
	return buf.Bytes(), nil
}

// TypeName is the PascalCase name a collection's types take in the
// document and the SDK: todos is Todos, team_members TeamMembers.
func TypeName(collection string) string {
	var b strings.Builder
	for part := range strings.SplitSeq(collection, "_") {
		if part == "" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]))
		b.WriteString(part[1:])
	}
	return b.String()
}

// generator builds one document.
type generator struct {
	cfg       *schema.Config
	schemas   *object // components.schemas
	responses *object // components.responses
	// names maps each component schema name to what it describes, to
	// refuse two collections whose names give the same type name.
	names map[string]string
}

// addSchema registers a component schema under a name no other schema has.
func (g *generator) addSchema(name, owner string, s *object) error {
	if prev, ok := g.names[name]; ok {
		return fmt.Errorf("%s and %s both need the schema name %s; rename one of them", prev, owner, name)
	}
	g.names[name] = owner
	g.schemas.set(name, s)
	return nil
}

func (g *generator) document(opts Options) (*object, error) {
	title := cmp.Or(opts.Title, "abe")
	version := cmp.Or(opts.Version, "dev")
	server := cmp.Or(opts.ServerURL, g.cfg.Server.PublicURL)

	shared := sharedSchemas()
	for _, name := range shared.keys {
		if err := g.addSchema(name, "the built-in schema "+name, shared.vals[name].(*object)); err != nil {
			return nil, err
		}
	}
	for _, r := range errorResponses() {
		g.responses.set(r.name, r.response())
	}

	paths := obj()
	tags := []any{}
	for _, c := range g.cfg.Collections {
		if err := g.collection(paths, c); err != nil {
			return nil, err
		}
		tags = append(tags, obj("name", c.Name, "description", "Records of the "+c.Name+" collection."))
	}
	if err := g.batch(paths); err != nil {
		return nil, err
	}
	authPaths(paths)
	adminPaths(paths)
	healthPaths(paths)
	tags = append(tags,
		obj("name", "batch", "description", "Several writes in one transaction."),
		obj("name", "auth", "description", "Accounts, sessions and tokens."),
		obj("name", "admin", "description", "Account and role administration; each endpoint needs a permission."),
		obj("name", "health", "description", "Liveness and readiness probes."),
	)

	description := "The HTTP API of abe"
	if g.cfg.File != "" {
		// Only the base name: the directory differs between machines, and
		// the document must not.
		description += ", generated from " + filepath.Base(g.cfg.File)
	}
	description += ". Errors are RFC 9457 problem details (application/problem+json)."

	return obj(
		"openapi", Version,
		"info", obj("title", title, "version", version, "description", description),
		"servers", []any{obj("url", server)},
		"security", bearer(),
		"tags", tags,
		"paths", paths,
		"components", obj(
			"schemas", g.schemas,
			"responses", g.responses,
			"parameters", sharedParameters(),
			"headers", sharedHeaders(),
			"securitySchemes", obj("bearerAuth", obj(
				"type", "http",
				"scheme", "bearer",
				"bearerFormat", "JWT",
				"description", "The access_token of a token answer: Authorization: Bearer <access_token>.",
			)),
		),
	), nil
}

// bearer requires an access token: the document's default.
func bearer() []any { return []any{obj("bearerAuth", []any{})} }

// public overrides the default for operations anyone may call.
func public() []any { return []any{} }

// optionalBearer accepts a call with or without an access token.
func optionalBearer() []any { return []any{obj(), obj("bearerAuth", []any{})} }

// ref points at a component schema.
func ref(name string) *object { return obj("$ref", "#/components/schemas/"+name) }

// responseRef points at a component response.
func responseRef(name string) *object { return obj("$ref", "#/components/responses/"+name) }

// paramRef points at a component parameter.
func paramRef(name string) *object { return obj("$ref", "#/components/parameters/"+name) }

// headerRef points at a component header.
func headerRef(name string) *object { return obj("$ref", "#/components/headers/"+name) }

// operation starts an operation object; its members follow in the order
// readers expect: what it is, who may call it, what it takes, what it gives.
func operation(id, tag, summary string) *object {
	return obj("tags", []any{tag}, "summary", summary, "operationId", id)
}

// jsonBody is a required application/json request body.
func jsonBody(s any) *object {
	return obj("required", true, "content", obj("application/json", obj("schema", s)))
}

// jsonResponse is an application/json answer.
func jsonResponse(description string, s any) *object {
	return obj("description", description, "content", obj("application/json", obj("schema", s)))
}

// htmlResponse is a page for people rather than programs.
func htmlResponse(description string) *object {
	return obj("description", description, "content", obj("text/html", obj("schema", obj("type", "string"))))
}

// emptyResponse is an answer without a body.
func emptyResponse(description string) *object { return obj("description", description) }

// responses builds the responses of an operation: the given successes, then
// the shared problem answers of codes, which callers list in numeric order.
func responses(success *object, codes ...int) *object {
	for _, code := range codes {
		success.set(fmt.Sprint(code), responseRef(errorResponseName(code)))
	}
	return success
}

// queryParam is an optional query parameter.
func queryParam(name, description string, s *object) *object {
	return obj("name", name, "in", "query", "description", description, "schema", s)
}

// pathParam is a path parameter; path parameters are always required.
func pathParam(name, description string, s *object) *object {
	return obj("name", name, "in", "path", "required", true, "description", description, "schema", s)
}

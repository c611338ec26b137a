package auth

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/abe-stack/abe/schema"
)

// Role is a named set of permissions.
type Role struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Permissions []string `json:"permissions"`
	// Default roles are given to new accounts.
	Default bool `json:"default"`
	// Builtin roles are declared in abe.yaml; they cannot be changed or
	// deleted through the API.
	Builtin bool `json:"builtin"`
	// Source is where the role is declared: "config" (abe.yaml) or "api".
	Source string `json:"source"`
}

// maxCachedUsers bounds the per-user role cache.
const maxCachedUsers = 100_000

// roleCache keeps roles and users' roles in memory. Each request reads a
// user's roles from it, so a change applies to tokens already issued; the
// tables notify abe_roles on every change, and every node drops what
// changed, within the notification's delivery.
type roleCache struct {
	db *pgxpool.Pool

	mu    sync.RWMutex
	roles map[string]Role
	users map[string]*list.Element // user id -> element of lru
	lru   *list.List               // of userRoles, most recent first
	// gen counts invalidations, so a read that raced one is not cached.
	gen uint64

	// changed signals each applied notification, for tests.
	changed chan struct{}
}

type userRoles struct {
	id    string
	roles []string
}

func newRoleCache(db *pgxpool.Pool) *roleCache {
	return &roleCache{db: db, roles: map[string]Role{}, users: map[string]*list.Element{}, lru: list.New(), changed: make(chan struct{}, 16)}
}

// reload reads every role and forgets every user's roles.
func (c *roleCache) reload(ctx context.Context) error {
	rows, err := c.db.Query(ctx, `SELECT name, description, permissions, is_default, builtin FROM abe.roles`)
	if err != nil {
		return fmt.Errorf("load roles: %w", err)
	}
	roles, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Role, error) {
		var r Role
		err := row.Scan(&r.Name, &r.Description, &r.Permissions, &r.Default, &r.Builtin)
		r.Source = roleSource(r.Builtin)
		return r, err
	})
	if err != nil {
		return fmt.Errorf("load roles: %w", err)
	}
	c.mu.Lock()
	c.roles = map[string]Role{}
	for _, r := range roles {
		c.roles[r.Name] = r
	}
	c.users = map[string]*list.Element{}
	c.lru.Init()
	c.gen++
	c.mu.Unlock()
	return nil
}

// forget drops a user's cached roles. The node that made a change calls
// it at once; the notification does it for the others.
func (c *roleCache) forget(userID string) {
	c.mu.Lock()
	if el := c.users[userID]; el != nil {
		c.lru.Remove(el)
		delete(c.users, userID)
	}
	c.gen++
	c.mu.Unlock()
}

// notified applies a notification: "role" (any role changed) or
// "user:<id>" (that user's roles changed).
func (c *roleCache) notified(ctx context.Context, payload string) error {
	if id, ok := strings.CutPrefix(payload, "user:"); ok {
		c.forget(id)
	} else if err := c.reload(ctx); err != nil {
		return err
	}
	select {
	case c.changed <- struct{}{}:
	default:
	}
	return nil
}

// of returns a user's roles, from memory when it can.
func (c *roleCache) of(ctx context.Context, userID string) ([]string, error) {
	c.mu.Lock()
	if el := c.users[userID]; el != nil {
		c.lru.MoveToFront(el)
		roles := el.Value.(*userRoles).roles
		c.mu.Unlock()
		return roles, nil
	}
	gen := c.gen
	c.mu.Unlock()
	rows, err := c.db.Query(ctx, `SELECT role FROM abe.user_roles WHERE user_id = $1 ORDER BY role`, userID)
	if err != nil {
		return nil, fmt.Errorf("load roles of %s: %w", userID, err)
	}
	roles, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("load roles of %s: %w", userID, err)
	}
	if roles == nil {
		roles = []string{}
	}
	c.mu.Lock()
	if el := c.users[userID]; el == nil && c.gen == gen {
		c.users[userID] = c.lru.PushFront(&userRoles{id: userID, roles: roles})
		for c.lru.Len() > maxCachedUsers {
			last := c.lru.Back()
			c.lru.Remove(last)
			delete(c.users, last.Value.(*userRoles).id)
		}
	}
	c.mu.Unlock()
	return roles, nil
}

// permissions are what a set of roles grants.
func (c *roleCache) permissions(roles []string) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []string
	for _, name := range roles {
		for _, p := range c.roles[name].Permissions {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

func (c *roleCache) exists(name string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.roles[name]
	return ok
}

func (c *roleCache) defaults() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []string
	for name, r := range c.roles {
		if r.Default {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// roleSource names where a role is declared, for the admin API.
func roleSource(builtin bool) string {
	if builtin {
		return "config"
	}
	return "api"
}

func (c *roleCache) list() []Role {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]Role, 0, len(c.roles))
	for _, r := range c.roles {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Roles lists every role.
func (s *Service) Roles() []Role { return s.roles.list() }

var (
	roleNameRE   = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	permissionRE = regexp.MustCompile(`^(\*|[a-z0-9_-]+(:[a-z0-9_*-]+)*)$`)
)

// ErrRoleExists and ErrBuiltinRole refuse role changes.
var (
	ErrRoleExists  = errors.New("a role with this name exists")
	ErrBuiltinRole = errors.New("the role is declared in abe.yaml; remove it there")
)

func checkRole(r *Role) error {
	if !roleNameRE.MatchString(r.Name) {
		return &FieldError{Field: "name", Message: "use lower-case letters, digits, - and _, starting with a letter (at most 63)"}
	}
	if len(r.Description) > 500 {
		return &FieldError{Field: "description", Message: "is longer than 500 characters"}
	}
	if len(r.Permissions) > 200 {
		return &FieldError{Field: "permissions", Message: "has more than 200 entries"}
	}
	for _, p := range r.Permissions {
		if !permissionRE.MatchString(p) || len(p) > 100 {
			return &FieldError{Field: "permissions", Message: fmt.Sprintf("%q is not a permission: write * or names like todos:moderate", p)}
		}
	}
	if r.Permissions == nil {
		r.Permissions = []string{}
	}
	return nil
}

// CreateRole adds a role managed through the API.
func (s *Service) CreateRole(ctx context.Context, r Role, c client, by string) (Role, error) {
	if err := checkRole(&r); err != nil {
		return Role{}, err
	}
	r.Builtin, r.Source = false, roleSource(false)
	err := inTxPool(ctx, s, func(db dbtx) error {
		note(db, busRoles, "role")
		_, err := db.Exec(ctx, `INSERT INTO abe.roles (name, description, permissions, is_default, builtin) VALUES ($1, $2, $3, $4, false)`,
			r.Name, r.Description, r.Permissions, r.Default)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return ErrRoleExists
		}
		if err != nil {
			return fmt.Errorf("create role: %w", err)
		}
		return s.record(ctx, db, c, by, EventRoleCreated, map[string]any{"role": r.Name, "permissions": r.Permissions, "actor": by})
	})
	if err != nil {
		return Role{}, err
	}
	return r, s.roles.reload(ctx)
}

// RolePatch changes a role; nil fields stay.
type RolePatch struct {
	Description *string   `json:"description"`
	Permissions *[]string `json:"permissions"`
	Default     *bool     `json:"default"`
}

// UpdateRole changes a role managed through the API. A role declared in
// abe.yaml is ErrBuiltinRole: the file is its one definition, or the next
// migrate would silently undo or keep the change.
func (s *Service) UpdateRole(ctx context.Context, name string, p RolePatch, c client, by string) (Role, error) {
	r, ok := s.roleNamed(name)
	if !ok {
		return Role{}, ErrNotFound
	}
	if r.Builtin {
		return Role{}, ErrBuiltinRole
	}
	if p.Description != nil {
		r.Description = *p.Description
	}
	if p.Permissions != nil {
		r.Permissions = *p.Permissions
	}
	if p.Default != nil {
		r.Default = *p.Default
	}
	if err := checkRole(&r); err != nil {
		return Role{}, err
	}
	err := inTxPool(ctx, s, func(db dbtx) error {
		note(db, busRoles, "role")
		tag, err := db.Exec(ctx, `UPDATE abe.roles SET description = $2, permissions = $3, is_default = $4, updated_at = $5 WHERE name = $1`,
			r.Name, r.Description, r.Permissions, r.Default, s.now())
		if err != nil {
			return fmt.Errorf("update role: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return s.record(ctx, db, c, by, EventRoleUpdated, map[string]any{"role": r.Name, "permissions": r.Permissions, "actor": by})
	})
	if err != nil {
		return Role{}, err
	}
	return r, s.roles.reload(ctx)
}

// DeleteRole removes a role made through the API, and takes it from every
// user.
func (s *Service) DeleteRole(ctx context.Context, name string, c client, by string) error {
	r, ok := s.roleNamed(name)
	if !ok {
		return ErrNotFound
	}
	if r.Builtin {
		return ErrBuiltinRole
	}
	err := inTxPool(ctx, s, func(db dbtx) error {
		note(db, busRoles, "role")
		if _, err := db.Exec(ctx, `DELETE FROM abe.roles WHERE name = $1`, name); err != nil {
			return fmt.Errorf("delete role: %w", err)
		}
		return s.record(ctx, db, c, by, EventRoleDeleted, map[string]any{"role": name, "actor": by})
	})
	if err != nil {
		return err
	}
	return s.roles.reload(ctx)
}

func (s *Service) roleNamed(name string) (Role, bool) {
	s.roles.mu.RLock()
	defer s.roles.mu.RUnlock()
	r, ok := s.roles.roles[name]
	return r, ok
}

// UserRoles returns a user's roles.
func (s *Service) UserRoles(ctx context.Context, userID string) ([]string, error) {
	if _, err := s.UserByID(ctx, userID); err != nil {
		return nil, err
	}
	return s.roles.of(ctx, userID)
}

// AssignRole gives a user a role; giving it twice is no error.
func (s *Service) AssignRole(ctx context.Context, userID, role string, c client, by string) error {
	if !s.roles.exists(role) {
		return &FieldError{Field: "role", Message: fmt.Sprintf("no role %q", role)}
	}
	if _, err := s.UserByID(ctx, userID); err != nil {
		return err
	}
	defer s.roles.forget(userID)
	return inTxPool(ctx, s, func(db dbtx) error {
		note(db, busRoles, "user:"+userID)
		tag, err := db.Exec(ctx, `INSERT INTO abe.user_roles (user_id, role, granted_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, userID, role, s.now())
		if err != nil {
			return fmt.Errorf("assign role: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		return s.record(ctx, db, c, userID, EventRoleAssigned, map[string]any{"role": role, "by": by, "actor": by})
	})
}

// RemoveRole takes a role from a user; removing one it lacks is no error.
func (s *Service) RemoveRole(ctx context.Context, userID, role string, c client, by string) error {
	if _, err := s.UserByID(ctx, userID); err != nil {
		return err
	}
	defer s.roles.forget(userID)
	return inTxPool(ctx, s, func(db dbtx) error {
		note(db, busRoles, "user:"+userID)
		tag, err := db.Exec(ctx, `DELETE FROM abe.user_roles WHERE user_id = $1 AND role = $2`, userID, role)
		if err != nil {
			return fmt.Errorf("remove role: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		return s.record(ctx, db, c, userID, EventRoleRemoved, map[string]any{"role": role, "by": by, "actor": by})
	})
}

// AssignRoleCLI and RemoveRoleCLI are for the command line, outside a
// request.
func (s *Service) AssignRoleCLI(ctx context.Context, userID, role string) error {
	return s.AssignRole(ctx, userID, role, client{}, "cli")
}

// RemoveRoleCLI takes a role from a user from the command line.
func (s *Service) RemoveRoleCLI(ctx context.Context, userID, role string) error {
	return s.RemoveRole(ctx, userID, role, client{}, "cli")
}

// RoleSync plans the migration steps that make abe.roles hold the roles of
// abe.yaml. A declared role is created when missing and rewritten when its
// declaration changes (its hash is kept in config_hash); the API refuses
// to change a declared role (changes made in the database by hand are kept
// until then). A role no longer
// declared stays, managed through the API.
type RoleSync struct{}

func roleHash(r *schema.Role) string {
	perms := slices.Clone(r.Permissions)
	sort.Strings(perms)
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%v", r.Description, strings.Join(perms, ","), r.Default))
	return hex.EncodeToString(sum[:8])
}

// Plan implements schema.Extension.
func (RoleSync) Plan(ctx context.Context, db schema.DB, cfg *schema.Config) ([]schema.Step, error) {
	type row struct {
		hash    string
		builtin bool
	}
	have := map[string]row{}
	var exists bool
	if err := db.QueryRow(ctx, `SELECT to_regclass('abe.roles') IS NOT NULL`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("look for abe.roles: %w", err)
	}
	if exists {
		rows, err := db.Query(ctx, `SELECT name, coalesce(config_hash, ''), builtin FROM abe.roles`)
		if err != nil {
			return nil, fmt.Errorf("read roles: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			var r row
			if err := rows.Scan(&name, &r.hash, &r.builtin); err != nil {
				return nil, err
			}
			have[name] = r
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	lit := schema.QuoteLiteral
	var steps []schema.Step
	declared := map[string]bool{}
	for _, r := range cfg.Roles {
		declared[r.Name] = true
		perms := make([]string, len(r.Permissions))
		for i, p := range r.Permissions {
			perms[i] = lit(p)
		}
		permSQL := "ARRAY[" + strings.Join(perms, ", ") + "]::text[]"
		hash := roleHash(r)
		cur, ok := have[r.Name]
		switch {
		case !ok:
			steps = append(steps, schema.Step{Kind: "sync_role", Summary: fmt.Sprintf("create role %s (%s)", r.Name, strings.Join(r.Permissions, ", ")),
				SQL: []string{fmt.Sprintf("INSERT INTO abe.roles (name, description, permissions, is_default, builtin, config_hash) VALUES (%s, %s, %s, %t, true, %s)",
					lit(r.Name), lit(r.Description), permSQL, r.Default, lit(hash))}})
		case cur.hash != hash || !cur.builtin:
			steps = append(steps, schema.Step{Kind: "sync_role", Summary: fmt.Sprintf("update role %s (%s) from abe.yaml", r.Name, strings.Join(r.Permissions, ", ")),
				SQL: []string{fmt.Sprintf("UPDATE abe.roles SET description = %s, permissions = %s, is_default = %t, builtin = true, config_hash = %s, updated_at = now() WHERE name = %s",
					lit(r.Description), permSQL, r.Default, lit(hash), lit(r.Name))}})
		}
	}
	names := make([]string, 0, len(have))
	for name := range have {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if have[name].builtin && !declared[name] {
			steps = append(steps, schema.Step{Kind: "sync_role", Summary: fmt.Sprintf("role %s is no longer in abe.yaml: keep it, managed through the API", name),
				SQL: []string{fmt.Sprintf("UPDATE abe.roles SET builtin = false, config_hash = NULL, updated_at = now() WHERE name = %s", lit(name))}})
		}
	}
	return steps, nil
}

package engine

import (
	"context"
	"net/http/httptest"
	"net/url"
)

// AdminListSQL is the statement and arguments a list of the admin records
// API runs for query, as listQuery builds it, for tests to EXPLAIN.
func (e *Engine) AdminListSQL(collection string, query url.Values) (string, []any, error) {
	co := e.colls[collection]
	if co == nil {
		return "", nil, errStatus(404, "no collection %q", collection)
	}
	r := httptest.NewRequest("GET", "/api/admin/collections/"+collection+"/records?"+query.Encode(), nil)
	r = r.WithContext(context.WithValue(r.Context(), adminModeKey{}, true))
	lr, err := e.parseList(co, r)
	if err != nil {
		return "", nil, err
	}
	sql, q, _, err := e.listQuery(co, e.callerOf(r), lr)
	if err != nil {
		return "", nil, err
	}
	return sql, q.Args, nil
}

package engine

import (
	"bytes"
	"context"
	"encoding/json"

	"net/http"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/abe-stack/abe/engine/ops"
	"github.com/abe-stack/abe/internal/httpx"
)

// MaxBatch is the most operations one batch may hold.
const MaxBatch = 100

// batchOp is one operation of POST /api/batch.
type batchOp struct {
	Collection string          `json:"collection"`
	Action     string          `json:"action"` // create, update, replace, delete
	ID         string          `json:"id"`
	Version    *int64          `json:"version"`
	Data       map[string]any  `json:"data"`
	Ops        json.RawMessage `json:"ops"`
}

// handleBatch runs up to MaxBatch operations across collections in one
// transaction, each checked by its rules: all of them happen, or none. A
// failure names the index of the operation, its status and why.
func (e *Engine) handleBatch(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Ops []batchOp `json:"ops"`
	}
	if p := httpx.ReadJSON(w, r, &body, e.cfg.BodyLimit); p != nil {
		httpx.WriteProblem(w, r, *p)
		return
	}
	switch {
	case len(body.Ops) == 0:
		httpx.Error(w, r, http.StatusBadRequest, "ops is empty: send {\"ops\": [{collection, action, ...}]}")
		return
	case len(body.Ops) > MaxBatch:
		httpx.Error(w, r, http.StatusBadRequest, "a batch holds at most "+strconv.Itoa(MaxBatch)+" operations")
		return
	}
	c := e.callerOf(r)
	type result struct {
		status int
		co     *coll
		rec    Record
	}
	results := make([]result, len(body.Ops))
	failed := -1
	err := e.inTx(r.Context(), func(ctx context.Context, tx pgx.Tx) error {
		for i, op := range body.Ops {
			failed = i
			co := e.colls[op.Collection]
			if co == nil {
				return errStatus(http.StatusNotFound, "no collection %q", op.Collection)
			}
			var rec Record
			var err error
			status := http.StatusOK
			switch op.Action {
			case "create":
				if op.Data == nil {
					return errStatus(http.StatusBadRequest, "create needs data")
				}
				if op.ID != "" {
					op.Data["id"] = op.ID
				}
				rec, err = e.create(ctx, tx, co, c, op.Data)
				status = http.StatusCreated
			case "update", "replace":
				var ch change
				switch {
				case op.Ops != nil && op.Data != nil:
					return errStatus(http.StatusBadRequest, "send data or ops, not both")
				case op.Ops != nil:
					list, derr := ops.Decode(op.Ops)
					if derr != nil {
						return opError(derr)
					}
					ch = change{ops: list}
				case op.Data != nil:
					ch = change{patch: op.Data, replace: op.Action == "replace"}
				default:
					return errStatus(http.StatusBadRequest, "%s needs data or ops", op.Action)
				}
				rec, err = e.update(ctx, tx, co, c, op.ID, ch, op.Version)
			case "delete":
				err = e.delete(ctx, tx, co, c, op.ID, op.Version)
				status = http.StatusNoContent
			default:
				return errStatus(http.StatusBadRequest, "action must be create, update, replace or delete, not %q", op.Action)
			}
			if err != nil {
				return err
			}
			results[i] = result{status: status, co: co, rec: rec}
		}
		failed = -1
		return nil
	})
	if err != nil {
		p := e.problem(err, r)
		if p == nil {
			return
		}
		if failed >= 0 {
			idx := failed
			p.Index = &idx
			p.Detail = "operation " + strconv.Itoa(idx) + " failed, so none was applied: " + p.Detail
		}
		httpx.WriteProblem(w, r, *p)
		return
	}
	ctx := r.Context()
	loads := e.loads(ctx, e.db)
	var buf bytes.Buffer
	buf.WriteString(`{"results":[`)
	for i, res := range results {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(`{"status":` + strconv.Itoa(res.status))
		if res.rec != nil {
			v, err := e.viewOf(ctx, res.co, c, loads, res.rec, nil)
			if err != nil {
				e.writeError(w, r, err)
				return
			}
			buf.WriteString(`,"record":`)
			if err := res.co.appendJSON(&buf, res.rec, v); err != nil {
				e.writeError(w, r, err)
				return
			}
		}
		buf.WriteByte('}')
	}
	buf.WriteString("]}")
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(buf.Bytes()) //nolint:errcheck // the client went away
}

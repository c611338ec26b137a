package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// pgStats are counters of the whole Postgres server that tell whether a
// phase was disturbed by what the bench does not control: checkpoints
// (each flushes the dirty buffers, and the writes after it log whole
// pages), and transactions of other databases (other clients of a shared
// server).
type pgStats struct {
	checkpoints int64
	foreignXact int64
}

// statsConn reads pgStats on a connection of its own.
type statsConn struct {
	conn *pgx.Conn
}

func openStats(ctx context.Context, dbURL string) (*statsConn, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("connect for the server's statistics: %w", err)
	}
	return &statsConn{conn: conn}, nil
}

func (s *statsConn) close(ctx context.Context) { s.conn.Close(ctx) }

// read takes the counters; ok is false where they cannot be read (a
// server without pg_stat_bgwriter's checkpoint columns, Postgres 17 on),
// and the phase then reports none.
func (s *statsConn) read(ctx context.Context) (st pgStats, ok bool) {
	err := s.conn.QueryRow(ctx, `SELECT
		(SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter),
		(SELECT coalesce(sum(xact_commit + xact_rollback), 0)::bigint FROM pg_stat_database
		 WHERE datname IS DISTINCT FROM current_database())`).Scan(&st.checkpoints, &st.foreignXact)
	return st, err == nil
}

// Package s3test runs a real S3 API server on 127.0.0.1 for tests:
// gofakes3, an in-memory implementation of the S3 REST protocol, served
// over HTTP, so the S3 backend is tested through its real client, signing,
// multipart uploads, ranges and presigned URLs included.
package s3test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/abe-stack/abe/internal/storage"
)

// Server is a running S3 server with one bucket.
type Server struct {
	// Config reaches the bucket, path-style, with a transport that trusts
	// the server's certificate and is closed when the test ends.
	Config storage.S3Config
	// Backend is the server's store, to look behind the API.
	Backend *s3mem.Backend
	URL     string
}

// Bucket is the bucket every server starts with.
const Bucket = "abe-test"

// Start runs a server until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(Bucket); err != nil {
		t.Fatal(err)
	}
	faker := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog()))
	// Over TLS, as S3 is used: over plain HTTP, minio-go signs bodies in
	// aws-chunked encoding, which gofakes3 decodes for single uploads but
	// not for the parts of a multipart one.
	srv := httptest.NewTLSServer(faker.Server())
	transport := srv.Client().Transport.(*http.Transport).Clone()
	t.Cleanup(func() {
		transport.CloseIdleConnections()
		srv.Close()
	})
	return &Server{
		URL:     srv.URL,
		Backend: backend,
		Config: storage.S3Config{
			Endpoint: srv.URL, Bucket: Bucket, Region: "us-east-1",
			AccessKey: "test-access", SecretKey: "test-secret-key", PathStyle: true, Transport: transport,
		},
	}
}

// Keys lists the objects in the bucket.
func (s *Server) Keys(t testing.TB) []string {
	t.Helper()
	list, err := s.Backend.ListBucket(Bucket, &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, c := range list.Contents {
		keys = append(keys, c.Key)
	}
	return keys
}

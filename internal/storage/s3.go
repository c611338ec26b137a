package storage

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config configures the S3 backend.
type S3Config struct {
	// Endpoint is the service's URL, like https://s3.eu-west-1.amazonaws.com
	// or http://127.0.0.1:9000; the scheme says whether to use TLS.
	Endpoint  string
	Bucket    string
	Region    string
	AccessKey string
	SecretKey string
	// PathStyle addresses the bucket in the path (endpoint/bucket/key), as
	// MinIO and most self-hosted services need, instead of as a subdomain.
	PathStyle bool
	// Prefix is put before every key, to share a bucket.
	Prefix string
	// Transport replaces the HTTP transport (tests, proxies).
	Transport http.RoundTripper
}

// S3 keeps files in a bucket of an S3-compatible service.
//
// S3 itself makes writes atomic: an object appears whole when its upload
// completes. A body of unknown length that fits in one small part goes up
// in one request; a longer one goes up as a multipart upload of partSize
// parts, so memory stays bounded by one part, and an upload that fails
// (over the size limit, the client gone) is aborted, leaving nothing.
type S3 struct {
	client *minio.Client
	bucket string
	prefix string
}

var (
	_ Backend = (*S3)(nil)
	_ Signer  = (*S3)(nil)
)

const (
	// singlePutMax is how much of a body of unknown length is read ahead
	// to send small files in one request.
	singlePutMax = 1 << 20
	// partSize is the part of a multipart upload: minio-go's default, and
	// the memory one large upload holds.
	partSize = 16 << 20
)

// NewS3 makes the client; it does not connect (Check does).
func NewS3(cfg S3Config) (*S3, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("storage: the S3 endpoint %q is not a URL like https://s3.amazonaws.com", cfg.Endpoint)
	}
	if cfg.Bucket == "" {
		return nil, errors.New("storage: the S3 backend needs a bucket")
	}
	if cfg.Prefix != "" {
		if err := CheckKey(strings.TrimSuffix(cfg.Prefix, "/")); err != nil {
			return nil, fmt.Errorf("storage: the S3 prefix: %w", err)
		}
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       u.Scheme == "https",
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    cfg.Transport,
		// A request path waits on these retries; fail within seconds.
		MaxRetries: 3,
	})
	if err != nil {
		return nil, fmt.Errorf("storage: S3 client: %w", err)
	}
	prefix := cfg.Prefix
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return &S3{client: client, bucket: cfg.Bucket, prefix: prefix}, nil
}

// Client is the minio client, for tests and tools.
func (s *S3) Client() *minio.Client { return s.client }

func (s *S3) object(key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

// Put implements Storage.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, opts *PutOptions) (Info, error) {
	name, err := s.object(key)
	if err != nil {
		return Info{}, err
	}
	if opts == nil {
		opts = &PutOptions{}
	}
	if err := checkMetadata(opts.Metadata); err != nil {
		return Info{}, err
	}
	po := minio.PutObjectOptions{ContentType: cmp.Or(opts.ContentType, DefaultContentType), UserMetadata: map[string]string{}}
	for k, v := range opts.Metadata {
		// Metadata travels in headers, which take ASCII only.
		po.UserMetadata[k] = url.QueryEscape(v)
	}
	lr := &limitReader{r: r, max: opts.MaxSize}
	headLen := int64(singlePutMax)
	if opts.MaxSize > 0 {
		headLen = min(headLen, opts.MaxSize+1)
	}
	head := make([]byte, headLen)
	n, err := io.ReadFull(lr, head)
	switch {
	case lr.exceeded:
		return Info{}, ErrTooLarge
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		_, err = s.client.PutObject(ctx, s.bucket, name, bytes.NewReader(head[:n]), int64(n), po)
	case err != nil:
		return Info{}, fmt.Errorf("storage: read the body of %s: %w", key, err)
	default:
		po.PartSize = partSize
		_, err = s.client.PutObject(ctx, s.bucket, name, io.MultiReader(bytes.NewReader(head[:n]), lr), -1, po)
	}
	if lr.exceeded {
		return Info{}, ErrTooLarge
	}
	if err != nil {
		return Info{}, fmt.Errorf("storage: put %s: %w", key, err)
	}
	return s.Stat(ctx, key)
}

// Get implements Storage. The reader is a *minio.Object, which seeks by
// asking for ranges.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	name, err := s.object(key)
	if err != nil {
		return nil, Info{}, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, Info{}, s.translate(key, err)
	}
	st, err := obj.Stat()
	if err != nil {
		obj.Close() //nolint:errcheck // nothing was read
		return nil, Info{}, s.translate(key, err)
	}
	return obj, s.info(key, st), nil
}

// Stat implements Storage.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	name, err := s.object(key)
	if err != nil {
		return Info{}, err
	}
	st, err := s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
	if err != nil {
		return Info{}, s.translate(key, err)
	}
	return s.info(key, st), nil
}

func (s *S3) info(key string, st minio.ObjectInfo) Info {
	in := Info{Key: key, Size: st.Size, ModTime: st.LastModified, ContentType: cmp.Or(st.ContentType, DefaultContentType)}
	for k, v := range st.UserMetadata {
		if in.Metadata == nil {
			in.Metadata = map[string]string{}
		}
		if dec, err := url.QueryUnescape(v); err == nil {
			v = dec
		}
		in.Metadata[strings.ToLower(k)] = v
	}
	return in
}

func (s *S3) translate(key string, err error) error {
	switch minio.ToErrorResponse(err).Code {
	case minio.NoSuchKey, "NotFound":
		return fmt.Errorf("%w: %s", ErrNotExist, key)
	}
	return fmt.Errorf("storage: %s: %w", key, err)
}

// Delete implements Storage.
func (s *S3) Delete(ctx context.Context, key string) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{}); err != nil {
		if errors.Is(s.translate(key, err), ErrNotExist) {
			return nil
		}
		return fmt.Errorf("storage: delete %s: %w", key, err)
	}
	return nil
}

// SignedURL implements Signer: a presigned GET of the object, answered by
// the S3 service with opts' headers.
func (s *S3) SignedURL(ctx context.Context, key string, ttl time.Duration, opts *URLOptions) (string, error) {
	name, err := s.object(key)
	if err != nil {
		return "", err
	}
	params := url.Values{}
	if opts != nil {
		if opts.ContentDisposition != "" {
			params.Set("response-content-disposition", opts.ContentDisposition)
		}
		if opts.ContentType != "" {
			params.Set("response-content-type", opts.ContentType)
		}
	}
	u, err := s.client.PresignedGetObject(ctx, s.bucket, name, ttl, params)
	if err != nil {
		return "", fmt.Errorf("storage: sign a URL for %s: %w", key, err)
	}
	return u.String(), nil
}

// Check implements Backend: the bucket must exist and answer.
func (s *S3) Check(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("storage: reach bucket %s: %w", s.bucket, err)
	}
	if !ok {
		return fmt.Errorf("storage: bucket %s does not exist", s.bucket)
	}
	return nil
}

// Close implements Backend. The client holds only idle connections.
func (s *S3) Close() error { return nil }

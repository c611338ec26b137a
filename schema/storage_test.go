package schema

import (
	"path/filepath"
	"testing"
	"time"
)

func TestStorageSettings(t *testing.T) {
	t.Parallel()
	src := "collections:\n  posts:\n    fields:\n      cover: { type: file, max_size: 2MiB, mime_types: [image/png] }\n"
	cfg, err := Parse("/srv/app/abe.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	st := cfg.Storage
	if st.Backend != "local" || st.MaxSize != DefaultStorageMaxSize || time.Duration(st.URLTTL) != DefaultStorageURLTTL {
		t.Errorf("defaults: %+v", st)
	}
	if got := cfg.StorageRoot(); got != filepath.FromSlash("/srv/app/.abe/files") {
		t.Errorf("root %s, want it beside the configuration file", got)
	}
	if f := cfg.Collections[0].Fields[0]; f.MaxSize != 2<<20 || len(f.MIMETypes) != 1 || f.MIMETypes[0] != "image/png" {
		t.Errorf("field options: %+v", f)
	}

	// Every setting has its variable, secrets included.
	cfg, err = Parse("abe.yaml", []byte(src), []string{
		"ABE_STORAGE_BACKEND=s3", "ABE_STORAGE_S3_ENDPOINT=http://127.0.0.1:9000", "ABE_STORAGE_S3_BUCKET=files",
		"ABE_STORAGE_S3_ACCESS_KEY=ak", "ABE_STORAGE_S3_SECRET_KEY=sk", "ABE_STORAGE_S3_PATH_STYLE=true",
		"ABE_STORAGE_LOCAL_ROOT=/data/files", "ABE_STORAGE_MAX_SIZE=1GiB", "ABE_STORAGE_URL_TTL=2m",
	})
	if err != nil {
		t.Fatal(err)
	}
	st = cfg.Storage
	if st.Backend != "s3" || st.S3.Endpoint != "http://127.0.0.1:9000" || st.S3.Bucket != "files" || st.S3.AccessKey != "ak" ||
		st.S3.SecretKey != "sk" || !st.S3.PathStyle || st.MaxSize != 1<<30 || time.Duration(st.URLTTL) != 2*time.Minute {
		t.Errorf("from the environment: %+v", st)
	}
	if cfg.StorageRoot() != "/data/files" {
		t.Errorf("an absolute root: %s", cfg.StorageRoot())
	}
}

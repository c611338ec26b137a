package schema

import (
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"time"
)

var (
	// bucketRE is S3's rule for bucket names.
	bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	// prefixRE keeps a key prefix to what the storage accepts in keys.
	prefixRE = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*/?$`)
	// mimeRE is a media type without parameters, or a whole top-level type.
	mimeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9!#$&^_.+-]*/([a-z0-9][a-z0-9!#$&^_.+-]*|\*)$`)
)

func (c *checker) checkStorage() {
	st := &c.cfg.Storage
	if st.Backend == "s3" {
		s3 := st.S3
		u, err := url.Parse(s3.Endpoint)
		switch {
		case s3.Endpoint == "" || s3.Bucket == "":
			c.add([]string{"storage", "backend"}, false, "the s3 backend needs storage.s3.endpoint and storage.s3.bucket", "add them, like `s3: { endpoint: https://s3.eu-west-1.amazonaws.com, bucket: my-app-files }`")
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/"):
			c.add([]string{"storage", "s3", "endpoint"}, false, "%q is not the URL of an S3 service", "write it like https://s3.eu-west-1.amazonaws.com, or http://127.0.0.1:9000 for MinIO", s3.Endpoint)
		}
		if s3.Bucket != "" && !bucketRE.MatchString(s3.Bucket) {
			c.add([]string{"storage", "s3", "bucket"}, false, "%q is not an S3 bucket name", "S3 bucket names have 3 to 63 lower-case letters, digits, '.' and '-'", s3.Bucket)
		}
		if (s3.AccessKey == "") != (s3.SecretKey == "") {
			key := "access_key"
			if s3.AccessKey == "" {
				key = "secret_key"
			}
			c.add([]string{"storage", "s3", key}, false, "access_key and secret_key go together", "set both (with ${VAR}), or neither for a public bucket")
		}
	}
	if p := st.S3.Prefix; p != "" && (!prefixRE.MatchString(p) || len(p) > 256) {
		c.add([]string{"storage", "s3", "prefix"}, false, "%q is not a key prefix", "use letters, digits, '.', '_' and '-' in parts separated by '/', like app1", p)
	}
	if ttl := time.Duration(st.URLTTL); ttl < time.Second || ttl > 7*24*time.Hour {
		c.add([]string{"storage", "url_ttl"}, false, "url_ttl must be from 1s to 7d, not %s", "signed URLs should be short-lived, like 15m", st.URLTTL)
	}
}

// checkFileOptions checks what only file fields take: max_size and
// mime_types.
func (c *checker) checkFileOptions(path []string, f *Field) {
	sub := func(keys ...string) []string { return append(slices.Clone(path), keys...) }
	if f.Type != File {
		if f.MaxSize != 0 {
			c.add(sub("max_size"), false, "max_size applies to file fields, not %s", "bound text with max, or remove it", f.Type)
		}
		if f.MIMETypes != nil {
			c.add(sub("mime_types"), false, "mime_types applies to file fields, not %s", "remove it", f.Type)
		}
		return
	}
	if f.Required {
		c.add(sub("required"), false, "a file field cannot be required: a record is created first, and its files are uploaded to it", "remove required; a rule can ask for the file, like `record.photo != null`")
	}
	seen := map[string]bool{}
	for i, m := range f.MIMETypes {
		p := sub("mime_types", strconv.Itoa(i))
		switch {
		case !mimeRE.MatchString(m):
			c.add(p, false, "%q is not a media type", "write it in lower case like image/png, or image/* for every image type", m)
		case seen[m]:
			c.add(p, false, "%q is listed twice", "remove one", m)
		}
		seen[m] = true
	}
}

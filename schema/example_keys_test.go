package schema

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestExampleNamesEverySetting: config.example.yaml names every setting
// of the JSON Schema in its section, set or in a comment, so that a new
// setting cannot be left out of the file that documents them all.
func TestExampleNamesEverySetting(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := compiledConfigSchema()
	if err != nil {
		t.Fatal(err)
	}
	// The text of each top-level section, from its key to the next one.
	sections := map[string]string{}
	var cur string
	for line := range strings.SplitSeq(string(src), "\n") {
		if m := regexp.MustCompile(`^([a-z_]+):`).FindStringSubmatch(line); m != nil {
			cur = m[1]
		}
		sections[cur] += line + "\n"
	}
	var missing []string
	for _, path := range cs.envSettings() {
		key := path[len(path)-1]
		if !regexp.MustCompile(`(?m)^[\s#-]*` + regexp.QuoteMeta(key) + `:`).MatchString(sections[path[0]]) {
			missing = append(missing, strings.Join(path, "."))
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("config.example.yaml does not name %d settings:\n  %s", len(missing), strings.Join(missing, "\n  "))
	}
}

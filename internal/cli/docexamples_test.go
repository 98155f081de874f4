package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"moat/internal/check"
)

// docsWithExamples are the documents whose YAML examples operators copy.
var docsWithExamples = []string{"README.md", "SECURITY.md", "docs/DESIGN.md", "docs/WAF.md", "deploy/README.md"}

// fragmentKinds tells the owner of an example that shows one section of a
// file alone, by its first key.
var fragmentKinds = map[string]string{"egress": "policy", "mfa": "server", "access": "server", "export": "server"}

var (
	yamlBlock    = regexp.MustCompile("(?ms)^```yaml\n(.*?)^```")
	tlsFile      = regexp.MustCompile(`(ca_file|cert_file|key_file): ([^,}\s]+)`)
	firstKey     = regexp.MustCompile(`(?m)^([a-z_]+):`)
	routeService = regexp.MustCompile(`(?m)^\s+service: (\S+)`)
)

// TestDocExamples runs every YAML example of the documents through its
// owner's --validate, as an operator who copies it would: an example the
// code refuses is a claim the code does not hold. An example's
// certificates and keys are made where it points, and the services its routes name
// are taken as registered; a server section shown alone gets a data
// directory.
func TestDocExamples(t *testing.T) {
	n := 0
	for _, doc := range docsWithExamples {
		src, err := os.ReadFile(filepath.Join("..", "..", doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range yamlBlock.FindAllSubmatchIndex(src, -1) {
			line := 1 + strings.Count(string(src[:m[2]]), "\n")
			example := string(src[m[2]:m[3]])
			kind := check.MoatKind([]byte(example))
			if kind == "" {
				if k := firstKey.FindStringSubmatch(example); k != nil {
					kind = fragmentKinds[k[1]]
				}
			}
			name := fmt.Sprintf("%s:%d", doc, line)
			if kind == "" {
				t.Errorf("%s: a YAML example of no moat file kind", name)
				continue
			}
			n++
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				example = withCertificates(t, dir, example)
				switch {
				case kind == "server" && !strings.Contains(example, "data_dir:"):
					example = "data_dir: " + filepath.Join(dir, "data") + "\n" + example
				case kind == "gateway":
					// The running gateway takes the services its routes
					// name from the registry; --validate from the file.
					if !strings.Contains(example, "\nservices:") {
						var svcs []string
						for _, m := range routeService.FindAllStringSubmatch(example, -1) {
							svcs = append(svcs, m[1])
						}
						example += "services: [" + strings.Join(svcs, ", ") + "]\n"
					}
				}
				file := filepath.Join(dir, kind+".yaml")
				if err := os.WriteFile(file, []byte(example), 0o600); err != nil {
					t.Fatal(err)
				}
				if code, stdout, stderr := runCLI(t, nil, validateArgs[kind](file)...); code != 0 {
					t.Errorf("%s (%s): exit %d: %s%s", name, kind, code, stdout, stderr)
				}
			})
		}
	}
	if n < 8 {
		t.Fatalf("found %d YAML examples; the extraction is broken", n)
	}
}

// withCertificates makes a certificate and key in dir and points every
// ca_file, cert_file and key_file of the YAML src at them (the
// self-signed certificate is its own CA).
func withCertificates(t *testing.T, dir, src string) string {
	t.Helper()
	cert, key, _ := selfSigned(t, dir)
	return tlsFile.ReplaceAllStringFunc(src, func(s string) string {
		if strings.HasPrefix(s, "key_file") {
			return "key_file: " + key
		}
		return s[:strings.IndexByte(s, ':')] + ": " + cert
	})
}

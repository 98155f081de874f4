package waf

import (
	"strings"
	"testing"
)

// FuzzScoreNeed checks the bytes the gate decides the reference and
// metadata-URL operators by: a value the scorer finds an attack in holds
// one of them.
func FuzzScoreNeed(f *testing.F) {
	for _, s := range []string{
		`\\attacker.example\share\x.php`, "//?/C:/Windows/win.ini", "file://attacker.example/x",
		"php://filter/resource=index.php", "data:,<?php system('id'); ?>", "//attacker.example/share/x.php",
		"http://169.254.169.254/latest/meta-data/", "url=http://metadata.google.internal/computeMetadata/v1/",
		"gopher://[fd00:ec2::254]/", "hello world", "",
		"1' OR '1'='1", "1;DROP TABLE users", "a.constructor", "javascript:alert(1)", "{{7*7}}", "<%= 7*7 %>",
		";cat /etc/passwd", "$(id)", "a|id", "Ana", "A-100", "x.constructor.constructor('alert(1)')()",
	} {
		f.Add(s)
	}
	ref, meta := bytesOf(refNeed), bytesOf(metadataURLNeed)
	f.Fuzz(func(t *testing.T, v string) {
		b := bytesOf(v)
		if (refScore(v) == scoreAttack || fileRefScore(v) == scoreAttack) && !b.meets(ref) {
			t.Errorf("%q: a reference without any of %q", v, refNeed)
		}
		if metadataURL(v) != "" && !b.meets(meta) {
			t.Errorf("%q: a metadata URL without %q", v, metadataURLNeed)
		}
		for _, sc := range scoreNeeds {
			if sc.score(v) != scoreNone && !b.meets(bytesOf(sc.need)) {
				t.Errorf("%q: %s scores it without any of %q", v, sc.name, sc.need)
			}
		}
	})
}

// scoreNeeds are the scorers the gate decides by their need bytes: a
// value holding none of them scores nothing.
var scoreNeeds = []struct {
	name  string
	score func(string) int
	need  string
}{
	{"sqlScore", sqlScore, sqlNeed},
	{"shellScore", shellScore, shellNeed},
	{"xssScore", xssScore, xssNeed},
	{"sstiScore", sstiScore, sstiNeed},
}

// TestScoreNeedWords: a value of one word or number, holding no byte a
// scorer needs, scores nothing with any of them (the seeds of
// FuzzScoreNeed run as well with go test).
func TestScoreNeedWords(t *testing.T) {
	for _, v := range []string{"Ana", "12345", "constructor", strings.Repeat("a", 700), "résumé"} {
		for _, sc := range scoreNeeds {
			if bytesOf(v).meets(bytesOf(sc.need)) {
				continue
			}
			if sc.score(v) != scoreNone {
				t.Errorf("%s(%q) = %d without any of %q", sc.name, v, sc.score(v), sc.need)
			}
		}
	}
}

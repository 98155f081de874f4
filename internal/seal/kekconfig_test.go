package seal

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestKEKConfig(t *testing.T) {
	key := EncodeKEKKey(make([]byte, 32))
	getenv := func(name string) string {
		switch name {
		case "MOAT_KEK", "MY_KEK":
			return key
		}
		return ""
	}
	dir := filepath.Join(t.TempDir(), "data")
	for _, tc := range []struct {
		name   string
		cfg    KEKConfig
		create bool
		want   string
	}{
		{"missing file", KEKConfig{}, false, "no such file"},
		{"file made on create", KEKConfig{}, true, ""},
		{"file made before", KEKConfig{Source: "file"}, false, ""},
		{"named file missing", KEKConfig{File: "/nonexistent/kek"}, false, "no such file"},
		{"env default name", KEKConfig{Source: "env"}, false, ""},
		{"env named", KEKConfig{Source: "env", Env: "MY_KEK"}, false, ""},
		{"env unset", KEKConfig{Source: "env", Env: "UNSET"}, false, "UNSET"},
		{"passphrase unset", KEKConfig{Source: "passphrase"}, false, "MOAT_PASSPHRASE is not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate("kek"); err != nil {
				t.Fatal(err)
			}
			k, err := tc.cfg.Load(dir, getenv, tc.create)
			if tc.want == "" {
				if err != nil || k == nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	bad := KEKConfig{Source: "hsm"}
	if err := bad.Validate("kek"); err == nil || !strings.Contains(err.Error(), `kek.source: "hsm"`) {
		t.Fatalf("Validate = %v", err)
	}
	if got := (&KEKConfig{}).KeyFile("/var/lib/moat/"); got != "/var/lib/moat.kek" {
		t.Fatalf("KeyFile = %q", got)
	}
}

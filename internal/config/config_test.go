package config

import (
	"strings"
	"testing"
	"time"
)

type route struct {
	Host    string   `yaml:"host"`
	Service string   `yaml:"service"`
	Ports   []int    `yaml:"ports"`
	Timeout Duration `yaml:"timeout"`
}

type file struct {
	Name   string        `yaml:"name"`
	TTL    time.Duration `yaml:"ttl"`
	Strict bool          `yaml:"strict"`
	Routes []route       `yaml:"routes"`
	Labels map[string]string
}

const good = `
name: edge
ttl: 1h
strict: true
routes:
  - host: a.example
    service: web
    ports: [80, 443]
    timeout: 30d
labels:
  env: prod
`

func TestDecodeGood(t *testing.T) {
	var f file
	if err := Decode([]byte(good), &f); err != nil {
		t.Fatal(err)
	}
	if f.TTL != time.Hour || !f.Strict || len(f.Routes) != 1 || f.Routes[0].Ports[1] != 443 ||
		time.Duration(f.Routes[0].Timeout) != 30*24*time.Hour || f.Labels["env"] != "prod" {
		t.Fatalf("decoded %+v", f)
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name, from, to, want string
	}{
		{"unknown key", "    service: web", "    servise: web", `line 7: routes[0].servise: unknown key (did you mean "service"?)`},
		{"bad duration", "ttl: 1h", "ttl: 1 hour", `line 3: ttl: bad duration "1 hour"`},
		{"bad custom duration", "timeout: 30d", "timeout: soon", `line 9: routes[0].timeout: bad duration "soon"`},
		{"bad int", "ports: [80, 443]", "ports: [80, https]", `line 8: routes[0].ports[1]: want a whole number, got "https"`},
		{"bad bool", "strict: true", "strict: yes please", `line 4: strict: want true or false, got "yes please"`},
		{"list for scalar", "name: edge", "name: [a, b]", `line 2: name: want a single value`},
		{"two docs", "labels:", "---\nlabels:", `more than one YAML document`},
		{"duplicate key", "strict: true", "strict: true\nstrict: false", `key given twice`},
		{"syntax", "name: edge", "name: [edge", `did not find expected`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(good, tc.from, tc.to, 1)
			if src == good {
				t.Fatalf("fixture does not contain %q", tc.from)
			}
			var f file
			err := Decode([]byte(src), &f)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("routes: [{host: x, ports: [1]}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var v file
		_ = Decode(data, &v)
	})
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "4096": 4096, "512KiB": 512 << 10, "32MiB": 32 << 20, "1GiB": 1 << 30, "64MB": 64e6, "2 GB": 2e9, "10B": 10} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1MiB", "1.5MiB", "32mb", "12 apples", "99999999999GiB"} {
		if _, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) succeeded", in)
		}
	}
}

package gateway

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"moat/internal/config"
)

// goodFile is a known-good configuration; each case below breaks one thing.
func goodFile(t *testing.T) (*File, string) {
	dir := t.TempDir()
	cert, key, _ := writeCert(t, dir, "c")
	return &File{
		Listen:   "127.0.0.1:8443",
		TLS:      TLSFile{CertFile: cert, KeyFile: key},
		Services: []string{"frontend", "api"},
		IPDeny:   []string{"203.0.113.0/24"},
		Trusted:  []string{"10.0.0.1"},
		Routes: []RouteFile{
			{Service: "frontend", Port: 8080},
			{Service: "api", Port: 9090, Path: "/api/", AllowedOrigins: []string{"https://shop.example"}, WAFExclusions: []string{"942100"}},
		},
	}, dir
}

func TestSettingsErrors(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(f *File, dir string)
		want   string
	}{
		{"unknown service", func(f *File, _ string) { f.Routes[1].Service = "billing" }, `routes[1].service: unknown service "billing"`},
		{"missing service", func(f *File, _ string) { f.Routes[0].Service = "" }, `routes[0].service: required`},
		{"bad port", func(f *File, _ string) { f.Routes[0].Port = 0 }, `routes[0].port: want a port 1-65535, got 0`},
		{"bad path", func(f *File, _ string) { f.Routes[1].Path = "api" }, `routes[1].path: want a path prefix starting with "/"`},
		{"duplicate route", func(f *File, _ string) { f.Routes[1].Path = "/"; f.Routes[1].Name = "x" }, `routes[1].path: host "" and path "/" are already routed`},
		{"bad CIDR", func(f *File, _ string) { f.IPDeny = []string{"10.0.0.0/33"} }, `ip_deny[0]: want an IP address or CIDR`},
		{"bad allow", func(f *File, _ string) { f.IPAllow = []string{"10.0.0.1", "nope"} }, `ip_allow[1]: want an IP address or CIDR`},
		{"bad trusted", func(f *File, _ string) { f.Trusted = []string{"x"} }, `trusted_proxies[0]: want an IP address or CIDR`},
		{"unreadable cert", func(f *File, dir string) { f.TLS.CertFile = filepath.Join(dir, "missing.pem") }, `tls.cert_file: read certificate`},
		{"cert not PEM", func(f *File, dir string) { os.WriteFile(f.TLS.CertFile, []byte("junk"), 0o600) }, `tls.cert_file: "`},
		{"key mismatch", func(f *File, dir string) { _, k, _ := writeCert(t, dir, "other"); f.TLS.KeyFile = k }, `tls.key_file: certificate`},
		{"cert without key", func(f *File, _ string) { f.TLS.KeyFile = "" }, `tls: give both cert_file and key_file`},
		{"min version", func(f *File, _ string) { f.TLS.MinVersion = "1.1" }, `tls.min_version: want "1.2" or "1.3", got "1.1"`},
		{"short HSTS", func(f *File, _ string) { f.HSTS.MaxAge = config.Duration(24 * 3600e9) }, `hsts.max_age: want at least one year`},
		{"preload without subdomains", func(f *File, _ string) { f.HSTS.Preload = true }, `hsts.preload: preload needs include_subdomains`},
		{"paranoia", func(f *File, _ string) { f.WAF.Paranoia = 5 }, `waf.paranoia: want 1 to 4, got 5`},
		{"detection paranoia below", func(f *File, _ string) { f.WAF.Paranoia = 3; f.WAF.DetectionParanoia = 2 }, `waf.detection_paranoia: want 3 to 4`},
		{"threshold", func(f *File, _ string) { f.WAF.InboundThreshold = -1 }, `waf.inbound_threshold: must be positive`},
		{"missing rule file", func(f *File, dir string) { f.WAF.Rules = []string{filepath.Join(dir, "nope.conf")} }, `waf.rules[0]: rule file:`},
		{"exclusion", func(f *File, _ string) { f.Routes[1].WAFExclusions = []string{"942100", "abc"} }, `routes[1].waf_exclusions[1]: exclusion "abc"`},
		{"exclusion range", func(f *File, _ string) { f.Routes[1].WAFExclusions = []string{"942999-942000"} }, `routes[1].waf_exclusions[0]: exclusion "942999-942000": want a range`},
		{"origin", func(f *File, _ string) { f.Routes[1].AllowedOrigins = []string{"shop.example"} }, `routes[1].allowed_origins[0]: want an origin`},
		{"origin with path", func(f *File, _ string) { f.Routes[1].AllowedOrigins = []string{"https://shop.example/x"} }, `routes[1].allowed_origins[0]: want an origin`},
		{"csrf mode", func(f *File, _ string) { f.CSRF.Missing = "maybe" }, `csrf.missing: want "refuse_with_cookies", "refuse" or "allow", got "maybe"`},
		{"route csrf mode", func(f *File, _ string) { f.Routes[0].CSRFMissing = "x" }, `routes[0].csrf_missing: want`},
		{"rate", func(f *File, _ string) { f.Rate.RPS = -1 }, `rate_limit.rps: must be positive`},
		{"route rate", func(f *File, _ string) { f.Routes[0].Rate = &RateFile{Burst: -2} }, `routes[0].rate_limit.burst: must be positive`},
		{"listen", func(f *File, _ string) { f.Listen = "8443" }, `listen: want host:port, got "8443"`},
		{"no routes", func(f *File, _ string) { f.Routes = nil }, `routes: no routes`},
		{"host with port", func(f *File, _ string) { f.Routes[0].Host = "a.example:443" }, `routes[0].host: want a host name without port`},
		{"negative limit", func(f *File, _ string) { f.Limits.MaxConnsPerIP = -1 }, `limits.max_conns_per_ip: must not be negative`},
		{"negative rate table", func(f *File, _ string) { f.Limits.MaxRateClients = -1 }, `limits.max_rate_clients: must not be negative`},
		{"host not a name", func(f *File, _ string) { f.Routes[0].Host = "a..example" }, `routes[0].host: want a host name`},
		{"path not normal", func(f *File, _ string) { f.Routes[1].Path = "/api//v1/" }, `routes[1].path: want a path prefix in normal form (requests are matched in it), got "/api//v1/": its normal form is "/api/v1/"`},
		{"path escapes", func(f *File, _ string) { f.Routes[1].Path = "/%61pi/" }, `routes[1].path: want a path prefix in normal form`},
		{"path above root", func(f *File, _ string) { f.Routes[1].Path = "/../api/" }, `routes[1].path: want a path prefix in normal form (requests are matched in it), got "/../api/": path climbs above the root`},
		{"encoded slashes", func(f *File, _ string) { f.Routes[1].EncodedSlashes = "allow" }, `routes[1].encoded_slashes: want "decode", "keep" or "refuse", got "allow"`},
		{"route body", func(f *File, _ string) { f.Routes[1].MaxBodyBytes = -1 }, `routes[1].max_body_bytes: must not be negative`},
		{"route body over WAF", func(f *File, _ string) { f.Routes[1].MaxBodyBytes = 20 << 20 }, `routes[1].max_body_bytes: 20971520 is above waf.request_body_limit (13631488)`},
		{"body over WAF", func(f *File, _ string) { f.Limits.MaxBodyBytes = 20 << 20 }, `limits.max_body_bytes: 20971520 is above waf.request_body_limit (13631488), which the WAF would refuse on route "frontend"`},
		{"inspection", func(f *File, _ string) { f.WAF.BodyInspection.MaxBytes = -1 }, `waf.body_inspection.max_bytes: must not be negative`},
		{"inspection share", func(f *File, _ string) { f.WAF.BodyInspection.MaxBytesPerClient = 9 << 20 }, `waf.body_inspection.max_bytes_per_client: want 0 to max_bytes (8388608), got 9437184`},
		{"inspection timeout", func(f *File, _ string) { f.WAF.BodyInspection.QueueTimeout = -1 }, `waf.body_inspection.queue_timeout: must not be negative`},
		{"inspection queue", func(f *File, _ string) { f.WAF.BodyInspection.MaxQueued = -1 }, `waf.body_inspection.max_queued: must not be negative`},
		{"websocket idle", func(f *File, _ string) { f.Limits.WebSocketIdleTimeout = config.Duration(500 * time.Millisecond) }, `limits.websocket_idle_timeout: want a second or more (or leave it out for 5m0s), got 500ms`},
		{"negative websocket idle", func(f *File, _ string) { f.Limits.WebSocketIdleTimeout = config.Duration(-time.Minute) }, `limits.websocket_idle_timeout: want a second or more`},
		{"route websocket idle", func(f *File, _ string) { f.Routes[1].WebSocketIdleTimeout = config.Duration(-time.Second) }, `routes[1].websocket_idle_timeout: want a second or more (or leave it out for 5m0s), got -1s`},
		{"negative read timeout", func(f *File, _ string) { f.Limits.ReadTimeout = config.Duration(-time.Second) }, `limits.read_timeout: must not be negative, got -1s`},
		{"negative idle timeout", func(f *File, _ string) { f.Limits.IdleTimeout = config.Duration(-time.Second) }, `limits.idle_timeout: must not be negative, got -1s`},
		{"mapped prefix", func(f *File, _ string) { f.Trusted = []string{"::ffff:10.0.0.0/8"} }, `trusted_proxies[0]: "::ffff:10.0.0.0/8": an IPv4-mapped prefix needs a length of at least 96`},
	}
	f, _ := goodFile(t)
	if _, err := f.Settings(nil); err != nil {
		t.Fatalf("good file: %v", err)
	}
	for _, c := range cases {
		f, dir := goodFile(t)
		c.mutate(f, dir)
		_, err := f.Settings(nil)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %s…", c.name, err, c.want)
		}
	}
}

// TestSettingsNormalForms: what the gateway compares requests with is kept
// in the form requests are compared in.
func TestSettingsNormalForms(t *testing.T) {
	f, _ := goodFile(t)
	f.Routes[0].Host = "Shop.Example.ORG."
	f.Routes[1].AllowedOrigins = []string{"https://Shop.Example.org.:8443"}
	f.IPDeny = []string{"::ffff:192.0.2.1", "::ffff:198.51.100.0/120", "2001:db8::/32"}
	f.WAF.Disabled = true
	f.Routes[1].MaxBodyBytes = 50 << 20
	s, err := f.Settings(nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Routes[0]; r.Host != "shop.example.org" || r.EncodedSlashes != slashDecode || r.MaxBodyBytes != 1<<20 {
		t.Errorf("route 0: %+v", r)
	}
	if r := s.Routes[1]; r.AllowedOrigins[0] != "https://shop.example.org:8443" || r.MaxBodyBytes != 50<<20 {
		t.Errorf("route 1: %+v", r)
	}
	if got := fmt.Sprint(s.Deny.prefixes); got != "[192.0.2.1/32 198.51.100.0/24 2001:db8::/32]" {
		t.Errorf("deny %s", got)
	}
	if s.Routes[0].WebSocketIdle != 5*time.Minute {
		t.Errorf("route 0's WebSocket idle timeout %s, want the default 5m", s.Routes[0].WebSocketIdle)
	}
	f.Limits.WebSocketIdleTimeout = config.Duration(time.Hour)
	f.Routes[1].WebSocketIdleTimeout = config.Duration(30 * time.Second)
	if s, err = f.Settings(nil); err != nil {
		t.Fatal(err)
	}
	if a, b := s.Routes[0].WebSocketIdle, s.Routes[1].WebSocketIdle; a != time.Hour || b != 30*time.Second {
		t.Errorf("WebSocket idle timeouts %s and %s, want limits' 1h and route 1's own 30s", a, b)
	}
	if s.InspectBytes != 8<<20 || s.InspectClient != 2<<20 || s.InspectTimeout != 5*time.Second || s.InspectQueued != 2048 {
		t.Errorf("inspection defaults %d %d %s %d", s.InspectBytes, s.InspectClient, s.InspectTimeout, s.InspectQueued)
	}
}

func TestSettingsServicesFromCaller(t *testing.T) {
	f, _ := goodFile(t)
	if _, err := f.Settings([]string{"frontend"}); err == nil || !strings.Contains(err.Error(), `routes[1].service: unknown service "api"`) {
		t.Errorf("caller's services not used: %v", err)
	}
	if _, err := f.Settings([]string{}); err == nil {
		t.Error("empty service list admitted a route")
	}
}

func TestLoadFileErrorsNameFileAndLine(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "gw.yaml")
	os.WriteFile(name, []byte("services: [a]\nroutes:\n  - service: a\n    prot: 80\n"), 0o600)
	_, err := LoadFile(name, nil)
	if err == nil || !strings.Contains(err.Error(), name+":4: routes[0].prot: unknown key (did you mean \"port\"?)") {
		t.Errorf("got %v", err)
	}
	os.WriteFile(name, []byte("services: [a]\nroutes:\n  - service: b\n    port: 80\n"), 0o600)
	_, err = LoadFile(name, nil)
	if err == nil || err.Error() != "gateway: "+name+`: routes[0].service: unknown service "b"` {
		t.Errorf("got %v", err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "gw.yaml")
	os.WriteFile(name, []byte("services: [a]\nroutes:\n  - service: a\n    port: 80\n"), 0o600)
	_, err := New(Config{File: name, Dial: nil})
	if err == nil || !strings.Contains(err.Error(), "Dial is required") {
		t.Errorf("no dialer: %v", err)
	}
}

func FuzzLoadFile(f *testing.F) {
	f.Add([]byte(baseYAML))
	f.Add([]byte("routes:\n  - service: a\n    port: 1\n    waf_exclusions: [\"1-2\"]\nservices: [a]\nip_deny: [\"::1/128\"]\n"))
	f.Add([]byte("hsts:\n  max_age: 400d\n  include_subdomains: true\n  preload: true\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var file File
		if err := config.Decode(data, &file); err != nil {
			return
		}
		file.TLS = TLSFile{}
		file.WAF.Rules, file.WAF.RulesBefore = nil, nil
		s, err := file.Settings(nil)
		if err == nil && (s == nil || len(s.Routes) == 0) {
			t.Fatal("nil settings without an error")
		}
	})
}

package server

import (
	"strings"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/config"
)

// TestMFAFile: the mfa section's first enrolment and security keys are
// validated with errors naming the key; a known-good section is mutated
// one key at a time.
func TestMFAFile(t *testing.T) {
	good := func() MFAFile {
		return MFAFile{FirstEnrolment: FirstEnrolApproved, WebAuthn: &WebAuthnFile{RPID: "moat.example.com",
			Origins: []string{"https://moat.example.com", "https://ops.moat.example.com:8443"}, DisplayName: "moat prod"}}
	}
	c, err := good().Config("mfa")
	if err != nil {
		t.Fatal(err)
	}
	if c.FirstEnrolment != FirstEnrolApproved || c.WebAuthn == nil || c.WebAuthn.RPID != "moat.example.com" || len(c.WebAuthn.Origins) != 2 {
		t.Fatalf("config: %+v", c)
	}
	var zero MFAConfig
	zero.defaults()
	if zero.FirstEnrolment != FirstEnrolSelf || zero.WebAuthn != nil {
		t.Fatalf("defaults: first enrolment %q, webauthn %v", zero.FirstEnrolment, zero.WebAuthn)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*MFAFile)
		want   string
	}{
		{"an unknown first enrolment", func(f *MFAFile) { f.FirstEnrolment = "anyone" }, `mfa.first_enrolment: "anyone": want "self" or "approved"`},
		{"no rp_id", func(f *MFAFile) { f.WebAuthn.RPID = "" }, "mfa.webauthn.rp_id"},
		{"an rp_id that is an address", func(f *MFAFile) { f.WebAuthn.RPID = "10.0.0.1" }, "mfa.webauthn.rp_id"},
		{"an rp_id with capitals", func(f *MFAFile) { f.WebAuthn.RPID = "Moat.example.com" }, "mfa.webauthn.rp_id"},
		{"no origins", func(f *MFAFile) { f.WebAuthn.Origins = nil }, "mfa.webauthn.origins: name the dashboard's origin"},
		{"an http origin", func(f *MFAFile) { f.WebAuthn.Origins = []string{"http://moat.example.com"} }, "mfa.webauthn.origins[0]: \"http://moat.example.com\": browsers use security keys over https only"},
		{"an origin off the rp_id", func(f *MFAFile) { f.WebAuthn.Origins[1] = "https://moat.example.com.evil.test" }, "mfa.webauthn.origins[1]: \"https://moat.example.com.evil.test\": not on rp_id"},
		{"an origin with a path", func(f *MFAFile) { f.WebAuthn.Origins[0] = "https://moat.example.com/ui" }, "mfa.webauthn.origins[0]: \"https://moat.example.com/ui\": want an origin"},
		{"a display name with a newline", func(f *MFAFile) { f.WebAuthn.DisplayName = "a\nb" }, "mfa.webauthn.display_name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := good()
			tc.mutate(&f)
			_, err := f.Config("mfa")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	local := MFAFile{WebAuthn: &WebAuthnFile{RPID: "localhost", Origins: []string{"http://localhost:8080"}}}
	if _, err := local.Config("mfa"); err != nil {
		t.Fatalf("a dashboard on localhost over http: %v", err)
	}
}

// TestAccessFileRoles: the access section's roles (who requests, approves,
// and reads every recording) take operator or admin, and say which key is
// wrong otherwise; unset, the recordings are admin's.
func TestAccessFileRoles(t *testing.T) {
	c, err := AccessFile{RecordingRole: api.RoleOperator}.Config("access")
	if err != nil || c.RecordingRole != api.RoleOperator {
		t.Fatalf("recording_role operator: %+v %v", c, err)
	}
	c, err = AccessFile{}.Config("access")
	if err != nil {
		t.Fatal(err)
	}
	c.defaults()
	if c.RecordingRole != api.RoleAdmin || c.RequestRole != api.RoleOperator || c.ApproveRole != api.RoleAdmin {
		t.Fatalf("defaults: request %q, approve %q, recording %q", c.RequestRole, c.ApproveRole, c.RecordingRole)
	}
	for _, tc := range []struct {
		f    AccessFile
		want string
	}{
		{AccessFile{RecordingRole: api.RoleViewer}, `access.recording_role: "viewer": want operator or admin`},
		{AccessFile{RecordingRole: "auditor"}, `access.recording_role: "auditor": want operator or admin`},
		{AccessFile{RequestRole: api.RoleViewer}, `access.request_role: "viewer": want operator or admin`},
		{AccessFile{ApproveRole: "root"}, `access.approve_role: "root": want operator or admin`},
	} {
		if _, err := tc.f.Config("access"); err == nil || err.Error() != tc.want {
			t.Errorf("%+v: %v, want %q", tc.f, err, tc.want)
		}
	}
}

// TestAccessFileSessionCertTTL: access.session_cert_ttl, the life of a
// session's grant certificates, defaults to a minute and takes 1s to 10m;
// anything else is refused with the key named.
func TestAccessFileSessionCertTTL(t *testing.T) {
	c, err := AccessFile{}.Config("access")
	if err != nil {
		t.Fatal(err)
	}
	c.defaults()
	if c.SessionCertTTL != time.Minute {
		t.Fatalf("default: %s", c.SessionCertTTL)
	}
	for _, ok := range []time.Duration{time.Second, 90 * time.Second, 10 * time.Minute} {
		c, err := AccessFile{SessionCertTTL: config.Duration(ok)}.Config("access")
		if err != nil || c.SessionCertTTL != ok {
			t.Errorf("%s: %s, %v", ok, c.SessionCertTTL, err)
		}
	}
	for _, bad := range []time.Duration{-time.Second, 500 * time.Millisecond, 10*time.Minute + time.Second, 8 * time.Hour} {
		want := "access.session_cert_ttl: " + bad.String() + ": want 1s to 10m0s (default 1m0s): a session's certificates are needed only until its handshake"
		if _, err := (AccessFile{SessionCertTTL: config.Duration(bad)}).Config("access"); err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", bad, err, want)
		}
	}
}

package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/api"
	"moat/internal/ca"
	"moat/internal/identity"
)

// TestFindGrantRefusesUnmarkedCertificate: "moat ssh" and "moat access
// forward" pick the caller's grant by the account ID their certificate
// carries; a certificate without one (issued before certificates carried
// it, which an account adopted since still takes) is refused before any
// call, with what to do: renew it. The certificate is signed here by a CA
// of the test, with no account mark: no release the tests can run issues
// one any more.
func TestFindGrantRefusesUnmarkedCertificate(t *testing.T) {
	authority, err := ca.New(ca.Config{TrustDomain: spiffeid.RequireTrustDomainFromString("example.org")})
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.AdminID(authority.TrustDomain(), "lena")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := authority.Issue(id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "lena")
	if err := api.WriteCredentials(dir, cert, authority.Bundle().X509Authorities()); err != nil {
		t.Fatal(err)
	}
	// No server listens there: the refusal comes before any call.
	s, err := api.NewAdminClient("127.0.0.1:1", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range []struct{ mode, node, service string }{{api.ModeShell, "web-1", ""}, {api.ModeForward, "", "app"}} {
		_, err := findGrant(context.Background(), s, c.mode, c.node, c.service)
		if err == nil || !strings.Contains(err.Error(), "your certificate carries no account ID") || !strings.Contains(err.Error(), `renew it ("moat admin renew")`) {
			t.Errorf("a %s grant with a certificate without an account mark: %v, want a refusal saying to renew it", c.mode, err)
		}
	}
}

package server

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"moat/internal/api"
	"moat/internal/ca"
	"moat/internal/identity"
)

// TestRevokeSerialOfOthersNeedsAdmin: an operator may revoke services and
// nodes, but revoke --serial took any serial: an operator could read an
// administrator's serial from the certificate inventory and revoke the
// enrolment certificate of every account above theirs (none of whom
// could then remove them), or revoke the control plane's own certificate
// so that every agent and client refused it until it renewed. A serial
// that is no live service SVID on record now needs the role admin.
func TestRevokeSerialOfOthersNeedsAdmin(t *testing.T) {
	f := newAuthFixture(t)
	op, admin, viewer := f.accs["op"], f.accs["admin"], f.accs["viewer"]
	var inv api.CertInventory
	if code, e := f.call(t, viewer.cert, http.MethodGet, api.PathCerts, nil, &inv); code != http.StatusOK {
		t.Fatalf("certs: %d %s", code, e.Error)
	}
	serialOf := func(name string) string {
		for _, c := range inv.Certs {
			if c.Kind == "admin" && c.Name == name {
				return c.Serial
			}
		}
		t.Fatalf("no certificate of %s in the inventory %+v", name, inv.Certs)
		return ""
	}

	t.Log("an operator revokes the admin's enrolment certificate by its serial")
	code, e := f.call(t, op.session, http.MethodPost, api.PathRevoke, api.RevokeRequest{Serial: serialOf("admin")}, nil)
	if code != http.StatusForbidden || !strings.Contains(e.Error, "admin") {
		t.Errorf("an operator revoking an administrator's certificate: %d %q, want 403", code, e.Error)
	}
	if code, e := f.call(t, admin.cert, http.MethodGet, api.PathWhoami, nil, nil); code != http.StatusOK {
		t.Fatalf("the admin after the operator's revocation: %d %s", code, e.Error)
	}

	t.Log("an operator revokes the control plane's own certificate")
	own := identity.SerialHex(f.srv.ownCert().Leaf.SerialNumber)
	if code, e := f.call(t, op.session, http.MethodPost, api.PathRevoke, api.RevokeRequest{Serial: own}, nil); code != http.StatusForbidden {
		t.Errorf("an operator revoking the server's certificate: %d %q, want 403", code, e.Error)
	}
	if code, e := f.call(t, viewer.cert, http.MethodGet, api.PathWhoami, nil, nil); code != http.StatusOK {
		t.Fatalf("a call after the operator's revocation of the server's certificate: %d %s", code, e.Error)
	}

	t.Log("an operator still revokes a live service SVID by its serial")
	var tok api.TokenResponse
	if code, e := f.call(t, op.session, http.MethodPost, api.PathTokens, api.TokenRequest{Node: "web-1"}, &tok); code != http.StatusOK {
		t.Fatalf("token create: %d %s", code, e.Error)
	}
	node := f.join(t, tok.Token, "web-1")
	if code, e := f.call(t, op.session, http.MethodPost, api.PathServices, api.Registration{Name: "api", Node: "web-1", Port: 8080}, nil); code != http.StatusOK {
		t.Fatalf("svc register: %d %s", code, e.Error)
	}
	_, csr, err := ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	var svid api.CertResponse
	if code, e := f.call(t, node, http.MethodPost, api.PathSVID, api.SVIDRequest{Service: "api", CSR: csr}, &svid); code != http.StatusOK {
		t.Fatalf("svid: %d %s", code, e.Error)
	}
	chain, err := api.ParseChain(svid.Chain)
	if err != nil {
		t.Fatal(err)
	}
	if code, e := f.call(t, op.session, http.MethodPost, api.PathRevoke, api.RevokeRequest{Serial: identity.SerialHex(chain[0].SerialNumber)}, nil); code != http.StatusOK {
		t.Fatalf("an operator revoking a service SVID: %d %s", code, e.Error)
	}

	t.Log("an admin revokes another administrator's certificate by its serial")
	if code, e := f.call(t, admin.session, http.MethodPost, api.PathRevoke, api.RevokeRequest{Serial: serialOf("viewer")}, nil); code != http.StatusOK {
		t.Fatalf("an admin revoking an administrator's certificate: %d %s", code, e.Error)
	}
	if code, _ := f.call(t, viewer.cert, http.MethodGet, api.PathWhoami, nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("the viewer after the admin's revocation: %d, want 401", code)
	}
}

// TestRevokeSaysWhenNotRegistered: revoking a service or node by a name
// not registered revoked it for good and answered as for any other, so a
// misspelt name went unnoticed. It is still revoked (a node may be revoked
// before it joins, its join token leaked), and the answer says the name
// was not registered; a registered one's does not.
func TestRevokeSaysWhenNotRegistered(t *testing.T) {
	f := newAuthFixture(t)
	op := f.accs["op"]
	f.joinNode(t, "web-1")
	if code, e := f.call(t, op.session, http.MethodPost, api.PathServices, api.Registration{Name: "api", Node: "web-1", Port: 8080}, nil); code != http.StatusOK {
		t.Fatalf("svc register: %d %s", code, e.Error)
	}
	for _, tc := range []struct {
		req           api.RevokeRequest
		id            string
		notRegistered bool
	}{
		{api.RevokeRequest{Service: "api"}, "spiffe://example.org/svc/api", false},
		{api.RevokeRequest{Service: "apj"}, "spiffe://example.org/svc/apj", true},
		{api.RevokeRequest{Node: "web-1"}, "spiffe://example.org/node/web-1", false},
		{api.RevokeRequest{Node: "web-2"}, "spiffe://example.org/node/web-2", true},
	} {
		var res api.RevokeResult
		if code, e := f.call(t, op.session, http.MethodPost, api.PathRevoke, tc.req, &res); code != http.StatusOK {
			t.Fatalf("revoke %+v: %d %s", tc.req, code, e.Error)
		}
		if res.NotRegistered != tc.notRegistered {
			t.Errorf("revoke %+v: not_registered %v, want %v", tc.req, res.NotRegistered, tc.notRegistered)
		}
		if !slices.Contains(res.IDs, tc.id) {
			t.Errorf("revoke %+v: %s not in the list %v", tc.req, tc.id, res.IDs)
		}
	}
}

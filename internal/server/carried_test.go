package server

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/identity"
)

// TestCarriedReport: the watch stream tags each revocation it lists; a
// report of a revocation the list lacks, under its tag, is applied again
// and recorded with the node that reported it, once; a report whose tag
// is not the control plane's, or that names what no revocation of its
// could be, is refused whole, naming what, and applies nothing: a node's
// certificate does not let it revoke what it likes.
func TestCarriedReport(t *testing.T) {
	f := newAuthFixture(t)
	node := f.joinNode(t, "web-1")
	w := f.openWatch(t, node)
	w.next(t)
	if code, e := f.call(t, f.accs["op"].session, "POST", api.PathRevoke, api.RevokeRequest{Service: "stolen"}, nil); code != http.StatusOK {
		t.Fatalf("revoke: %d %s", code, e.Error)
	}
	if code, e := f.call(t, f.accs["admin"].session, "POST", api.PathRevoke, api.RevokeRequest{Serial: "abc"}, nil); code != http.StatusOK {
		t.Fatalf("revoke serial: %d %s", code, e.Error)
	}
	stolen := "spiffe://example.org/svc/stolen"
	var tag, serialTag []byte
	for serialTag == nil {
		if u := w.next(t); u.Revocations != nil {
			tag, serialTag = u.RevocationTags[stolen], u.RevocationTags["abc"]
		}
	}
	if len(tag) != revTagLen {
		t.Fatalf("tag of %s: %d bytes, want %d", stolen, len(tag), revTagLen)
	}

	t.Log("the list taken back to before the revocation, as a restore does")
	if _, err := f.st.Put(f.ctx, keyRevocations, mustJSON(identity.Revocations{})); err != nil {
		t.Fatal(err)
	}
	good := api.CarriedReport{Revocations: []api.CarriedRevocation{{ID: stolen, Tag: tag}, {Serial: "abc", Tag: serialTag}}}
	for name, c := range map[string]struct {
		mut  func(*api.CarriedReport)
		code int
		want string
	}{
		"a tag not the control plane's": {func(r *api.CarriedReport) { r.Revocations[0].Tag = bytes.Repeat([]byte{1}, revTagLen) },
			http.StatusForbidden, "revocations[0] (spiffe://example.org/svc/stolen): its tag is not this control plane's; nothing was applied"},
		"another ID under its tag": {func(r *api.CarriedReport) { r.Revocations[0].ID = "spiffe://example.org/svc/api" },
			http.StatusForbidden, "revocations[0] (spiffe://example.org/svc/api): its tag is not this control plane's"},
		"one good, one forged": {func(r *api.CarriedReport) {
			r.Revocations = append(r.Revocations, api.CarriedRevocation{ID: "spiffe://example.org/node/web-1", Tag: tag})
		}, http.StatusForbidden, "revocations[2] (spiffe://example.org/node/web-1): its tag is not this control plane's"},
		"an administrator": {func(r *api.CarriedReport) { r.Revocations[0].ID = "spiffe://example.org/admin/admin" },
			http.StatusBadRequest, `revocations[0]: id "spiffe://example.org/admin/admin" is no service or node of trust domain "example.org"`},
		"another trust domain": {func(r *api.CarriedReport) { r.Revocations[0].ID = "spiffe://other.org/svc/stolen" },
			http.StatusBadRequest, `revocations[0]: id "spiffe://other.org/svc/stolen" is no service or node of trust domain "example.org"`},
		"an ID with an end": {func(r *api.CarriedReport) { r.Revocations[0].Expires = time.Now() },
			http.StatusBadRequest, "is no service or node of trust domain"},
		"both": {func(r *api.CarriedReport) { r.Revocations[0].Serial = "ab" },
			http.StatusBadRequest, "revocations[0]: name exactly one of id or serial"},
		"neither": {func(r *api.CarriedReport) { r.Revocations[0].ID = "" },
			http.StatusBadRequest, "revocations[0]: name exactly one of id or serial"},
		"a serial given an end its tag is not of": {func(r *api.CarriedReport) { r.Revocations[1].Expires = time.Now() },
			http.StatusForbidden, "revocations[1] (abc): its tag is not this control plane's"},
		"a serial in capitals": {func(r *api.CarriedReport) { r.Revocations[0] = api.CarriedRevocation{Serial: "AB", Tag: tag} },
			http.StatusBadRequest, `revocations[0]: serial "AB" is not as the list keeps one (lowercase hexadecimal)`},
		"a serial with a leading zero": {func(r *api.CarriedReport) { r.Revocations[0] = api.CarriedRevocation{Serial: "0ab", Tag: tag} },
			http.StatusBadRequest, `revocations[0]: serial "0ab" is not as the list keeps one`},
		"too long": {func(r *api.CarriedReport) {
			r.Revocations[0].ID = "spiffe://example.org/svc/" + strings.Repeat("a", 240)
		},
			http.StatusBadRequest, "revocations[0]: longer than 256 bytes"},
		"too many": {func(r *api.CarriedReport) {
			for len(r.Revocations) <= api.MaxCarriedReport {
				r.Revocations = append(r.Revocations, r.Revocations[0])
			}
		}, http.StatusBadRequest, "1025 revocations reported, more than 1024"},
	} {
		rep := api.CarriedReport{Revocations: append([]api.CarriedRevocation(nil), good.Revocations...)}
		c.mut(&rep)
		code, e := f.call(t, node, "POST", api.PathNodeCarried, rep, nil)
		if code != c.code || !strings.Contains(e.Error, c.want) {
			t.Errorf("%s: %d %q, want %d naming %q", name, code, e.Error, c.code, c.want)
		}
	}
	if rev, err := f.srv.currentRevocations(f.ctx); err != nil || len(rev.IDs)+len(rev.Serials) != 0 {
		t.Fatalf("list after refused reports: %+v %v, want it empty", rev, err)
	}

	t.Log("the report under its tag: applied, recorded once")
	for i, want := range []int{2, 0} {
		var res api.CarriedResult
		if code, e := f.call(t, node, "POST", api.PathNodeCarried, good, &res); code != http.StatusOK || res.Applied != want {
			t.Fatalf("report %d: %d %s, applied %d, want %d", i, code, e.Error, res.Applied, want)
		}
	}
	rev, err := f.srv.currentRevocations(f.ctx)
	if err != nil || fmt.Sprint(rev.IDs) != "["+stolen+"]" || fmt.Sprint(rev.Serials) != "[abc]" {
		t.Fatalf("list after the report: %+v %v", rev, err)
	}
	es, err := f.log.Entries(0, f.log.Size())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		if e.Entry.Action == ActionCarried {
			got = append(got, e.Entry.Target+" by "+e.Entry.Detail["reported_by"]+" as "+e.Entry.Actor)
		}
	}
	if want := "[" + stolen + " by web-1 as spiffe://example.org/node/web-1 serial:abc by web-1 as spiffe://example.org/node/web-1]"; fmt.Sprint(got) != want {
		t.Fatalf("audit entries: %v, want %s", got, want)
	}
}

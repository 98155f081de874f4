package server

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol"

	"moat/internal/api"
	"moat/internal/flow"
	"moat/internal/identity"
)

func fuzzServer(t testing.TB) *Server {
	td, err := identity.ParseTrustDomain("example.org")
	if err != nil {
		t.Fatal(err)
	}
	return &Server{td: td}
}

// FuzzJoinRequest: whatever an anonymous caller sends to /v1/join, the
// decoder and the validation that run before anything is looked up or
// recorded never panic, and what they accept is bounded.
func FuzzJoinRequest(f *testing.F) {
	for _, s := range []string{
		`{"token":"moatjoin.abc.def","node":"n1","mesh_addr":"10.0.0.2:15443","csr":"AAAA"}`,
		`{"token":"x","node":"` + string(bytes.Repeat([]byte("n"), 100)) + `","mesh_addr":"a:1"}`,
		`{"node":"n1","mesh_addr":"169.254.169.254:80"}`, `{}`, `[]`, `{"token":1}`, `{"x":1}`,
	} {
		f.Add([]byte(s))
	}
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, api.PathJoin, bytes.NewReader(body))
		var req api.JoinRequest
		if err := decodeLimit(r, &req, maxNodeBody); err != nil {
			return
		}
		if err := s.validateJoin(req); err != nil {
			return
		}
		if len(req.Node) > 63 || len(req.Token) > 256 || len(req.MeshAddr) > maxMeshAddr {
			t.Fatalf("accepted an unbounded request: node %d, token %d, mesh_addr %d bytes", len(req.Node), len(req.Token), len(req.MeshAddr))
		}
		if validateMeshAddr(req.MeshAddr) != nil {
			t.Fatalf("accepted mesh_addr %q that does not validate", req.MeshAddr)
		}
	})
}

// FuzzMeshAddr: an accepted mesh address is a host and a port 1-65535,
// and never one of the forbidden addresses.
func FuzzMeshAddr(f *testing.F) {
	for _, s := range []string{"10.0.0.2:15443", "node-1.example.org:443", "[::1]:80", "169.254.169.254:80", "[fe80::1%eth0]:1",
		"[::ffff:169.254.169.254]:80", "0.0.0.0:1", "x:0", "x:65536", "not a host:port <script>", "a..b:1", "-a:1", ":80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		if validateMeshAddr(addr) != nil {
			return
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("accepted %q: %v", addr, err)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			t.Fatalf("accepted port %q", port)
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			ip = ip.Unmap()
			for _, n := range forbiddenMeshNets {
				if n.Contains(ip) {
					t.Fatalf("accepted %q in %s", addr, n)
				}
			}
			if ip.IsUnspecified() || ip.Zone() != "" {
				t.Fatalf("accepted %q", addr)
			}
		} else if !validHostname(host) {
			t.Fatalf("accepted host %q", host)
		}
	})
}

// FuzzAdminRequests: the bodies of admin calls decode strictly and their
// validation never panics.
func FuzzAdminRequests(f *testing.F) {
	for _, s := range []string{
		`{"name":"api","node":"n1","port":8080,"upstreams":[{"service":"db","local_port":5432}]}`,
		`{"service":"api"}`, `{"node":"n1","ttl":60000000000}`, `{"yaml":"default: deny\n"}`,
		`{"name":"a","role":"viewer","csr":"AAAA"}`, `{"csr":"AAAA","mesh_addr":"x:1"}`, `{"port":-1,"uid":-5}`,
		`{"csr":"AAAA","credential":{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"AA","signature":"AA"}}}`,
		`{"credential":{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","attestationObject":"oA"}}}`,
		`{"node":"web-1","mode":"shell","reason":"INC-1","for":3600000000000}`, `{"name":"bob"}`,
	} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, body []byte, kind uint8) {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		switch kind % 9 {
		case 0:
			var reg api.Registration
			if decode(r, &reg) == nil {
				_ = validateRegistration(reg)
			}
		case 1:
			var req api.RevokeRequest
			_ = decode(r, &req)
		case 2:
			var req api.TokenRequest
			if decode(r, &req) == nil {
				_ = identity.ValidName(req.Node)
			}
		case 3:
			var req api.PolicyRequest
			_ = decode(r, &req)
		case 4:
			var req api.AdminRequest
			_ = decode(r, &req)
		case 5:
			var req api.RenewRequest
			if decodeLimit(r, &req, maxNodeBody) == nil && req.MeshAddr != "" {
				_ = validateMeshAddr(req.MeshAddr)
			}
		case 6:
			// A security key's assertion, then its parse by the WebAuthn library.
			var req api.WebAuthnSessionRequest
			if decodeLimit(r, &req, maxWebAuthnBody) == nil {
				_, _ = parseCSR(req.CSR)
				_, _ = protocol.ParseCredentialRequestResponseBytes(req.Credential)
			}
		case 7:
			var req api.WebAuthnRegistration
			if decodeLimit(r, &req, maxWebAuthnBody) == nil {
				_, _ = protocol.ParseCredentialCreationResponseBytes(req.Credential)
			}
		case 8:
			var req api.AccessRequest
			if decode(r, &req) == nil {
				_ = validReason(req.Reason)
			}
		}
	})
}

// FuzzFlowBatch: a node's flow batch is read within its bounds, and each
// record's decode and ownership check never panic.
func FuzzFlowBatch(f *testing.F) {
	good, _ := json.Marshal([]flow.Record{{ClassUID: flow.ClassNetworkActivity, Time: 1, Metadata: flow.Metadata{UID: "a"},
		SrcEndpoint: &flow.Endpoint{UID: "spiffe://example.org/svc/api", SvcName: "api"}, DstEndpoint: &flow.Endpoint{SvcName: "db"}}})
	for _, s := range []string{string(good), `[]`, `[{}]`, `{}`, `[1,2,3]`, `[{"src_endpoint":{"uid":"spiffe://example.org/node/n1"}}]`, `[` + "\n", `[{}] x`} {
		f.Add([]byte(s))
	}
	s := fuzzServer(f)
	lim := FlowLimits{MaxBatchBytes: 1 << 16, MaxBatchRecords: 50, MaxRecordBytes: 4 << 10}
	lim.defaults()
	nodes := map[string]string{"api": "n1", "db": "n2"}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, api.PathFlows, bytes.NewReader(body))
		raws, err := readFlowBatch(httptest.NewRecorder(), r, lim)
		if err != nil {
			return
		}
		if len(raws) > lim.MaxBatchRecords {
			t.Fatalf("%d records read, bound %d", len(raws), lim.MaxBatchRecords)
		}
		for _, raw := range raws {
			if !json.Valid(raw) {
				t.Fatalf("a record that is not JSON: %q", raw)
			}
			var rec flow.Record
			if json.Unmarshal(raw, &rec) != nil || flow.Validate(&rec) != nil {
				continue
			}
			_ = s.aboutNode(&rec, "n1", nodes)
		}
	})
}

// FuzzRecordingHeader: the line heading an agent's recording upload is
// read strictly and within its bounds; what is accepted names a session
// and a digest of the right form and a size the server takes.
func FuzzRecordingHeader(f *testing.F) {
	good, _ := json.Marshal(api.RecordingUpload{Size: 10, Session: api.AccessSession{ID: "0123456789abcdef01234567", Grant: "1f",
		Recording: "0000000000000000000000000000000000000000000000000000000000000000"}})
	f.Add(append(good, '\n'))
	f.Add([]byte(`{"size":-1,"session":{}}`))
	f.Add([]byte(`{"size":99999999999,"session":{"id":"0123456789abcdef01234567"}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		const max = 1 << 20
		up, err := parseRecordingHeader(line, max)
		if err != nil {
			return
		}
		if up.Size < 0 || up.Size > max || !sessionIDRE.MatchString(up.Session.ID) || !sha256RE.MatchString(up.Session.Recording) {
			t.Fatalf("accepted %q: %+v", line, up)
		}
	})
}

// FuzzCarriedReport: whatever a node sends to PathNodeCarried, the decoder
// and checkCarried never panic, and what they accept is bounded and
// carries, for each revocation, the control plane's own tag of it.
func FuzzCarriedReport(f *testing.F) {
	s := fuzzServer(f)
	s.tags.key = tagKey{bytes.Repeat([]byte{7}, tagKeyLen)}
	tag := s.tags.tag(s.td, "id", "spiffe://example.org/svc/a", time.Time{})
	good, _ := json.Marshal(api.CarriedReport{Revocations: []api.CarriedRevocation{{ID: "spiffe://example.org/svc/a", Tag: tag}}})
	for _, b := range []string{string(good),
		`{"revocations":[{"serial":"ab","tag":"AAAAAAAAAAAAAAAAAAAAAA=="}]}`,
		`{"revocations":[{"id":"spiffe://example.org/admin/x","tag":""}]}`,
		`{"revocations":null}`, `{}`, `[]`, `{"revocations":[{}]}`, `{"x":1}`,
	} {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, api.PathNodeCarried, bytes.NewReader(body))
		var rep api.CarriedReport
		if err := decodeLimit(r, &rep, maxCarriedBody); err != nil {
			return
		}
		ids, serials, err := s.checkCarried(rep)
		if err != nil {
			return
		}
		if len(ids)+len(serials) > api.MaxCarriedReport {
			t.Fatalf("accepted %d revocations", len(ids)+len(serials))
		}
		for _, c := range rep.Revocations {
			kind, v := "id", c.ID
			if c.ID == "" {
				kind, v = "serial", c.Serial
			}
			if !bytes.Equal(c.Tag, s.tags.tag(s.td, kind, v, c.Expires)) {
				t.Fatalf("accepted %s %q under a tag not the control plane's", kind, v)
			}
		}
	})
}

package e2e

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/identity"
	"moat/internal/testkit"
)

// tunnelAccepts opens an mTLS tunnel to a mesh port presenting cert, as a
// holder of a stolen SVID would, and reports the destination's answer: nil
// when it accepted the tunnel, the refusal otherwise.
func tunnelAccepts(addr, service string, cert *tls.Certificate, now func() time.Time) error {
	d := &net.Dialer{Timeout: testkit.WaitLimit}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{
		Certificates: []tls.Certificate{*cert}, NextProtos: []string{"moat-tunnel/1"}, ServerName: service,
		InsecureSkipVerify: true, // the attacker does not care who answers
		Time:               now,
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 1)
	if _, err := conn.Read(b); err != nil {
		return err
	}
	if b[0] != 0x01 {
		return errors.New("no tunnel-ready byte")
	}
	return nil
}

// TestRevokeNodeRevokesEverySVID: a node holds an older SVID for its
// service besides the current one (an honest agent keeps the old one for
// half a life; a compromised one keeps any it asked for). Revoking the
// node refuses both at every other agent, and cuts a stream opened with
// the current one.
func TestRevokeNodeRevokesEverySVID(t *testing.T) {
	c := newCluster(t)
	dbPort := streamApp(t)
	toDB := freePort(t)
	c.register(api.Registration{Name: "api", Node: "n1", Port: freePort(t), Upstreams: []api.Upstream{{Service: "db", LocalPort: toDB}}})
	c.register(api.Registration{Name: "db", Node: "n2", Port: dbPort})
	doc := "default: deny\nrules:\n  - name: api-to-db\n    from: [api]\n    to: db\n    ports: [" + itoa(dbPort) + "]\n"
	if err := c.call(http.MethodPost, api.PathPolicy, api.PolicyRequest{YAML: doc}, nil); err != nil {
		t.Fatal(err)
	}
	a1 := c.startAgent("n1")
	a2 := c.startAgent("n2")
	n2Mesh := c.agentCfg["n2"].MeshAddr

	eventually(t, "api's and db's first SVIDs", func() bool { return svidOf(a1, "api") != nil && svidOf(a2, "db") != nil })
	old, err := a1.Certificate("api")
	if err != nil {
		t.Fatal(err)
	}
	t.Log("past half its life the agent renews; the old SVID stays valid")
	c.clk.Advance(35 * time.Minute)
	c.settle("api's renewed SVID", func() bool {
		l := svidOf(a1, "api")
		return l != nil && l.SerialNumber.Cmp(old.Leaf.SerialNumber) != 0
	})
	cur, err := a1.Certificate("api")
	if err != nil {
		t.Fatal(err)
	}
	// n2 serves db once its own SVID and registry have arrived; until then
	// the handshake fails for reasons of its own.
	eventually(t, "the old SVID to open a tunnel before revocation", func() bool {
		return tunnelAccepts(n2Mesh, "db", old, c.clk.Now) == nil
	})
	var stream net.Conn
	eventually(t, "a stream from api to db", func() bool { stream = openEcho(loopAddr(toDB)); return stream != nil })
	defer stream.Close()

	t.Log("revoke the node")
	var rev identity.Revocations
	if err := c.call(http.MethodPost, api.PathRevoke, api.RevokeRequest{Node: "n1"}, &rev); err != nil {
		t.Fatal(err)
	}
	for name, cert := range map[string]*tls.Certificate{"old": old, "current": cur} {
		eventually(t, "n2 to refuse the "+name+" SVID", func() bool { return tunnelAccepts(n2Mesh, "db", cert, c.clk.Now) != nil })
		t.Logf("%s SVID (serial %s): %v", name, identity.SerialHex(cert.Leaf.SerialNumber), tunnelAccepts(n2Mesh, "db", cert, c.clk.Now))
	}
	eventually(t, "the open stream to be cut", func() bool { return cut(stream) })
}

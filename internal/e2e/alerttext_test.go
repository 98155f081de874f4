package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/detect"
	"moat/internal/flow"
)

// TestAttackerTextInSlackAlert: what a client of the gateway wrote in a
// request the WAF blocked reaches the Slack alert as text, not as Slack
// markup. The request's path carries line breaks that would start lines
// of their own in the message (a forged "RESOLVED" in bold), a link and
// an @channel mention that Slack would make live, and a direction
// override. The alert is raised by the engine from the gateway's own
// security event and posted by the Slack sink to a stand-in for Slack's
// webhook.
func TestAttackerTextInSlackAlert(t *testing.T) {
	t.Log("a client sends an attack whose path is a message of its own")
	alert := wafAlertFor(t, "/search%0A%0A*RESOLVED:%20false%20positive*%20@channel%20log%20in%20at%20https://evil.example/sso%20%E2%80%AEgnp.exe")
	if !strings.Contains(alert.Details["last_path"], "*RESOLVED: false positive*") {
		t.Fatalf("last_path %q: the attack's path is not in the alert; the test tests nothing", alert.Details["last_path"])
	}

	t.Log("the Slack sink posts it to a stand-in for Slack")
	bodies := make(chan []byte, 1)
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- b
	}))
	defer slack.Close()
	sink, err := detect.NewSink(detect.SinkConfig{Name: "slack", Type: detect.SinkSlack, URL: detect.NewSecret(slack.URL + "/services/T0/B0/x")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sink.Send(ctx, alert); err != nil {
		t.Fatal(err)
	}
	body := <-bodies
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Text     *slackText  `json:"text"`
			Fields   []slackText `json:"fields"`
			Elements []slackText `json:"elements"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	var texts []slackText
	for _, b := range msg.Blocks {
		if b.Text != nil {
			texts = append(texts, *b.Text)
		}
		texts = append(texts, b.Fields...)
		texts = append(texts, b.Elements...)
	}
	found := false
	for _, x := range texts {
		if x.Type == "mrkdwn" && !x.Verbatim {
			t.Errorf("%q: mrkdwn without verbatim: Slack makes the client's link and @channel live", x.Text)
		}
		if label, value, ok := strings.Cut(x.Text, "\n"); ok && strings.ContainsAny(value, "\n\u202e") {
			t.Errorf("field %s holds %q: the client's line breaks and direction override reach Slack", label, value)
		}
		if i := strings.Index(x.Text, "*RESOLVED"); i >= 0 && strings.Count(x.Text[:i], "`")%2 == 0 {
			t.Errorf("%q: the client's *RESOLVED* is markup to Slack (bold), not text in code", x.Text)
		}
		if strings.Contains(x.Text, `RESOLVED:`) && strings.Contains(x.Text, `evil.example/sso`) {
			found = true
		}
	}
	if !found {
		t.Errorf("the path is not shown at all:\n%s", body)
	}

	t.Log("the Alertmanager sink posts it too: its description is one line")
	am, err := detect.NewSink(detect.SinkConfig{Name: "am", Type: detect.SinkAlertmanager, URL: detect.NewSecret(slack.URL)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := am.Send(ctx, alert); err != nil {
		t.Fatal(err)
	}
	body = <-bodies
	var alerts []struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(body, &alerts); err != nil || len(alerts) != 1 {
		t.Fatalf("%v\n%s", err, body)
	}
	if d := alerts[0].Annotations["description"]; strings.ContainsAny(d, "\n\u202e") || !strings.Contains(d, `last_path=/search\n\n\x2aRESOLVED`) {
		t.Errorf("description %q: want the client's line breaks and direction override as escapes, on one line", d)
	}
}

// last is the last alert of rule raised.
func (a *alerts) last(rule string) detect.Alert {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out detect.Alert
	for _, al := range a.all {
		if al.Rule == rule {
			out = al
		}
	}
	return out
}

// slackText is a text object of a Slack message as Slack reads it.
type slackText struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Verbatim bool   `json:"verbatim"`
}

// TestNodeTextInAlerts: a compromised node's record names its source with
// any text it likes (the source of a flow to its own service is its to
// name). The
// alert that text raises holds it printable, in every sink: Alertmanager
// labels and summary, PagerDuty's summary and source.
func TestNodeTextInAlerts(t *testing.T) {
	c := newCluster(t)
	rc := detect.DefaultRules()[detect.RuleScan]
	rc.Learning, rc.Threshold = 0, 1
	got := c.detecting(detect.Rules{detect.RuleScan: rc})
	c.register(api.Registration{Name: "web", Node: "n1", Port: freePort(t)})
	c.startAgent("n1")
	n1 := c.nodeClient("n1")

	t.Log("n1 sends a denied flow to its web whose source's service name is a message")
	forged := flow.Header(flow.ClassNetworkActivity, flow.ActivityRefuse, "moat-mesh", time.Now())
	forged.Metadata.UID = "forged-scan-1"
	forged.SrcEndpoint = &flow.Endpoint{SvcName: "10.0.0.1\n\nRESOLVED: false positive\u202e"}
	forged.DstEndpoint = &flow.Endpoint{UID: "spiffe://example.org/svc/web", SvcName: "web", Port: 22}
	forged.Unmapped = &flow.Moat{Verdict: flow.VerdictDeny}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ack api.FlowAck
	if err := n1.Call(ctx, http.MethodPost, api.PathFlows, []flow.Record{forged}, &ack); err != nil || ack.Stored != 1 {
		t.Fatalf("ack %+v, %v: the record was not stored; the test tests nothing", ack, err)
	}
	eventually(t, "scan alert", func() bool { return got.fired(detect.RuleScan) })
	alert := got.last(detect.RuleScan)
	if want := `10.0.0.1\n\nRESOLVED: false positive\u202e`; alert.Subject != want {
		t.Errorf("subject %q, want %q", alert.Subject, want)
	}

	t.Log("Alertmanager and PagerDuty get it as one line")
	bodies := make(chan []byte, 1)
	stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- b
		w.WriteHeader(http.StatusAccepted)
	}))
	defer stub.Close()
	for _, sc := range []detect.SinkConfig{
		{Name: "am", Type: detect.SinkAlertmanager, URL: detect.NewSecret(stub.URL)},
		{Name: "pd", Type: detect.SinkPagerDuty, URL: detect.NewSecret(stub.URL), RoutingKey: detect.NewSecret("R0UT1NGKEY0123456789abcdefABCDEF")},
	} {
		sink, err := detect.NewSink(sc, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := sink.Send(ctx, alert); err != nil {
			t.Fatal(err)
		}
		body := <-bodies
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("%s: %v\n%s", sc.Name, err, body)
		}
		if s := strings.Join(stringsOf(v), " | "); strings.ContainsAny(s, "\n\u202e") {
			t.Errorf("%s: the node's line breaks and direction override reach the sink: %q", sc.Name, s)
		}
	}
}

// stringsOf lists the strings in a decoded JSON value.
func stringsOf(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, stringsOf(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for k, e := range x {
			out = append(append(out, k), stringsOf(e)...)
		}
		return out
	}
	return nil
}

// wafAlertFor runs a cluster with the waf_spike rule firing at once and a
// gateway routing to an app, sends the gateway an attack (a script tag in
// the query) on path until the rule fires, each answered 403 by the WAF,
// and returns the alert.
func wafAlertFor(t *testing.T, path string) detect.Alert {
	t.Helper()
	c := newCluster(t)
	rc := detect.DefaultRules()[detect.RuleWAFSpike]
	rc.Learning, rc.Threshold = 0, 1
	got := c.detecting(detect.Rules{detect.RuleWAFSpike: rc})

	apiPort := echoApp(t, "api")
	c.register(api.Registration{Name: "api", Node: "n2", Port: apiPort})
	c.register(api.Registration{Name: "gateway", Node: "edge", Port: freePort(t)})
	doc := "default: deny\nrules:\n  - name: edge-to-api\n    from: [gateway]\n    to: api\n    ports: [" + itoa(apiPort) + "]\n"
	if err := c.call(http.MethodPost, api.PathPolicy, api.PolicyRequest{YAML: doc}, nil); err != nil {
		t.Fatal(err)
	}
	c.startAgent("n2")
	gw := startGateway(t, c, c.startAgent("edge"), apiPort)

	eventually(t, "waf_spike alert", func() bool {
		conn, err := tls.Dial("tcp", gw.addr, &tls.Config{RootCAs: gw.roots, ServerName: "127.0.0.1"})
		if err != nil {
			return false
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.WriteString(conn, "GET "+path+"?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
		if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("the attack answered %s, want 403 from the WAF", resp.Status)
			}
		}
		return got.fired(detect.RuleWAFSpike)
	})
	return got.last(detect.RuleWAFSpike)
}

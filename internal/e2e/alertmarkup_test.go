package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"moat/internal/detect"
)

// TestAttackerMarkupInAlertmanagerAlert: a client of the gateway writes,
// in a request the WAF blocks, Slack's mention and link syntax
// (<!channel>, <https://…|text>), an HTML link and Markdown: a link and
// an image whose text hides where they lead, a bare link, a mention,
// emphasis. Alertmanager passes annotations and labels as they are to
// its receivers' templates: to Slack as mrkdwn text (a live @channel, a
// link whose text hides where it leads), to Telegram as HTML, to Teams,
// Discord and Mattermost as Markdown. What the Alertmanager sink posts,
// to a stand-in for Alertmanager, must hold the client's text with none
// of those characters live, and still show it, every escape one a
// reader reads back.
func TestAttackerMarkupInAlertmanagerAlert(t *testing.T) {
	t.Log("a client sends an attack whose path is Slack and HTML markup")
	alert := wafAlertFor(t, "/a%3C!channel%3E%20%3Chttps://evil.example/sso%7Csign%20in%20again%3E%20%3Ca%20href=%22https://evil.example%22%3Ehere%3C/a%3E%20%26amp;"+
		"%20%5Bsign%20in%5D(https://evil.example/md)%20!%5Bx%5D(https://evil.example/p.png)%20@channel%20*urgent*%20www.evil.example")
	if !strings.Contains(alert.Details["last_path"], "<!channel>") {
		t.Fatalf("last_path %q: the attack's path is not in the alert; the test tests nothing", alert.Details["last_path"])
	}

	t.Log("the Alertmanager sink posts it to a stand-in for Alertmanager")
	bodies := make(chan []byte, 1)
	am := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- b
	}))
	defer am.Close()
	sink, err := detect.NewSink(detect.SinkConfig{Name: "am", Type: detect.SinkAlertmanager, URL: detect.NewSecret(am.URL)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sink.Send(ctx, alert); err != nil {
		t.Fatal(err)
	}
	body := <-bodies
	var alerts []struct {
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(body, &alerts); err != nil || len(alerts) != 1 {
		t.Fatalf("%v\n%s", err, body)
	}
	for _, m := range []map[string]string{alerts[0].Labels, alerts[0].Annotations} {
		for k, v := range m {
			if strings.ContainsAny(v, "<>&[]@*") || strings.Contains(v, "https://") || strings.Contains(v, "www.") {
				t.Errorf("%s = %q: the client's markup reaches Alertmanager's receivers live", k, v)
			}
		}
	}
	d := alerts[0].Annotations["description"]
	if !strings.Contains(d, "!channel") || !strings.Contains(d, "evil.example/sso|sign in again") {
		t.Errorf("description %q: the client's path is not shown", d)
	}
	// The gateway reads the path's // as one /.
	if shown := `\x5bsign in\x5d(https:/evil.example/md) !\x5bx\x5d(https:/evil.example/p.png) \x40channel \x2aurgent\x2a www\x2eevil.example`; !strings.Contains(d, shown) {
		t.Errorf("description %q: the client's Markdown is not shown as %s", d, shown)
	}
	_, shownPath, _ := strings.Cut(d, "last_path=")
	shownPath, _, _ = strings.Cut(shownPath, "; last_rules=")
	if path, err := strconv.Unquote(`"` + strings.ReplaceAll(shownPath, `"`, `\"`) + `"`); err != nil || path != alert.Details["last_path"] {
		t.Errorf("description %q: its last_path reads back as %q, not the client's %q", d, path, alert.Details["last_path"])
	}
}

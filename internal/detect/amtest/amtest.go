// Package amtest runs a real Prometheus Alertmanager (Debian's
// prometheus-alertmanager) for tests of what moat posts to it.
package amtest

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"moat/internal/testkit"
)

// Alertmanager is one Alertmanager on a loopback port, with its data in a
// directory of its own, stopped when the test ends.
type Alertmanager struct {
	t    testing.TB
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// Alert is an alert as Alertmanager shows it (GettableAlert, in part).
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
}

// Start runs an Alertmanager on 127.0.0.1:port, with no data, and waits
// until it is ready.
func Start(t testing.TB, port int) *Alertmanager {
	t.Helper()
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		t.Fatalf("alertmanager: %v (Debian package prometheus-alertmanager)", err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte("route:\n  receiver: none\nreceivers:\n  - name: none\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	am := &Alertmanager{t: t, port: port, done: make(chan struct{})}
	am.cmd = exec.Command(bin, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(port), "--cluster.listen-address=")
	am.cmd.Stdout, am.cmd.Stderr = &testkit.Buffer{}, &testkit.Buffer{}
	if err := am.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = am.cmd.Wait(); close(am.done) }()
	t.Cleanup(am.Stop)
	testkit.WaitFor(t, "alertmanager ready", func() bool {
		select {
		case <-am.done:
			t.Fatalf("alertmanager exited: %s", am.cmd.Stderr)
		default:
		}
		resp, err := http.Get(am.URL() + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return am
}

// URL is where the Alertmanager listens.
func (am *Alertmanager) URL() string { return "http://127.0.0.1:" + strconv.Itoa(am.port) }

// Stop stops the Alertmanager and waits for it to exit.
func (am *Alertmanager) Stop() {
	select {
	case <-am.done:
		return
	default:
	}
	_ = am.cmd.Process.Signal(syscall.SIGTERM)
	<-am.done
}

// Active returns the alerts the Alertmanager holds active, by their
// dedup_key label.
func (am *Alertmanager) Active() map[string]Alert {
	am.t.Helper()
	resp, err := http.Get(am.URL() + "/api/v2/alerts?active=true&silenced=false&inhibited=false")
	if err != nil {
		am.t.Fatal(err)
	}
	defer resp.Body.Close()
	var as []struct {
		Alert
		Status struct {
			State string `json:"state"`
		} `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&as); err != nil {
		am.t.Fatal(err)
	}
	out := map[string]Alert{}
	for _, a := range as {
		if a.Status.State == "active" {
			out[a.Labels["dedup_key"]] = a.Alert
		}
	}
	return out
}

//go:build unix

package cli

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"moat/internal/api"
	"moat/internal/testkit"
	"moat/internal/ui"
)

// noControl is a control plane that has nothing: the login needs none.
type noControl struct{}

func (noControl) Call(context.Context, string, string, any, any) error {
	return &api.StatusError{Code: 404, Msg: "nothing here"}
}

func (noControl) FollowFlows(ctx context.Context, _ url.Values, _ func(api.FlowFrame) error) error {
	<-ctx.Done()
	return nil
}

// TestUIOpenSignsInThroughAPrivatePage: "moat ui --open" gives the opener
// the path of a page only its user reads, never the login address; real
// Chromium, opening that page (another site, to the dashboard), ends on
// the dashboard signed in, and the page is removed once used.
func TestUIOpenSignsInThroughAPrivatePage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Chromium")
	}
	chrome, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is needed (scripts/test installs Debian's): %v", err)
	}
	srv, err := ui.New(ui.Config{Control: noControl{}, Admin: api.Whoami{ID: "spiffe://example.org/admin/alice", Role: api.RoleOperator},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dashboard: %v", err)
		}
	})
	token := strings.SplitN(srv.URL(), "token=", 2)[1]

	bctx, bcancel := browser(t, chrome)
	defer bcancel()
	var page string
	remove, err := openLogin(ctx, srv, func(path string) error {
		page = path
		if strings.Contains(path, token) {
			t.Errorf("the opener is given %q, which holds the login token", path)
		}
		for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700 | os.ModeDir} {
			if fi, err := os.Stat(p); err != nil || fi.Mode() != want {
				t.Errorf("%s: %v %v, want mode %v", p, fi.Mode(), err, want)
			}
		}
		t.Logf("opening %s in Chromium", path)
		_, err := chromedp.Run(bctx, chromedp.Navigate("file://"+path))
		return err
	})
	defer remove()
	if err != nil {
		t.Fatalf("open the login page: %v", err)
	}
	select {
	case <-srv.LoggedIn():
	case <-time.After(testkit.WaitLimit):
		t.Fatal("Chromium never used the login address the page leads to")
	}
	// Signed in: the browser moves on to the dashboard's page (not a
	// refusal at its address), which holds the session cookie, and its
	// calls are answered. (An evaluation
	// that meets the page's move fails, and is tried again.)
	testkit.WaitForDetail(t, "the dashboard signed in", func() (bool, string) {
		step, cancel := context.WithTimeout(bctx, 10*time.Second)
		defer cancel()
		got, err := chromedp.Run(step, chromedp.Evaluate[string](`fetch("/api/session").then((r) => [location.href, document.getElementById("graph") ? "dashboard" : "no dashboard", r.status].join(" "))`, chromedp.EvalAwaitPromise))
		if err != nil {
			return false, err.Error()
		}
		return got == "http://"+srv.Addr()+"/ dashboard 200", got
	})
	testkit.WaitFor(t, "the used page removed", func() bool {
		_, err := os.Stat(filepath.Dir(page))
		return errors.Is(err, os.ErrNotExist)
	})
}

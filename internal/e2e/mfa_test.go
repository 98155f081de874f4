package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"moat/internal/api"
	"moat/internal/detect"
	"moat/internal/server"
	"moat/internal/testkit"
)

// mfaAdmin opens the admin credentials in dir as production's CLI does: a
// call that needs a fresh MFA proof gets a code, here computed from the
// TOTP secret by the cluster's clock. The admin is enrolled on first use,
// through the API, as an administrator would be.
func (c *cluster) mfaAdmin(dir string) *api.Client {
	c.t.Helper()
	c.mu.Lock()
	secret := c.secrets[dir]
	c.mu.Unlock()
	code := func(context.Context) (string, error) {
		c.mu.Lock()
		s := c.secrets[dir]
		c.mu.Unlock()
		// The code of the next step (within the one step of skew the
		// server allows): the current one may be the confirming code's,
		// and a code is good once.
		return totp.GenerateCode(s, c.clk.Now().Add(30*time.Second))
	}
	s, err := api.NewAdminSession(c.addr, dir, api.SessionConfig{Code: code, Now: c.clk.Now})
	if err != nil {
		c.t.Fatal(err)
	}
	if secret != "" {
		return s.Client
	}
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitLimit)
	defer cancel()
	var en api.MFAEnrollment
	if err := s.Call(ctx, http.MethodPost, api.PathMFAEnroll, struct{}{}, &en); err != nil {
		c.t.Fatalf("mfa enroll: %v", err)
	}
	first, err := totp.GenerateCode(en.Secret, c.clk.Now())
	if err != nil {
		c.t.Fatal(err)
	}
	if err := s.Call(ctx, http.MethodPost, api.PathMFAConfirm, api.MFACode{Code: first}, nil); err != nil {
		c.t.Fatalf("mfa confirm: %v", err)
	}
	c.mu.Lock()
	c.secrets[dir] = en.Secret
	c.mu.Unlock()
	return s.Client
}

// repinAdmin writes the control plane's current bundle into the harness
// admin's directory and reopens its client: what an administrator does
// after a root rotation so that a new connection trusts the server's
// certificate under the new root.
func (c *cluster) repinAdmin() {
	c.t.Helper()
	cert, _, err := api.LoadCredentials(c.adminDir)
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	srv := c.srv
	c.mu.Unlock()
	if err := api.WriteCredentials(c.adminDir, cert, srv.CA().Bundle().X509Authorities()); err != nil {
		c.t.Fatal(err)
	}
	c.admin.Close()
	c.admin = c.mfaAdmin(c.adminDir)
}

// TestMFALockout: wrong codes, a guessed one among them, lock the second
// factor after MaxFailures; the right code is refused while locked and
// taken once the lockout has passed; detection raises the failures.
func TestMFALockout(t *testing.T) {
	c := newCluster(t)
	got := c.detecting(nil)
	ctx := context.Background()
	s, err := api.NewAdminSession(c.addr, c.adminDir, api.SessionConfig{Now: c.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	right := func() string {
		code, err := totp.GenerateCode(c.secrets[c.adminDir], c.clk.Now().Add(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	wrong := "000000"
	if wrong == right() {
		wrong = "000001"
	}
	for i := 1; i <= server.DefaultMFAMaxFailures; i++ {
		_, err := s.Login(ctx, wrong)
		if !errors.Is(err, api.ErrUnauthenticated) || !strings.Contains(err.Error(), "MFA code refused") {
			t.Fatalf("wrong code %d: %v", i, err)
		}
	}
	_, err = s.Login(ctx, right())
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusTooManyRequests || !strings.HasPrefix(se.Msg, "MFA locked after 5 failed proofs (wrong codes, refused security keys): try again after ") {
		t.Fatalf("the right code while locked: %v", err)
	}
	eventually(t, "the mfa_failures alert", func() bool { return got.fired(detect.RuleMFAFailures) })
	c.clk.Advance(server.DefaultMFALockout + time.Second)
	if _, err := s.Login(ctx, right()); err != nil {
		t.Fatalf("the right code after the lockout: %v", err)
	}
}

// TestMFAConcurrentGuesses: a thief of an enrolment certificate who sends
// many wrong codes at once, to outrun the failure count, has no more of
// them judged than the lockout allows: every guess is counted before it is
// checked, so the burst ends in the lockout and the right code is refused.
func TestMFAConcurrentGuesses(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	valid := map[string]bool{}
	for skew := -2; skew <= 2; skew++ {
		code, err := totp.GenerateCode(c.secrets[c.adminDir], c.clk.Now().Add(time.Duration(skew)*30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		valid[code] = true
	}
	const burst = 64
	var guesses []string
	for i := 0; len(guesses) < burst; i++ {
		if g := fmt.Sprintf("%06d", 100000+i*7919); !valid[g] {
			guesses = append(guesses, g)
		}
	}
	sessions := make([]*api.AdminClient, burst)
	for i := range sessions {
		s, err := api.NewAdminSession(c.addr, c.adminDir, api.SessionConfig{Now: c.clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		// The connection is open before the burst.
		if err := s.Call(ctx, http.MethodGet, api.PathWhoami, nil, nil); err != nil {
			t.Fatal(err)
		}
		sessions[i] = s
	}
	start := make(chan struct{})
	errs := make([]error, burst)
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = sessions[i].Login(ctx, guesses[i])
		}()
	}
	close(start)
	wg.Wait()
	judged := 0
	for i, err := range errs {
		var se *api.StatusError
		switch {
		case errors.As(err, &se) && se.Code == http.StatusTooManyRequests:
		case err != nil && strings.Contains(err.Error(), "MFA code refused"):
			judged++
		default:
			t.Fatalf("guess %d (%s): %v", i, guesses[i], err)
		}
	}
	t.Logf("%d of %d concurrent wrong codes were judged; the others were refused as locked", judged, burst)
	if judged > server.DefaultMFAMaxFailures {
		t.Fatalf("%d wrong codes were judged in one burst, more than the %d the lockout allows", judged, server.DefaultMFAMaxFailures)
	}
	right, err := totp.GenerateCode(c.secrets[c.adminDir], c.clk.Now().Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var se *api.StatusError
	if _, err := sessions[0].Login(ctx, right); !errors.As(err, &se) || se.Code != http.StatusTooManyRequests {
		t.Fatalf("the right code after the burst: %v, want the lockout", err)
	}
}

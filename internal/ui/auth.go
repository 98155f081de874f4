package ui

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strings"
)

// cookieName holds the session secret.
const cookieName = "moat_ui"

// csrfHeader carries the CSRF token on every change.
const csrfHeader = "X-Moat-CSRF"

// csp admits the page's own scripts, styles and calls, nothing inline,
// nothing from elsewhere, and no framing.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	sub, _ := fs.Sub(static, "static")
	files := http.FileServerFS(sub)
	mux.Handle("GET /", files)
	mux.HandleFunc("GET /login", s.handleLogin)
	s.apiRoutes(func(method, path string, h func(http.ResponseWriter, *http.Request) error) {
		mux.Handle(method+" "+path, s.authed(h))
	})
	return s.guard(mux)
}

// guard sets the security headers of every answer and refuses a request
// that names another host (DNS rebinding), comes from another origin, or
// was made by another site's page.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		if !s.ownHost(r.Host) {
			http.Error(w, "moat ui: this dashboard answers only to its own address", http.StatusMisdirectedRequest)
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !s.ownOrigin(o) {
			http.Error(w, "moat ui: request from another origin", http.StatusForbidden)
			return
		}
		switch r.Header.Get("Sec-Fetch-Site") {
		case "", "same-origin", "none":
		default: // cross-site, or same-site: another port of this machine
			if !loginNavigation(r) {
				http.Error(w, "moat ui: request made by another site's page", http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// loginNavigation reports whether r is the browser's top-level
// navigation to the login address. The dashboard takes it from any page,
// where it takes nothing else but from its own: the page "moat ui --open"
// writes (a file, so another site to the browser) leads there, and the
// one-time token in the address is all the login needs and all it gives;
// the navigation carries no session, and a page that does not know the
// token gets a refusal. Framed, fetched or posted, it is still refused.
func loginNavigation(r *http.Request) bool {
	return r.Method == http.MethodGet && r.URL.Path == "/login" &&
		r.Header.Get("Sec-Fetch-Mode") == "navigate" && r.Header.Get("Sec-Fetch-Dest") == "document"
}

// ownHost reports whether host names the listener: its loopback address
// or localhost, with its port.
func (s *Server) ownHost(host string) bool {
	_, port, err := net.SplitHostPort(s.Addr())
	if err != nil {
		return false
	}
	h, p, err := net.SplitHostPort(host)
	if err != nil || p != port {
		return false
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (s *Server) ownOrigin(o string) bool {
	rest, ok := strings.CutPrefix(o, "http://")
	return ok && s.ownHost(rest)
}

// handleLogin trades the one-time token for the session cookie, once. It
// answers with a page that moves on to the dashboard rather than a
// redirect: a redirect continues the navigation, and one that came from
// another page (loginNavigation) would reach the dashboard as that page's
// request, which the guard refuses and which carries no SameSite=Strict
// cookie. The page's move is the dashboard's own.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	s.mu.Lock()
	ok := !s.loginUsed && equal(tok, s.login)
	if ok {
		s.loginUsed = true
		close(s.loggedIn)
	}
	s.mu.Unlock()
	if !ok {
		s.log.Warn("dashboard: a login with a wrong or used token was refused", "remote", r.RemoteAddr)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte("moat ui: this login address is wrong or was used already.\nStart \"moat ui\" again for a new one.\n"))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: s.session.text(), Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, loggedInPage)
}

// loggedInPage moves on to the dashboard, without a script (the CSP
// admits none inline).
const loggedInPage = `<!doctype html>
<meta charset="utf-8">
<meta http-equiv="refresh" content="0;url=/">
<title>moat dashboard</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<p>Signed in. <a href="/">Open the dashboard</a>.</p>
`

func equal(got string, want secret) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want.text())) == 1
}

// authed admits a request that carries the session cookie, and, unless it
// only reads, the CSRF token.
func (s *Server) authed(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(cookieName)
		if err != nil || !equal(c.Value, s.session) {
			writeError(w, http.StatusUnauthorized, "not signed in: open the address \"moat ui\" printed")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !equal(r.Header.Get(csrfHeader), s.csrf) {
				writeError(w, http.StatusForbidden, "missing or wrong CSRF token")
				return
			}
			if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
				writeError(w, http.StatusUnsupportedMediaType, "want application/json")
				return
			}
		}
		if err := h(w, r); err != nil {
			writeFailure(w, err)
		}
	})
}

// apiError is what the page shows when a call fails.
type apiError struct {
	Error string `json:"error"`
	// Status is the control plane's answer, when it refused.
	Status int `json:"status,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{Error: msg})
}

package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"

	"moat/internal/identity"
)

// Sentinel errors for answers a caller branches on.
var (
	ErrInvalid          = errors.New("invalid request")
	ErrUnauthenticated  = errors.New("unauthenticated")
	ErrPermissionDenied = errors.New("permission denied")
	ErrNotFound         = errors.New("not found")
	ErrConflict         = errors.New("conflict")
	ErrUnavailable      = errors.New("server unavailable")
	// ErrMFARequired is a call refused until the caller proves a second
	// factor afresh (an MFA session certificate).
	ErrMFARequired = errors.New("fresh MFA proof required")
	// ErrMFAStale is a grant certificate refused because the MFA session
	// presented began too long ago (ReasonMFAStale); it is also an
	// ErrMFARequired.
	ErrMFAStale = errors.New("MFA session too old for this call")
	// ErrNoCode is what a code source returns when the administrator gave
	// none: the call then fails with the server's refusal.
	ErrNoCode = errors.New("no code given")
)

// StatusError is a non-2xx answer.
type StatusError struct {
	Code   int
	Msg    string
	Reason string
	// RetryAfter is the answer's Retry-After in seconds, at most
	// maxRetryAfter; zero when it has none or one in another form.
	RetryAfter time.Duration
}

// maxRetryAfter bounds the wait a server's Retry-After can ask of a
// client.
const maxRetryAfter = 5 * time.Minute

func (e *StatusError) Error() string { return fmt.Sprintf("%s (%d)", e.Msg, e.Code) }

// Is maps HTTP status codes to the sentinels.
func (e *StatusError) Is(target error) bool {
	switch target {
	case ErrInvalid:
		return e.Code == http.StatusBadRequest
	case ErrUnauthenticated:
		return e.Code == http.StatusUnauthorized
	case ErrPermissionDenied:
		return e.Code == http.StatusForbidden
	case ErrNotFound:
		return e.Code == http.StatusNotFound
	case ErrConflict:
		return e.Code == http.StatusConflict
	case ErrUnavailable:
		return e.Code == http.StatusServiceUnavailable
	case ErrMFARequired:
		return e.Reason == ReasonMFARequired || e.Reason == ReasonMFAEnrol || e.Reason == ReasonMFAStale
	case ErrMFAStale:
		return e.Reason == ReasonMFAStale
	}
	return false
}

// Client calls the control plane. It knows every server of a cluster and
// fails over: a call, a watch or a join that cannot reach one server (or
// that one answers 503) goes to the next, and the server that answered
// last is tried first. Calls may therefore reach a second server after the
// first took them but its answer was lost: every control-plane call is
// safe to repeat (records by ID, puts, revocations), or says it was
// already done (a join token already used).
type Client struct {
	srv     *servers
	hcMu    sync.Mutex   // guards hc and retired
	hc      *http.Client // what calls are sent with
	retired *http.Client // the one before hc (see NewConnections)
	timeout time.Duration
	// OnStale, when set, is told when an answer was read from a store
	// that could not confirm it is current (see HeaderStale).
	OnStale func(reason string)
	// mfa, when set, is called once when a call is refused with
	// ErrMFARequired (by whichever server answered: a session certificate
	// serves them all); if it returns nil (a session certificate is now
	// presented), the call is sent again, failing over as any call. seen
	// is what sessionGen returned before the refused call was sent, so
	// that calls refused together ask for one code between them.
	mfa        func(ctx context.Context, seen uint64) error
	sessionGen func() uint64
	// before, when set, runs at the start of every call (an admin session
	// drops connections that present a certificate it no longer wants).
	before func()
}

// HeaderStale marks an answer read without the store's quorum: its value
// says why it may be stale.
const HeaderStale = "Moat-Stale-Read"

// DefaultTimeout bounds a Call whose context has no deadline.
const DefaultTimeout = 30 * time.Second

// NewClient returns a client of the control plane at servers (host:port,
// or several separated by commas; see ParseServers) over conf. Each Call
// whose context has no deadline gets DefaultTimeout.
func NewClient(servers string, conf *tls.Config) *Client {
	return &Client{srv: newServers(servers), hc: newHTTPClient(conf), timeout: DefaultTimeout}
}

// newHTTPClient returns a client whose transport holds a copy of conf of
// its own: a transport writes its TLS config's NextProtos on first use, so
// two transports on one config (a client and the one Reconnect made of it)
// would race, the first dialling while the second writes.
func newHTTPClient(conf *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:     conf.Clone(),
		ForceAttemptHTTP2:   true,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 15 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
		MaxIdleConnsPerHost: 4,
	}}
}

// Reconnect returns a client on new connections (new handshakes, so a
// renewed certificate is presented and a half-open connection dropped)
// that keeps this one's servers and which of them to try first.
func (c *Client) Reconnect() *Client {
	return &Client{srv: c.srv, hc: newHTTPClient(c.tlsConfig()), timeout: c.timeout, OnStale: c.OnStale, mfa: c.mfa, sessionGen: c.sessionGen, before: c.before}
}

// NewConnections sends every call from now on over new connections (new
// handshakes, so the certificate to present now is presented), leaving
// the calls under way to end on the connections they hold. Closing the
// idle connections is not enough: a connection still carrying a call
// would stay in the pool, and an HTTP/2 connection takes the next calls
// beside it, presenting the certificate of its handshake.
func (c *Client) NewConnections() {
	c.hcMu.Lock()
	old, older := c.hc, c.retired
	c.hc, c.retired = newHTTPClient(old.Transport.(*http.Transport).TLSClientConfig), old
	c.hcMu.Unlock()
	old.CloseIdleConnections()
	if older != nil {
		older.CloseIdleConnections()
	}
}

// httpClient is what a call is sent with.
func (c *Client) httpClient() *http.Client {
	c.hcMu.Lock()
	defer c.hcMu.Unlock()
	return c.hc
}

func (c *Client) tlsConfig() *tls.Config {
	return c.httpClient().Transport.(*http.Transport).TLSClientConfig
}

// SetTimeout changes the deadline of calls without one of their own;
// zero or less means none.
func (c *Client) SetTimeout(d time.Duration) { c.timeout = d }

// Close releases idle connections.
func (c *Client) Close() {
	c.hcMu.Lock()
	hc, retired := c.hc, c.retired
	c.hcMu.Unlock()
	hc.CloseIdleConnections()
	if retired != nil {
		retired.CloseIdleConnections()
	}
}

// Call sends in as JSON (nil for none) and decodes the answer into out (nil
// to discard it).
func (c *Client) Call(ctx context.Context, method, path string, in, out any) error {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	var payload []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("api: encode request: %w", err)
		}
		payload = b
	}
	return c.withMFA(ctx, func() error { return c.call(ctx, method, path, payload, out, failoverAny) })
}

// withMFA runs send and, when it is refused for want of a fresh second
// factor and the client can get one (mfa), gets it and runs send again.
// send must be safe to repeat after such a refusal: nothing of its answer
// was used.
func (c *Client) withMFA(ctx context.Context, send func() error) error {
	var seen uint64
	if c.sessionGen != nil {
		seen = c.sessionGen()
	}
	err := send()
	var se *StatusError
	if c.mfa != nil && errors.As(err, &se) && (se.Reason == ReasonMFARequired || se.Reason == ReasonMFAStale) {
		if merr := c.mfa(context.WithValue(ctx, refusalKey{}, se), seen); merr != nil {
			if errors.Is(merr, ErrNoCode) {
				return err // the server's refusal says what to do
			}
			return merr
		}
		err = send()
	}
	return err
}

// refusalKey is the context key of the refusal a prompt answers.
type refusalKey struct{}

// Refusal is the server's answer that made the client ask for a second
// factor, for a prompt that says why (nil outside one).
func Refusal(ctx context.Context) *StatusError {
	se, _ := ctx.Value(refusalKey{}).(*StatusError)
	return se
}

// deadline gives ctx the client's timeout when it has no deadline.
func (c *Client) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); !ok && c.timeout > 0 {
		return context.WithTimeout(ctx, c.timeout)
	}
	return ctx, func() {}
}

// call sends payload (nil for no body) once through the failover loop
// and decodes the answer into out.
func (c *Client) call(ctx context.Context, method, path string, payload []byte, out any, mode failoverMode) error {
	if c.before != nil {
		c.before()
	}
	resp, err := c.send(ctx, method, path, payload, mode)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return readError(resp)
	}
	if why := resp.Header.Get(HeaderStale); why != "" && c.OnStale != nil {
		c.OnStale(why)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return fmt.Errorf("api: decode %s answer: %w", path, err)
	}
	return nil
}

// send sends payload (nil for no body) to the servers in turn (see
// Client and failoverMode) and returns the first answer.
func (c *Client) send(ctx context.Context, method, path string, payload []byte, mode failoverMode) (*http.Response, error) {
	resp, err := c.do(ctx, mode, func(base string) (*http.Request, error) {
		var body io.Reader
		if payload != nil {
			body = bytes.NewReader(payload)
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, body)
		if err == nil && payload != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("api: %s %s: %w: no answer within the deadline", method, path, ErrUnavailable)
	}
	if err != nil {
		return nil, fmt.Errorf("api: %s %s: %w", method, path, err)
	}
	return resp, nil
}

// sendJSON is send for a value to encode as JSON (nil for no body).
func (c *Client) sendJSON(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var payload []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("api: encode request: %w", err)
		}
		payload = b
	}
	return c.send(ctx, method, path, payload, failoverAny)
}

func readError(resp *http.Response) error {
	var e Error
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(b))
		if e.Error == "" {
			e.Error = http.StatusText(resp.StatusCode)
		}
	}
	se := &StatusError{Code: resp.StatusCode, Msg: e.Error, Reason: e.Reason}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		se.RetryAfter = min(time.Duration(secs)*time.Second, maxRetryAfter)
	}
	return se
}

// Watch streams updates to fn until ctx ends, the stream breaks, fn returns
// an error, or (idle > 0) no frame arrives for idle. The server sends a
// heartbeat every few seconds, so idle should cover about three of them.
// It returns nil only when ctx ended.
func (c *Client) Watch(ctx context.Context, idle time.Duration, fn func(Update) error) error {
	return c.stream(ctx, PathWatch, idle, func(line []byte) error {
		var u Update
		if err := json.Unmarshal(line, &u); err != nil {
			return fmt.Errorf("api: watch frame: %w", err)
		}
		return fn(u)
	})
}

// CertSource returns the certificate to present; it is called at every
// handshake so rotations take effect without rebuilding anything.
type CertSource func() (*tls.Certificate, error)

// ClientTLS returns the TLS config of a node or admin calling the server:
// TLS 1.3, the caller's certificate from cert, and the server verified
// against trust as spiffe://<td>/server/<name>.
func ClientTLS(cert CertSource, trust *identity.Trust) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{"h2", "http/1.1"},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert == nil {
				return &tls.Certificate{}, nil
			}
			return cert()
		},
		// The server is checked in VerifyConnection, against moat's bundle
		// rather than the system roots.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return VerifyServer(trust, cs.PeerCertificates)
		},
	}
}

// VerifyServer checks that chain is a valid SVID of the control plane.
func VerifyServer(trust *identity.Trust, chain []*x509.Certificate) error {
	id, err := trust.Verify(chain)
	if err != nil {
		return fmt.Errorf("api: server certificate: %w", err)
	}
	if kind, _, ok := identity.Parse(id); !ok || kind != identity.KindServer {
		return fmt.Errorf("api: server certificate names %q, not a moat server", id)
	}
	return nil
}

// Pin returns the pin of a root certificate as join tokens carry it.
func Pin(root *x509.Certificate) string {
	sum := sha256.Sum256(root.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// TokenPrefix starts every join token.
const TokenPrefix = "moatjoin."

// SplitToken splits a join token into its secret and the pin of the root it
// expects the server to chain to.
func SplitToken(token string) (secret, pin string, err error) {
	rest, ok := strings.CutPrefix(token, TokenPrefix)
	if !ok {
		return "", "", fmt.Errorf("api: join token must start with %q", TokenPrefix)
	}
	secret, pin, ok = strings.Cut(rest, ".")
	if !ok || len(secret) < 32 || len(pin) != 43 {
		return "", "", errors.New("api: malformed join token")
	}
	return secret, pin, nil
}

// FetchBundle fetches the server's trust bundle without authenticating the
// server, then accepts it only if one root matches pin and the server's
// own certificate chains to that root. The pin vouches for its root
// alone: a bundle's other roots are taken on the word of a server that
// proved itself under it, never of one that sent the pinned root (anyone
// may read it) beside a root of its own. Nothing secret is sent.
//
// now is the clock the server's certificate is checked by; nil means
// time.Now.
func FetchBundle(ctx context.Context, addr string, pin string, now func() time.Time) (*x509bundle.Bundle, error) {
	var served []*x509.Certificate
	conf := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			served = cs.PeerCertificates
			return nil
		},
	}
	c := NewClient(addr, conf)
	defer c.Close()
	var resp CertResponse
	if err := c.Call(ctx, http.MethodGet, PathBundle, nil, &resp); err != nil {
		return nil, err
	}
	td, err := identity.ParseTrustDomain(resp.TrustDomain)
	if err != nil {
		return nil, fmt.Errorf("api: bundle: %w", err)
	}
	b := x509bundle.New(td)
	var pinned *x509.Certificate
	for _, der := range resp.Bundle {
		root, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("api: bundle: %w", err)
		}
		b.AddX509Authority(root)
		if Pin(root) == pin {
			pinned = root
		}
	}
	if pinned == nil {
		return nil, errors.New("api: the server's trust bundle does not hold the root the join token names: wrong server, or a forged token")
	}
	only := x509bundle.New(td)
	only.AddX509Authority(pinned)
	trust := identity.NewTrust(identity.TrustConfig{TrustDomain: td, Now: now})
	trust.Update(only, identity.Revocations{})
	if err := VerifyServer(trust, served); err != nil {
		return nil, fmt.Errorf("api: the server's certificate does not chain to the root the join token pins (wrong server, or a token made before a root rotation signed with a new root: make another): %w", err)
	}
	return b, nil
}

// ParseChain parses DER certificates.
func ParseChain(ders [][]byte) ([]*x509.Certificate, error) {
	out := make([]*x509.Certificate, 0, len(ders))
	for i, d := range ders {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, fmt.Errorf("api: certificate %d: %w", i, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("api: empty certificate chain")
	}
	return out, nil
}

// DERs returns the raw DER of each certificate.
func DERs(certs []*x509.Certificate) [][]byte {
	out := make([][]byte, len(certs))
	for i, c := range certs {
		out[i] = c.Raw
	}
	return out
}

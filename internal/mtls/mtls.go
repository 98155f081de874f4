// Package mtls builds the tls.Configs of moat's mesh: TLS 1.3 only, a
// certificate required on both sides, and the peer's SVID verified in
// VerifyConnection (which, unlike VerifyPeerCertificate, also runs on
// resumed sessions) against the live trust bundle and revocation list.
//
// Certificates come from callbacks at every handshake, so a rotated SVID is
// used by the next handshake without rebuilding any config or restarting a
// listener.
package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/flow"
	"moat/internal/identity"
)

// Verifier checks a peer's chain (leaf first) and returns its SPIFFE ID.
// *identity.Trust is the Verifier the mesh uses.
type Verifier interface {
	Verify(chain []*x509.Certificate) (spiffeid.ID, error)
}

// ErrUnexpectedPeer is returned when a verified server is not the identity
// the client meant to reach.
var ErrUnexpectedPeer = errors.New("mtls: unexpected peer identity")

// ServerConfig configures a server side.
type ServerConfig struct {
	// Verifier checks every client chain. Required.
	Verifier Verifier
	// GetCertificate returns the certificate to present for a ClientHello
	// (usually chosen by its ServerName). Required.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// Authorize, if set, is called with the verified client identity; an
	// error refuses the handshake. Nil admits every verified client.
	Authorize func(peer spiffeid.ID, cs tls.ConnectionState) error
	// NextProtos are the ALPN protocols offered.
	NextProtos []string
	// Now is the clock for session tickets; nil means time.Now.
	Now func() time.Time
}

// Server returns a server tls.Config that requires a client certificate and
// verifies it with c.Verifier. A handshake with no certificate, a chain the
// Verifier refuses, or an identity Authorize refuses fails.
func Server(c ServerConfig) (*tls.Config, error) {
	if c.Verifier == nil || c.GetCertificate == nil {
		return nil, errors.New("mtls: server needs a Verifier and GetCertificate")
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		MaxVersion:     tls.VersionTLS13,
		ClientAuth:     tls.RequireAnyClientCert, // verified in VerifyConnection against the live bundle
		GetCertificate: c.GetCertificate,
		NextProtos:     c.NextProtos,
		Time:           c.Now,
		// Resumed sessions would skip the client's certificate message; a
		// full handshake every time keeps revocation checks honest and the
		// pool makes handshakes rare anyway.
		SessionTicketsDisabled: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			id, err := c.Verifier.Verify(cs.PeerCertificates)
			if err != nil {
				return fmt.Errorf("mtls: client: %w", err)
			}
			if c.Authorize != nil {
				if err := c.Authorize(id, cs); err != nil {
					return fmt.Errorf("mtls: client %q: %w", id, err)
				}
			}
			return nil
		},
	}, nil
}

// ClientConfig configures a client side.
type ClientConfig struct {
	// Verifier checks the server's chain. Required.
	Verifier Verifier
	// GetClientCertificate returns the certificate to present. Required.
	GetClientCertificate func(*tls.CertificateRequestInfo) (*tls.Certificate, error)
	// ServerName is sent as SNI.
	ServerName string
	// Expect lists the identities the server may have (for the mesh: the
	// destination service). Empty means any identity the Verifier accepts,
	// which only tests should want; Client refuses it unless Authorize is set.
	Expect []spiffeid.ID
	// Authorize, if set, replaces Expect with a check of its own.
	Authorize  func(peer spiffeid.ID, cs tls.ConnectionState) error
	NextProtos []string
	Now        func() time.Time
}

// Client returns a client tls.Config that presents a certificate and accepts
// only a server the Verifier accepts and that is one of c.Expect.
func Client(c ClientConfig) (*tls.Config, error) {
	if c.Verifier == nil || c.GetClientCertificate == nil {
		return nil, errors.New("mtls: client needs a Verifier and GetClientCertificate")
	}
	if len(c.Expect) == 0 && c.Authorize == nil {
		return nil, errors.New("mtls: client needs the expected server identity")
	}
	expect := append([]spiffeid.ID(nil), c.Expect...)
	return &tls.Config{
		MinVersion:           tls.VersionTLS13,
		MaxVersion:           tls.VersionTLS13,
		ServerName:           c.ServerName,
		GetClientCertificate: c.GetClientCertificate,
		NextProtos:           c.NextProtos,
		Time:                 c.Now,
		// The chain is verified against the live SPIFFE bundle below, not
		// against the system roots or a host name.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			id, err := c.Verifier.Verify(cs.PeerCertificates)
			if err != nil {
				return fmt.Errorf("mtls: server: %w", err)
			}
			if c.Authorize != nil {
				if err := c.Authorize(id, cs); err != nil {
					return fmt.Errorf("mtls: server %q: %w", id, err)
				}
				return nil
			}
			for _, want := range expect {
				if id == want {
					return nil
				}
			}
			return fmt.Errorf("%w: got %q, want %q", ErrUnexpectedPeer, id, expect)
		},
	}, nil
}

// Static returns a GetCertificate-style callback that always presents cert;
// for tests and fixed identities.
func Static(cert *tls.Certificate) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
}

// VersionName returns "TLSv1.3" style names, as flow records spell them.
func VersionName(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case 0:
		return "none"
	}
	return fmt.Sprintf("0x%04x", v)
}

// ReasonCode maps the error a peer's certificate was refused with (a
// Verifier's, identity.Trust's, or ErrUnexpectedPeer), wrapped or not, to
// the flow reason code its refusal is recorded under: the one home of that
// mapping, for the mesh's handshakes and the access tunnel's alike. It
// returns "" for any other error (a TLS failure that is no verdict on a
// certificate), which the caller names.
func ReasonCode(err error) string {
	switch {
	case errors.Is(err, identity.ErrRevoked):
		return flow.ReasonRevoked
	case errors.Is(err, identity.ErrExpired), errors.Is(err, identity.ErrNotYetValid):
		return flow.ReasonExpired
	case errors.Is(err, identity.ErrUnknownAuthority), errors.Is(err, identity.ErrNoBundle):
		return flow.ReasonUnknownAuthority
	case errors.Is(err, identity.ErrNotSVID), errors.Is(err, identity.ErrWrongTrustDomain), errors.Is(err, identity.ErrLeafIsCA),
		errors.Is(err, identity.ErrLeafCanSign), errors.Is(err, identity.ErrMissingUsage), errors.Is(err, identity.ErrNoCertificate),
		errors.Is(err, ErrUnexpectedPeer):
		return flow.ReasonBadCertificate
	}
	return ""
}

package identity

import (
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Admin certificates come in three shapes, all naming
// spiffe://<td>/admin/<name>:
//
//   - the enrolment credential (30 days by default), which alone is enough
//     for reads and for the calls the control plane does not hold sensitive;
//   - an MFA session certificate (minutes), issued only after a fresh second
//     factor: it carries the certificate policy MFASessionPolicy(method);
//     sensitive calls need one;
//   - an access-grant certificate, carrying GrantPolicy(id): what an
//     administrator presents to a node's agent for a break-glass session.
//     The control plane refuses it on its API, and agents refuse every
//     admin certificate that is not one.
//
// Each of them also carries AccountPolicy(account): the account the name
// belonged to when it was issued. A name outlives its account (an account
// removed and made again takes the same SPIFFE ID), the account ID does
// not, so a certificate of an earlier account of the name is told apart
// from the current one's. Certificates issued before accounts carried an
// ID have no such mark.
//
// The marks are certificate policies (RFC 5280 §4.2.1.4: the policy under
// which a certificate was issued), so generic verifiers accept the chain and
// moat reads them after verification. The OIDs sit under 2.25 (ITU-T X.667,
// an arc derived from a UUID that needs no registration).
const oidMoat = "2.25.208933575103745561806490115447508757520"

// MFA methods, as the session policy names them.
const (
	MFATOTP     = "totp"
	MFAWebAuthn = "webauthn"
)

var mfaArcs = map[string]int{MFATOTP: 1, MFAWebAuthn: 2}

// ErrBadPolicy is returned for a certificate carrying moat policies that do
// not make sense together or do not parse.
var ErrBadPolicy = errors.New("identity: malformed moat certificate policy")

// MFASessionPolicy returns the policy of a session certificate whose second
// factor used method.
func MFASessionPolicy(method string) (x509.OID, error) {
	arc, ok := mfaArcs[method]
	if !ok {
		return x509.OID{}, fmt.Errorf("identity: unknown MFA method %q", method)
	}
	return x509.ParseOID(fmt.Sprintf("%s.1.%d", oidMoat, arc))
}

// GrantPolicy returns the policy of an access-grant certificate for the
// grant id, which must be lowercase hex of at most 32 digits (see
// ValidGrantID).
func GrantPolicy(id string) (x509.OID, error) {
	if err := ValidGrantID(id); err != nil {
		return x509.OID{}, err
	}
	n, _ := new(big.Int).SetString(id, 16)
	return x509.ParseOID(fmt.Sprintf("%s.2.%s", oidMoat, n.String()))
}

// AccountPolicy returns the policy naming the administrator account id (of
// the form ValidAccountID checks) that a certificate was issued to.
func AccountPolicy(id string) (x509.OID, error) {
	if err := ValidAccountID(id); err != nil {
		return x509.OID{}, err
	}
	n, _ := new(big.Int).SetString(id, 16)
	return x509.ParseOID(fmt.Sprintf("%s.3.%s", oidMoat, n.String()))
}

// JoinPolicy returns the policy of a node certificate issued under the
// node's join id (of the form ValidAccountID checks): every certificate of
// a node names the join it descends from, so that those of an earlier
// join are told apart once the node joins again (see ReadJoin).
func JoinPolicy(id string) (x509.OID, error) {
	if err := validHexID("join", id); err != nil {
		return x509.OID{}, err
	}
	n, _ := new(big.Int).SetString(id, 16)
	return x509.ParseOID(fmt.Sprintf("%s.4.%s", oidMoat, n.String()))
}

// ReadJoin reads the join mark of a node certificate: "" for a
// certificate without one (issued before node certificates carried it).
// Any other moat policy, or two join marks, is an error.
func ReadJoin(leaf *x509.Certificate) (string, error) {
	join := ""
	for _, p := range leaf.Policies {
		rest, ok := strings.CutPrefix(p.String(), oidMoat+".")
		if !ok {
			continue
		}
		val, ok := strings.CutPrefix(rest, "4.")
		n, isNum := new(big.Int).SetString(val, 10)
		if !ok || !isNum || join != "" || n.Sign() <= 0 {
			return "", ErrBadPolicy
		}
		join = n.Text(16)
		if validHexID("join", join) != nil {
			return "", ErrBadPolicy
		}
	}
	return join, nil
}

// ValidGrantID checks the form of an access grant ID: 1 to 32 lowercase
// hex digits, no leading zero.
func ValidGrantID(id string) error { return validHexID("grant", id) }

// ValidAccountID checks the form of an administrator account ID, which is
// that of a grant ID.
func ValidAccountID(id string) error { return validHexID("account", id) }

func validHexID(what, id string) error {
	if id == "" || len(id) > 32 || id[0] == '0' {
		return fmt.Errorf("%w: %s ID %q (want 1 to 32 lowercase hex digits, the first not 0)", ErrBadName, what, trim(id))
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("%w: %s ID %q (want 1 to 32 lowercase hex digits, the first not 0)", ErrBadName, what, trim(id))
		}
	}
	return nil
}

func trim(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// AdminMarks are the moat policies an admin certificate carries.
type AdminMarks struct {
	// MFA is the method of the second factor behind a session certificate,
	// "" for any other certificate.
	MFA string
	// Grant is the access grant of a grant certificate, "" otherwise.
	Grant string
	// Account is the administrator account the certificate was issued
	// to, "" for a certificate issued before accounts carried an ID.
	Account string
}

// ReadAdminMarks reads the moat policies of leaf. Anything under moat's arc
// that it does not understand, or a certificate that claims both a session
// and a grant, is an error: such a certificate is refused, never read as a
// plain one.
func ReadAdminMarks(leaf *x509.Certificate) (AdminMarks, error) {
	var m AdminMarks
	for _, p := range leaf.Policies {
		s := p.String()
		rest, ok := strings.CutPrefix(s, oidMoat+".")
		if !ok {
			continue
		}
		kind, val, ok := strings.Cut(rest, ".")
		if !ok || strings.Contains(val, ".") {
			return AdminMarks{}, ErrBadPolicy
		}
		switch kind {
		case "1":
			if m.MFA != "" {
				return AdminMarks{}, ErrBadPolicy
			}
			for name, arc := range mfaArcs {
				if val == fmt.Sprint(arc) {
					m.MFA = name
				}
			}
			if m.MFA == "" {
				return AdminMarks{}, ErrBadPolicy
			}
		case "2":
			n, ok := new(big.Int).SetString(val, 10)
			if !ok || m.Grant != "" || n.Sign() <= 0 {
				return AdminMarks{}, ErrBadPolicy
			}
			m.Grant = n.Text(16)
			if ValidGrantID(m.Grant) != nil {
				return AdminMarks{}, ErrBadPolicy
			}
		case "3":
			n, ok := new(big.Int).SetString(val, 10)
			if !ok || m.Account != "" || n.Sign() <= 0 {
				return AdminMarks{}, ErrBadPolicy
			}
			m.Account = n.Text(16)
			if ValidAccountID(m.Account) != nil {
				return AdminMarks{}, ErrBadPolicy
			}
		default:
			return AdminMarks{}, ErrBadPolicy
		}
	}
	if m.MFA != "" && m.Grant != "" {
		return AdminMarks{}, ErrBadPolicy
	}
	return m, nil
}

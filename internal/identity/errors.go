package identity

import "errors"

// Reasons a chain is refused. Verify wraps exactly one of these, so callers
// (flow records, metrics, detection) can branch and count by reason.
var (
	ErrBadName          = errors.New("identity: bad name")
	ErrBadTrustDomain   = errors.New("identity: bad trust domain")
	ErrNoCertificate    = errors.New("identity: no certificate")
	ErrNotSVID          = errors.New("identity: not an X.509-SVID")
	ErrWrongTrustDomain = errors.New("identity: wrong trust domain")
	ErrLeafIsCA         = errors.New("identity: leaf certificate is a CA")
	ErrLeafCanSign      = errors.New("identity: leaf certificate may sign certificates or CRLs")
	ErrMissingUsage     = errors.New("identity: leaf certificate lacks a required usage")
	ErrExpired          = errors.New("identity: certificate expired")
	ErrNotYetValid      = errors.New("identity: certificate not yet valid")
	ErrUnknownAuthority = errors.New("identity: certificate signed by unknown authority")
	ErrRevoked          = errors.New("identity: identity revoked")
	ErrNoBundle         = errors.New("identity: no trust bundle yet")
)

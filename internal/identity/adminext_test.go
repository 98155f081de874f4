package identity

import (
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"testing"
)

// oidOf returns a function that fails t on an error and returns the OID.
func oidOf(t testing.TB) func(x509.OID, error) x509.OID {
	return func(o x509.OID, err error) x509.OID {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
}

// TestAdminMarks: each mark reads back as written; marks that do not make
// sense together, or moat policies it does not know, are refused.
func TestAdminMarks(t *testing.T) {
	mustOID := oidOf(t)
	totp := mustOID(MFASessionPolicy(MFATOTP))
	webauthn := mustOID(MFASessionPolicy(MFAWebAuthn))
	grant := mustOID(GrantPolicy("1f2e3d"))
	account := mustOID(AccountPolicy("a1b2c3"))
	account2 := mustOID(AccountPolicy("d4e5f6"))
	other := mustOID(x509.ParseOID("1.2.3.4"))
	unknown := mustOID(x509.ParseOID(oidMoat + ".9.1"))
	badMFA := mustOID(x509.ParseOID(oidMoat + ".1.7"))
	for _, tc := range []struct {
		name     string
		policies []x509.OID
		want     AdminMarks
		err      error
	}{
		{"none", nil, AdminMarks{}, nil},
		{"another's policy is ignored", []x509.OID{other}, AdminMarks{}, nil},
		{"a TOTP session", []x509.OID{totp, other}, AdminMarks{MFA: MFATOTP}, nil},
		{"a WebAuthn session", []x509.OID{webauthn}, AdminMarks{MFA: MFAWebAuthn}, nil},
		{"a grant", []x509.OID{grant}, AdminMarks{Grant: "1f2e3d"}, nil},
		{"an enrolment certificate's account", []x509.OID{account}, AdminMarks{Account: "a1b2c3"}, nil},
		{"a session of an account", []x509.OID{totp, account}, AdminMarks{MFA: MFATOTP, Account: "a1b2c3"}, nil},
		{"a grant of an account", []x509.OID{grant, account}, AdminMarks{Grant: "1f2e3d", Account: "a1b2c3"}, nil},
		{"two accounts", []x509.OID{account, account2}, AdminMarks{}, ErrBadPolicy},
		{"an account of ID zero", []x509.OID{mustOID(x509.ParseOID(oidMoat + ".3.0"))}, AdminMarks{}, ErrBadPolicy},
		{"a session and a grant", []x509.OID{totp, grant}, AdminMarks{}, ErrBadPolicy},
		{"two sessions", []x509.OID{totp, webauthn}, AdminMarks{}, ErrBadPolicy},
		{"an unknown moat policy", []x509.OID{unknown}, AdminMarks{}, ErrBadPolicy},
		{"an unknown MFA method", []x509.OID{badMFA}, AdminMarks{}, ErrBadPolicy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadAdminMarks(&x509.Certificate{Policies: tc.policies})
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

// FuzzReadAdminMarks: whatever policies a certificate carries, reading
// its marks never panics, and a mark read is one that the certificate
// carries exactly as moat writes it.
func FuzzReadAdminMarks(f *testing.F) {
	for _, s := range []string{
		oidMoat + ".1.1", oidMoat + ".1.2", oidMoat + ".2.123456789", oidMoat + ".2.0",
		oidMoat + ".1.1," + oidMoat + ".2.5", "1.2.3," + oidMoat + ".3", oidMoat + ".2.340282366920938463463374607431768211455",
		oidMoat + ".2.340282366920938463463374607431768211456", oidMoat + ".2.1.1",
		oidMoat + ".3.123456789", oidMoat + ".1.1," + oidMoat + ".3.5", oidMoat + ".3.1," + oidMoat + ".3.2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var pols []x509.OID
		for _, part := range strings.Split(s, ",") {
			if o, err := x509.ParseOID(part); err == nil {
				pols = append(pols, o)
			}
		}
		m, err := ReadAdminMarks(&x509.Certificate{Policies: pols})
		if err != nil {
			if !errors.Is(err, ErrBadPolicy) {
				t.Fatalf("error %v is not ErrBadPolicy", err)
			}
			return
		}
		if m.MFA != "" && m.Grant != "" {
			t.Fatalf("both marks: %+v", m)
		}
		has := func(o x509.OID) bool { return slices.ContainsFunc(pols, o.Equal) }
		mustOID := oidOf(t)
		if m.MFA != "" && !has(mustOID(MFASessionPolicy(m.MFA))) {
			t.Fatalf("MFA %q read from %q, which does not carry its policy", m.MFA, s)
		}
		if m.Grant != "" && !has(mustOID(GrantPolicy(m.Grant))) {
			t.Fatalf("grant %q read from %q, which does not carry its policy", m.Grant, s)
		}
		if m.Account != "" && !has(mustOID(AccountPolicy(m.Account))) {
			t.Fatalf("account %q read from %q, which does not carry its policy", m.Account, s)
		}
	})
}

// TestJoinMark: a node certificate's join reads back as written; a join
// of ID zero, two joins or another moat mark on a node certificate are
// refused, and an admin certificate does not carry one.
func TestJoinMark(t *testing.T) {
	mustOID := oidOf(t)
	join := mustOID(JoinPolicy("1f2e3d"))
	other := mustOID(x509.ParseOID("1.2.3.4"))
	for _, tc := range []struct {
		name     string
		policies []x509.OID
		want     string
		err      error
	}{
		{"none", nil, "", nil},
		{"another's policy is ignored", []x509.OID{other}, "", nil},
		{"a join", []x509.OID{join, other}, "1f2e3d", nil},
		{"two joins", []x509.OID{join, mustOID(JoinPolicy("abc"))}, "", ErrBadPolicy},
		{"a join of ID zero", []x509.OID{mustOID(x509.ParseOID(oidMoat + ".4.0"))}, "", ErrBadPolicy},
		{"an account mark", []x509.OID{mustOID(AccountPolicy("a1b2c3"))}, "", ErrBadPolicy},
		{"a join with more arcs", []x509.OID{mustOID(x509.ParseOID(oidMoat + ".4.1.2"))}, "", ErrBadPolicy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadJoin(&x509.Certificate{Policies: tc.policies})
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Fatalf("got %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
	if _, err := JoinPolicy("0abc"); err == nil {
		t.Fatal("a join ID with a leading zero made a policy")
	}
	if _, err := ReadAdminMarks(&x509.Certificate{Policies: []x509.OID{join}}); !errors.Is(err, ErrBadPolicy) {
		t.Fatalf("an admin certificate with a join mark: %v", err)
	}
}

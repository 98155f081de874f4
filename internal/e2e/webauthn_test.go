package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/pquerna/otp/totp"

	"moat/internal/api"
	"moat/internal/detect"
	"moat/internal/identity"
	"moat/internal/server"
	"moat/internal/testkit"
)

// softKey is a software security key: a P-256 key that answers WebAuthn
// ceremonies as a browser with a hardware key would, with "none"
// attestation and a signature counter.
type softKey struct {
	t      *testing.T
	key    *ecdsa.PrivateKey
	id     []byte
	count  uint32
	origin string // the page the browser is on
}

func newSoftKey(t *testing.T, origin string) *softKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	rand.Read(id)
	return &softKey{t: t, key: key, id: id, origin: origin}
}

var b64 = base64.RawURLEncoding

// options is the part of a ceremony's options an authenticator reads.
type options struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RPID      string `json:"rpId"`
		RP        struct {
			ID string `json:"id"`
		} `json:"rp"`
	} `json:"publicKey"`
}

func (k *softKey) clientData(typ, challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": k.origin, "crossOrigin": false})
	return b
}

// authData is the authenticator data for rpID, with flags and, when
// attested, the credential's ID and COSE public key.
func (k *softKey) authData(rpID string, flags byte, attested bool) []byte {
	h := sha256.Sum256([]byte(rpID))
	var b bytes.Buffer
	b.Write(h[:])
	b.WriteByte(flags)
	binary.Write(&b, binary.BigEndian, k.count)
	if attested {
		b.Write(make([]byte, 16)) // AAGUID: none
		binary.Write(&b, binary.BigEndian, uint16(len(k.id)))
		b.Write(k.id)
		x, y := make([]byte, 32), make([]byte, 32)
		k.key.X.FillBytes(x)
		k.key.Y.FillBytes(y)
		cose, err := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: x, -3: y})
		if err != nil {
			k.t.Fatal(err)
		}
		b.Write(cose)
	}
	return b.Bytes()
}

// create answers navigator.credentials.create() with options.
func (k *softKey) create(opts json.RawMessage) json.RawMessage {
	var o options
	if err := json.Unmarshal(opts, &o); err != nil {
		k.t.Fatalf("creation options: %v: %s", err, opts)
	}
	att, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": k.authData(o.PublicKey.RP.ID, 0x41, true)})
	if err != nil {
		k.t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"response": map[string]string{"clientDataJSON": b64.EncodeToString(k.clientData("webauthn.create", o.PublicKey.Challenge)),
			"attestationObject": b64.EncodeToString(att)}})
	return b
}

// get answers navigator.credentials.get() with options: user presence,
// the counter one up, a signature over the authenticator data and the
// client data's hash.
func (k *softKey) get(_ context.Context, opts json.RawMessage) (json.RawMessage, error) {
	var o options
	if err := json.Unmarshal(opts, &o); err != nil {
		return nil, err
	}
	k.count++
	ad := k.authData(o.PublicKey.RPID, 0x01, false)
	cd := k.clientData("webauthn.get", o.PublicKey.Challenge)
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(map[string]any{"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"response": map[string]string{"clientDataJSON": b64.EncodeToString(cd), "authenticatorData": b64.EncodeToString(ad),
			"signature": b64.EncodeToString(sig)}})
	return b, nil
}

// TestWebAuthnSecurityKey: an administrator registers a security key
// after a TOTP proof, then trades an assertion of it for the same
// short-lived MFA session a code buys, which the sensitive calls take.
// Registering without a fresh proof, a replayed assertion, an assertion
// made for another origin and a cloned key's are refused; detection
// reports the registration and counts the refusals.
func TestWebAuthnSecurityKey(t *testing.T) {
	c := newCluster(t)
	const origin = "https://moat.example.com"
	c.mu.Lock()
	c.mfa = server.MFAConfig{WebAuthn: &server.WebAuthnConfig{RPID: "moat.example.com", Origins: []string{origin}}}
	c.mu.Unlock()
	got := c.detecting(nil)
	ctx := context.Background()
	c.clk.Advance(time.Minute) // past every code the harness used

	s, err := api.NewAdminSession(c.addr, c.adminDir, api.SessionConfig{Now: c.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	call := func(path string, in, out any) error {
		cctx, ccancel := context.WithTimeout(ctx, testkit.WaitLimit)
		defer ccancel()
		return s.Call(cctx, http.MethodPost, path, in, out)
	}

	t.Log("registering a key needs a fresh TOTP proof")
	var opts json.RawMessage
	if err := call(api.PathWebAuthnRegisterBegin, api.WebAuthnRegisterBegin{Name: "yubikey"}, &opts); !errors.Is(err, api.ErrMFARequired) {
		t.Fatalf("register without an MFA session: %v", err)
	}
	code, err := totp.GenerateCode(c.secrets[c.adminDir], c.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Login(ctx, code); err != nil {
		t.Fatal(err)
	}
	key := newSoftKey(t, origin)
	if err := call(api.PathWebAuthnRegisterBegin, api.WebAuthnRegisterBegin{Name: "yubikey"}, &opts); err != nil {
		t.Fatal(err)
	}
	att := key.create(opts)
	var reg api.SecurityKey
	if err := call(api.PathWebAuthnRegister, api.WebAuthnRegistration{Credential: att}, &reg); err != nil || reg.Name != "yubikey" {
		t.Fatalf("register: %+v, %v", reg, err)
	}
	if err := call(api.PathWebAuthnRegister, api.WebAuthnRegistration{Credential: att}, nil); err == nil || !strings.Contains(err.Error(), "no security key register is under way") {
		t.Fatalf("the registration sent again: %v", err)
	}
	var st api.MFAStatus
	if err := s.Call(ctx, http.MethodGet, api.PathMFA, nil, &st); err != nil || len(st.SecurityKeys) != 1 || st.SecurityKeys[0].Name != "yubikey" {
		t.Fatalf("status: %+v, %v", st, err)
	}
	eventually(t, "the mfa_change alert", func() bool { return got.fired(detect.RuleMFAChange) })

	t.Log("without a session the sensitive calls are refused; the key's assertion buys one")
	if _, err := s.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	policy := api.PolicyRequest{YAML: "default: deny\n"}
	if err := call(api.PathPolicy, policy, nil); !errors.Is(err, api.ErrMFARequired) {
		t.Fatalf("policy apply without a session: %v", err)
	}
	var last json.RawMessage
	recording := func(ctx context.Context, o json.RawMessage) (json.RawMessage, error) {
		b, err := key.get(ctx, o)
		last = b
		return b, err
	}
	leaf, err := s.WebAuthnLogin(ctx, recording)
	if err != nil {
		t.Fatalf("webauthn login: %v", err)
	}
	if m, err := identity.ReadAdminMarks(leaf); err != nil || m.MFA != identity.MFAWebAuthn {
		t.Fatalf("session marks: %+v, %v", m, err)
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got > server.DefaultMFASessionTTL+5*time.Minute {
		t.Fatalf("the session lives %s", got)
	}
	if err := call(api.PathPolicy, policy, nil); err != nil {
		t.Fatalf("policy apply with the key's session: %v", err)
	}

	refused := func(what string, assert api.Assert) {
		t.Helper()
		_, err := s.WebAuthnLogin(ctx, assert)
		if !errors.Is(err, api.ErrUnauthenticated) || !strings.Contains(err.Error(), "security key assertion refused") {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%s: %v", what, err)
	}
	t.Log("a replayed assertion is refused")
	replayed := last
	refused("a replayed assertion", func(context.Context, json.RawMessage) (json.RawMessage, error) { return replayed, nil })
	t.Log("an assertion made on another origin (a phishing page) is refused")
	phished := *key
	phished.origin = "https://moat.example.com.evil.test"
	refused("another origin", phished.get)
	key.count = phished.count
	t.Log("a key whose counter goes backwards (a clone) is refused")
	clone := *key
	clone.count = 0
	refused("a cloned key", clone.get)
	eventually(t, "the mfa_failures alert", func() bool { return got.fired(detect.RuleMFAFailures) })

	t.Log("the key still works, and removing it needs a fresh proof")
	if _, err := s.WebAuthnLogin(ctx, key.get); err != nil {
		t.Fatalf("webauthn login after the refusals: %v", err)
	}
	if err := call(api.PathWebAuthnRemove, api.WebAuthnRegisterBegin{Name: "yubikey"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WebAuthnLogin(ctx, key.get); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("login with a removed key: %v", err)
	}
}

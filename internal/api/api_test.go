package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestSplitToken(t *testing.T) {
	secret := strings.Repeat("s", 43)
	pin := strings.Repeat("p", 43)
	s, p, err := SplitToken(TokenPrefix + secret + "." + pin)
	if err != nil || s != secret || p != pin {
		t.Fatalf("good token: %q %q %v", s, p, err)
	}
	for _, bad := range []string{"", secret, TokenPrefix + secret, TokenPrefix + "short." + pin, TokenPrefix + secret + ".short", "moatjoin" + secret + "." + pin} {
		if _, _, err := SplitToken(bad); err == nil {
			t.Errorf("SplitToken(%q) accepted", bad)
		}
	}
}

func TestStatusErrorMapsToSentinels(t *testing.T) {
	cases := map[int]error{
		http.StatusBadRequest: ErrInvalid, http.StatusUnauthorized: ErrUnauthenticated,
		http.StatusForbidden: ErrPermissionDenied, http.StatusNotFound: ErrNotFound,
		http.StatusConflict: ErrConflict, http.StatusServiceUnavailable: ErrUnavailable,
	}
	for code, want := range cases {
		err := error(&StatusError{Code: code, Msg: "x"})
		if !errors.Is(err, want) {
			t.Errorf("%d does not match %v", code, want)
		}
		for other, sentinel := range cases {
			if other != code && errors.Is(err, sentinel) {
				t.Errorf("%d also matches %v", code, sentinel)
			}
		}
	}
}

func FuzzSplitToken(f *testing.F) {
	f.Add(TokenPrefix + strings.Repeat("a", 43) + "." + strings.Repeat("b", 43))
	f.Add("moatjoin..")
	f.Fuzz(func(t *testing.T, tok string) {
		s, p, err := SplitToken(tok)
		if err == nil && TokenPrefix+s+"."+p != tok {
			t.Fatalf("split of %q does not rebuild it", tok)
		}
	})
}

func FuzzUpdateFrame(f *testing.F) {
	f.Add([]byte(`{"revision":3,"full":true,"services":[{"name":"api","node":"n1","port":80}]}`))
	f.Add([]byte(`{"revocations":{"version":1,"serials":["ab"]}}`))
	f.Fuzz(func(t *testing.T, frame []byte) {
		var u Update
		if json.Unmarshal(frame, &u) != nil {
			return
		}
		b, err := json.Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		var again Update
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatalf("re-encoded frame does not decode: %v", err)
		}
	})
}

package server

import (
	"fmt"
	"net/http"
	"testing"

	"moat/internal/store"
)

// TestRefusalReasons: each refused call is counted under the reason its
// answer gives, a store that cannot be read under its own (the caller sent
// nothing wrong) rather than as a bad request.
func TestRefusalReasons(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{errorf(http.StatusUnauthorized, "no certificate"), reasonUnauthenticated},
		{errorf(http.StatusForbidden, "role too weak"), reasonForbidden},
		{errorf(http.StatusTooManyRequests, "slow down"), reasonRateLimited},
		{errorf(http.StatusBadRequest, "bad body"), reasonBadRequest},
		{fmt.Errorf("store: get %q: %w: no etcd quorum (1 of 3 members reachable)", "tokens/x", store.ErrUnavailable), reasonStoreUnavailable},
	} {
		if got := reasonOf(c.err); got != c.want {
			t.Errorf("reasonOf(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"moat/internal/api"
	"moat/internal/identity"
)

// TestFlowBatchLeftWaitingIsNotAcknowledged: a batch whose request ends
// while it waits for a decoding slot (the server stopping, the sender gone)
// is answered with an error, never with an empty 200 that a shipper would
// take as stored and delete from its spool.
func TestFlowBatchLeftWaitingIsNotAcknowledged(t *testing.T) {
	f := newAuthFixture(t)
	s := f.srv
	for len(s.flowSlots) < cap(s.flowSlots) {
		s.flowSlots <- struct{}{}
	}
	t.Cleanup(func() {
		for len(s.flowSlots) > 0 {
			<-s.flowSlots
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, api.PathFlows, strings.NewReader(`[]`))
	w := httptest.NewRecorder()
	id, err := identity.NodeID(s.td, "n1")
	if err != nil {
		t.Fatal(err)
	}
	s.handleFlows(w, r, &caller{ID: id.String(), Kind: identity.KindNode, Name: "n1"})
	if w.Code/100 == 2 {
		t.Fatalf("an abandoned batch answered %d %q; want an error the shipper retries", w.Code, w.Body.String())
	}
}

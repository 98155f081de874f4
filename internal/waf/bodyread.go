package waf

import (
	"bytes"
	"io"
	"sync"

	"github.com/corazawaf/coraza/v3/types"
)

// smallBody is the largest declared body length readBody reads into a
// pooled buffer of its own.
const smallBody = 32<<10 - 1

// bodyBuffers holds smallBody+1 bytes each.
var bodyBuffers = sync.Pool{New: func() any {
	b := make([]byte, smallBody+1)
	return &b
}}

// readBody hands the request body to Coraza, as tx.ReadRequestBodyFrom
// does. That copies through io.CopyN, which makes a fresh 32 KiB buffer
// for every body (neither side of the copy offers one): a third of a
// small POST's garbage. A body whose length is declared, smaller than
// smallBody and than limit (the transaction's body limit), is read here
// into a pooled buffer instead, to its end, and written in one piece:
// below the limit WriteRequestBody only stores it, as the copy would.
// Anything else is Coraza's, with the same bytes in the same order: a
// body that turns out longer than declared (a reader that does not hold
// to its length), an undeclared one, a large one.
func readBody(tx types.Transaction, body io.Reader, declared, limit int64) (*types.Interruption, error) {
	if _, lenger := body.(interface{ Len() int }); lenger || declared <= 0 || declared > smallBody || declared+1 >= limit {
		it, _, err := tx.ReadRequestBodyFrom(body)
		return it, err
	}
	bp := bodyBuffers.Get().(*[]byte)
	buf := (*bp)[:declared+1]
	defer func() {
		clear(buf) // no request's body outlives it in the pool
		bodyBuffers.Put(bp)
	}()
	n := 0
	for n < len(buf) {
		k, err := body.Read(buf[n:])
		n += k
		if err == io.EOF {
			it, _, werr := tx.WriteRequestBody(buf[:n])
			return it, werr
		}
		if err != nil {
			return nil, err
		}
	}
	// More than declared: Coraza reads what was read and the rest.
	it, _, err := tx.ReadRequestBodyFrom(io.MultiReader(bytes.NewReader(buf[:n]), body))
	return it, err
}

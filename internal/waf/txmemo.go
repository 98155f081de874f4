package waf

import (
	"sync"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"
	"github.com/corazawaf/libinjection-go"
)

// One transaction asks moat's scorers, normalize and libinjection about
// the same value several times: the inspection pass normalizes every
// argument, the gate asks the scorer operators (@moatShell, @moatSQLi,
// ...) and @detectSQLi of each value, a scorer normalizes the value it
// scores, Coraza asks a kept scorer or @detectSQLi rule again with
// capture on (and a multiMatch rule of each value's names once per
// name), and the context pass scores each matched value once more. All of these are functions of the value alone, so a
// transaction remembers their answers (txMemo) and each is computed once.
//
// The memo lives from Begin to Close. Its keys are the request's own
// strings, no copies; Close clears it before it goes back to the pool,
// so that no request's text outlives the request. A transaction that
// Begin did not start (Coraza driven directly) has none, and every
// question is computed as without it.

// maxMemo bounds the answers one transaction keeps of each kind; past it
// they are computed and not kept.
const maxMemo = 4096

// txMemo holds one transaction's answers.
type txMemo struct {
	scores map[memoKey]int
	norms  map[string]normalForm
	// sqli: libinjection's answers (sqliOp).
	sqli map[string]sqliAnswer
	// norm is normalize, remembered: made once, as a method value
	// allocates.
	norm func(string) (string, bool)
	// targets: the target removals waiting for the phase-2 gate
	// (gatetargets.go).
	targets []*targetRemoval
	// gate: the pass of gate rule gateFrom, kept for the next gate
	// (gateState.resume, gateState.carry).
	gate     *gateState
	gateFrom int
	// p1Ranges: the indices [from, to) in the transaction's removed
	// ranges of those the phase-1 gate added, each naming rules of
	// phase 1 alone (gateremove.go); to is 0 when there are none.
	p1Ranges [2]int
}

type memoKey struct {
	f *family
	v string
}

// normalForm is what normalize returned.
type normalForm struct {
	n  string
	ok bool
}

func newTxMemo() *txMemo {
	m := &txMemo{scores: map[memoKey]int{}, norms: map[string]normalForm{}, sqli: map[string]sqliAnswer{}}
	m.norm = m.normalize
	return m
}

var (
	// txMemos maps a transaction Begin started to its memo.
	txMemos  sync.Map // types.Transaction → *txMemo
	memoPool = sync.Pool{New: func() any { return newTxMemo() }}
)

// beginMemo gives tx a memo.
func beginMemo(tx types.Transaction) {
	txMemos.Store(tx, memoPool.Get().(*txMemo))
}

// endMemo drops tx's memo, emptied, before tx itself is closed (and may
// be handed to another request by Coraza's pool).
func endMemo(tx types.Transaction) {
	if m, ok := txMemos.LoadAndDelete(tx); ok {
		m := m.(*txMemo)
		clear(m.scores)
		clear(m.norms)
		clear(m.sqli)
		clear(m.targets)
		m.targets = m.targets[:0]
		m.p1Ranges = [2]int{}
		if m.gate != nil {
			m.gate.release()
			m.gate = nil
		}
		memoPool.Put(m)
	}
}

// memoOf returns tx's memo, nil when it has none. The interface's
// dynamic value is Coraza's transaction, whichever interface holds it.
func memoOf(tx plugintypes.TransactionState) *txMemo {
	if tx == nil {
		return nil
	}
	if m, ok := txMemos.Load(tx); ok {
		return m.(*txMemo)
	}
	return nil
}

// score is f's score of v, remembered; m may be nil.
func (m *txMemo) score(f *family, v string) int {
	if m == nil {
		return f.score(v)
	}
	k := memoKey{f, v}
	if sc, ok := m.scores[k]; ok {
		return sc
	}
	var sc int
	if f.scoreNorm != nil {
		sc = f.scoreNorm(v, m.norm)
	} else {
		sc = f.score(v)
	}
	if len(m.scores) < maxMemo {
		m.scores[k] = sc
	}
	return sc
}

// benign is f.benign(v), its score remembered.
func (m *txMemo) benign(f *family, v string) bool {
	sc := m.score(f, v)
	return sc != scoreAttack && f.understood(v, sc)
}

// normalize is normalize(v), remembered; m may be nil.
func (m *txMemo) normalize(v string) (string, bool) {
	if m == nil {
		return normalize(v)
	}
	if r, ok := m.norms[v]; ok {
		return r.n, r.ok
	}
	n, ok := normalize(v)
	m.keepNormal(v, n, ok)
	return n, ok
}

// normalForms is normalForms(v), its normal form remembered; m may be
// nil. The layers are not kept: only the inspection pass asks for them.
func (m *txMemo) normalForms(v string) (string, bool, []string) {
	n, ok, layers := normalForms(v)
	if m != nil {
		m.keepNormal(v, n, ok)
	}
	return n, ok, layers
}

// sqliAnswer is what libinjection.IsSQLi returned.
type sqliAnswer struct {
	res bool
	fp  string
}

// isSQLi is libinjection.IsSQLi(v), remembered; m may be nil.
func (m *txMemo) isSQLi(v string) (bool, string) {
	if m == nil {
		return libinjection.IsSQLi(v)
	}
	if a, ok := m.sqli[v]; ok {
		return a.res, a.fp
	}
	res, fp := libinjection.IsSQLi(v)
	if len(m.sqli) < maxMemo {
		m.sqli[v] = sqliAnswer{res, fp}
	}
	return res, fp
}

func (m *txMemo) keepNormal(v, n string, ok bool) {
	if len(m.norms) < maxMemo {
		m.norms[v] = normalForm{n, ok}
	}
}

package waf

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/corazawaf/coraza/v3/types/variables"
)

// The gate's answers for request header values, kept across requests.
//
// Most of a request's headers are the ones its client sent with the
// previous request (Host, User-Agent, Accept, Content-Type, their names),
// and the gate asked the same questions of them then: does rule r's
// operator answer true for this value after r's transformations? That
// answer depends on the value alone (the gate asks only such operators,
// gate.go), so it is kept, per value, as one bit per test, and a header
// value seen before costs the gate a bit lookup where it cost every
// chain's transformations and every engine run.
//
//   - What is kept is a keyed 128-bit hash of the header's name and value
//     (AES-CBC-MAC under a key drawn at random when the rule set is loaded)
//     and two bitsets (which tests were asked, which answered true): no
//     request text outlives its request. An attacker who cannot read the
//     key cannot make a value of theirs collide with one whose answers
//     are kept.
//   - Credential-bearing headers (Cookie, Authorization,
//     Proxy-Authorization and any whose name speaks of a token, key,
//     secret, session, password or signature; see credentialHeader) are
//     never kept, not even as a hash: they are asked on every request.
//   - The cache holds at most headerCacheEntries values; a full shard
//     drops an entry at random for a new one. A request has at most
//     headerCacheMaxValues of its header values and names looked up, each
//     at most headerCacheMaxLen bytes long; the rest are asked as before.
//   - A value never seen before costs what it cost without the cache (the
//     same transformations and operator runs, TestHeaderCacheMiss) plus
//     its hash: a header value the cache may answer is asked rule by rule
//     on its own bytes, where the others are first refused together by
//     the bytes of all of them (gateRule.unions), and a refusal of all is
//     a refusal of each.
//   - Tests whose answer depends on more than the value (@moatProxyHeader,
//     a chain decided with what its first link writes, counts) are asked
//     on every request, of cached values too.
//
// The arguments' names and values (ARGS, ARGS_GET, ARGS_POST, ARGS_PATH
// and their _NAMES) are kept the same way, with two differences, for a
// client sends the same names and mostly the same short values again (a
// form's fields, ?page=2, ?sort=price) but also values seen once (a
// search, an ID): an argument's text is looked up only when it is at most
// argCacheMaxLen bytes long, at most argCacheMaxValues of a request's,
// and never under a name credentialHeader refuses (password, token,
// secret, key, session, ...: neither the value nor the name is kept);
// and a text is kept only once a request has looked it up while a
// request before had (the seen filter: one bit per keyed hash, cleared
// as it fills), so that a text seen once costs its hash and one bit, and
// is refused with the others by their bytes, as without the cache.
//
// A value the cache answers for is asked rule by rule, which for a test
// that refuses it is a bit lookup where the bytes of all the values
// together would have refused it at once. So a kept value that has
// answered false to every test reading a selector (quiet, gatePlan.
// selTests) is left out of that selector's rule-by-rule asking as it is
// of its bytes: for those tests it is known to be no match, and for the
// rule it is as if it were not there.
//
// TestHeaderCacheDetection, TestArgCacheDetection, FuzzHeaderCache and
// FuzzArgCache hold verdicts, matched rules and their matched values
// identical with and without the cache.

const (
	// headerCacheEntries bounds the values kept, over all shards: with a
	// few hundred tests an entry is about a hundred bytes.
	headerCacheEntries = 4096
	headerCacheShards  = 16
	// headerCacheMaxValues is the most header values and names of one
	// request (per gate pass) the cache is asked about.
	headerCacheMaxValues = 64
	// headerCacheMaxLen is the longest value (or name) the cache is
	// asked about, in bytes: longer ones are rare and cost their hash.
	headerCacheMaxLen = 2048
	// headerCacheMaxName is the longest header name whose values are
	// kept (credentialHeader reads names up to it).
	headerCacheMaxName = 64
	// argCacheMaxValues is the most argument names and values of one
	// request the cache is asked about; argCacheMaxLen the longest.
	argCacheMaxValues = 64
	argCacheMaxLen    = 1024
	// seenBits is the size of the seen filter, which is cleared once
	// seenFull texts have been added to it.
	seenBits = 1 << 16
	seenFull = seenBits / 8
)

type headerKey [16]byte

// headerCache is one rule set's cache (gatePlan.hdr).
type headerCache struct {
	mac      cipher.Block // AES-128 under a random key
	words    int          // of each bitset
	perShard int
	shards   [headerCacheShards]headerShard
	// seen: one bit per argument text looked up and not kept (by its
	// key's bits), seenAdds the bits set since it was last cleared.
	seen     [seenBits / 64]atomic.Uint64
	seenAdds atomic.Int64
}

type headerShard struct {
	mu sync.RWMutex
	m  map[headerKey][]uint64 // asked (words), then answered true (words); guarded by mu
}

// newHeaderCache returns a cache for tests numbered 0 to tests-1, or nil
// when there are none.
func newHeaderCache(tests, entries int) (*headerCache, error) {
	if tests == 0 {
		return nil, nil
	}
	c := &headerCache{words: (tests + 63) / 64, perShard: max(1, entries/headerCacheShards)}
	var key [16]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, err
	}
	mac, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	c.mac = mac
	for i := range c.shards {
		c.shards[i].m = map[headerKey][]uint64{}
	}
	return c, nil
}

func (c *headerCache) shard(k headerKey) *headerShard {
	return &c.shards[k[0]%headerCacheShards]
}

// load copies the bits kept for k into dst (2*words long), or zeros
// when nothing is kept (false).
func (c *headerCache) load(k headerKey, dst []uint64) bool {
	sh := c.shard(k)
	sh.mu.RLock()
	e := sh.m[k]
	copy(dst, e)
	sh.mu.RUnlock()
	if e == nil {
		clear(dst)
	}
	return e != nil
}

// seenBefore reports whether k's bit in the seen filter is set, and
// sets it. The filter only decides which texts are worth keeping: a
// wrong answer costs work, never an answer.
func (c *headerCache) seenBefore(k headerKey) bool {
	i := binary.LittleEndian.Uint32(k[4:8]) % seenBits
	w, b := &c.seen[i/64], uint64(1)<<(i%64)
	if w.Load()&b != 0 {
		return true
	}
	w.Or(b)
	if c.seenAdds.Add(1) >= seenFull {
		c.seenAdds.Store(0)
		for j := range c.seen {
			c.seen[j].Store(0)
		}
	}
	return false
}

// store adds bits (as load fills them) to what is kept for k.
func (c *headerCache) store(k headerKey, bits []uint64) {
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[k]
	if e == nil {
		if len(sh.m) >= c.perShard {
			for old := range sh.m {
				delete(sh.m, old) // the map's iteration starts at random
				break
			}
		}
		e = make([]uint64, 2*c.words)
		sh.m[k] = e
	}
	for i, b := range bits {
		e[i] |= b
	}
}

// len is the number of values kept.
func (c *headerCache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

// What a key is the hash of: a header's value (under its name), a
// header's name, or an argument's name or value (its text alone).
const (
	headerValue = 1
	headerName  = 2
	argText     = 3
)

// sum is the cache key of a header value (kind headerValue, under name)
// or name (kind headerName, name empty): AES-CBC-MAC under the cache's
// key of a first block holding kind and both lengths, then name and v
// zero-padded to whole blocks. The lengths in front make no message a
// prefix of another, as CBC-MAC needs to be a PRF on messages of any
// length.
func (s *gateState) sum(kind byte, name, v string) headerKey {
	x, blk := s.hbuf[:16], s.hbuf[16:32]
	clear(x)
	x[0] = kind
	binary.BigEndian.PutUint32(x[1:], uint32(len(name)))
	binary.BigEndian.PutUint32(x[5:], uint32(len(v)))
	s.p.hdr.mac.Encrypt(x, x)
	n := 0 // bytes of blk filled
	for _, part := range [2]string{name, v} {
		for len(part) > 0 {
			c := copy(blk[n:], part)
			part, n = part[c:], n+c
			if n == 16 {
				subtle.XORBytes(x, x, blk)
				s.p.hdr.mac.Encrypt(x, x)
				n = 0
			}
		}
	}
	if n > 0 {
		clear(blk[n:])
		subtle.XORBytes(x, x, blk)
		s.p.hdr.mac.Encrypt(x, x)
	}
	clear(blk) // no request text outlives the pass
	var k headerKey
	copy(k[:], x)
	return k
}

// credentialHeader reports whether header name (any case) may carry a
// credential, whose values the cache never keeps: a name longer than
// headerCacheMaxName, or one holding a word of credentialWords.
func credentialHeader(name string) bool {
	return len(name) > headerCacheMaxName || credentialDFA.contains(name)
}

// credentialWords: a header whose name holds one of them (in any case)
// may carry a credential (cookie, authorization, proxy-authorization,
// x-api-key, x-auth-token, x-csrf-token, x-amz-security-token,
// x-hub-signature-256, sec-websocket-key, x-session-id, ...).
var credentialWords = []string{"cookie", "auth", "token", "key", "secret", "session", "pass", "csrf", "xsrf", "sign", "credential", "jwt", "bearer", "otp", "nonce", "ticket"}

var credentialDFA = newLitDFA(credentialWords, true, maxPhraseCells)

// lookHeaders registers this request's header values and names that the
// cache may answer as values of the pass (gateState.vals) and loads what
// is kept for each.
func (s *gateState) lookHeaders() {
	c := s.p.hdr
	if s.hbuf == nil {
		s.hbuf = make([]byte, 32)
	}
	s.looked = true
	w := 2 * c.words
	looked := 0
	for _, v := range [...]variables.RuleVariable{variables.RequestHeaders, variables.RequestHeadersNames} {
		col := s.tx.Collection(v)
		if col == nil {
			continue
		}
		for _, md := range s.findAll(v, col) {
			if looked == headerCacheMaxValues {
				return
			}
			val, name, kind := md.Value(), md.Key(), byte(headerValue)
			if v == variables.RequestHeadersNames {
				name, kind = "", headerName
			} else if credentialHeader(name) {
				continue
			}
			if len(val) > headerCacheMaxLen {
				continue
			}
			vi := s.valueIndex(val)
			if s.hlook[vi] {
				continue
			}
			s.hlook[vi] = true
			looked++
			k := s.sum(kind, name, val)
			slot := s.cacheSlot(k)
			c.load(k, s.hbits[slot*w:(slot+1)*w])
			s.hc[vi] = int32(slot + 1)
		}
	}
}

// cacheSlot adds a slot for the value of key k to the pass's answers
// and returns it.
func (s *gateState) cacheSlot(k headerKey) int {
	slot := len(s.hkeys)
	s.hkeys = append(s.hkeys, k)
	s.hdirty = append(s.hdirty, false)
	s.hbits = grown(s.hbits, 2*s.p.hdr.words)
	return slot
}

// lookArg looks argument text vi (a name, or a value under name) up in
// the cache, once per request: a text kept, or one the seen filter says
// a request before looked up, becomes one the cache answers for (the
// latter asked rule by rule, and kept); any other is marked in the
// filter and left to the bytes of all the values, as without the cache.
func (s *gateState) lookArg(vi int, name string) {
	s.hlook[vi] = true
	v := s.vals[vi]
	if s.hc[vi] != 0 || s.argsLooked == argCacheMaxValues || len(v) > argCacheMaxLen || credentialHeader(name) {
		return
	}
	s.argsLooked++
	if s.hbuf == nil {
		s.hbuf = make([]byte, 32)
	}
	c := s.p.hdr
	k := s.sum(argText, "", v)
	slot := s.cacheSlot(k)
	w := 2 * c.words
	if !c.load(k, s.hbits[slot*w:(slot+1)*w]) && !c.seenBefore(k) {
		s.hkeys, s.hdirty, s.hbits = s.hkeys[:slot], s.hdirty[:slot], s.hbits[:slot*w]
		return
	}
	s.hc[vi] = int32(slot + 1)
}

// loud reports whether selector k must ask value vi rule by rule: the
// cache answers for it (s.hc), and it is not known to answer false to
// every test of the rules that ask k's values (gatePlan.selTests).
func (s *gateState) loud(vi, k int) bool {
	if s.hc[vi] == 0 {
		return false
	}
	tests := s.p.selTests[k]
	if tests == nil {
		return true
	}
	w := s.p.hdr.words
	base := int(s.hc[vi]-1) * 2 * w
	asked, yes := s.hbits[base:base+w], s.hbits[base+w:base+2*w]
	for j, t := range tests {
		if t&^asked[j] != 0 || t&yes[j] != 0 {
			return true
		}
	}
	return false
}

// keepHeaders stores what this pass asked of the values the cache may
// answer (a value the next pass asks again is stored again only for what
// that pass asked new).
func (s *gateState) keepHeaders() {
	c := s.p.hdr
	w := 2 * c.words
	for slot, d := range s.hdirty {
		if d {
			c.store(s.hkeys[slot], s.hbits[slot*w:(slot+1)*w])
			s.hdirty[slot] = false
		}
	}
}

// cachedMay is valueMay for a value the cache answers (vi, s.hc[vi] != 0)
// and a test it keeps (r.test >= 0): the kept answer, or the value's own
// answer, then kept.
func (s *gateState) cachedMay(r *gateRule, vi int) bool {
	w := s.p.hdr.words
	base := int(s.hc[vi]-1) * 2 * w
	word, bit := r.test/64, uint64(1)<<(r.test%64)
	if s.hbits[base+word]&bit != 0 {
		return s.hbits[base+w+word]&bit != 0
	}
	a := s.valueMay(r, vi)
	s.hbits[base+word] |= bit
	if a {
		s.hbits[base+w+word] |= bit
	}
	s.hdirty[s.hc[vi]-1] = true
	return a
}

// planHeaderTests numbers the tests (rules and chain links) whose answers
// the cache keeps: those reading a request header's or an argument's
// values or names whose operator answers by the value alone. It returns
// how many. It also works out each selector's selTests and argSel.
func (p *gatePlan) planHeaderTests() int {
	n := 0
	var visit func(r *gateRule)
	visit = func(r *gateRule) {
		r.test = -1
		if r.op != nil && !r.unclocked {
			if _, ok := r.op.(proxyHeaderOp); !ok && p.readsCached(r) {
				r.test = n
				n++
			}
		}
		for i := range r.links {
			visit(&r.links[i])
		}
	}
	for _, list := range p.after {
		for i := range list {
			visit(&list[i])
		}
	}
	p.planSelTests(n)
	return n
}

// readsCached reports whether r reads the values or names (not the
// count) of a request header or of an argument.
func (p *gatePlan) readsCached(r *gateRule) bool {
	for _, k := range r.sels {
		if sel := p.selectors[k]; !sel.count && (cachedHeaders[sel.v] || cachedArgs[sel.v]) {
			return true
		}
	}
	return false
}

var cachedHeaders = map[variables.RuleVariable]bool{variables.RequestHeaders: true, variables.RequestHeadersNames: true}

// cachedArgs: the variables whose values the cache answers for as
// argument texts (lookArg).
var cachedArgs = map[variables.RuleVariable]bool{
	variables.Args: true, variables.ArgsGet: true, variables.ArgsPost: true, variables.ArgsPath: true,
	variables.ArgsNames: true, variables.ArgsGetNames: true, variables.ArgsPostNames: true,
}

// planSelTests sets selTests[k] to the tests (of tests in all) of the
// rules and links that ask selector k's values rule by rule (opMayMatch),
// when each of them has one; nil when one has none, whose values the
// cache answers for are then all asked. A chain decided with what its
// first link writes, and a TX key reader, read their values themselves
// (not through opMayMatch) and are not counted. argSel[k]: k's values are
// argument texts.
func (p *gatePlan) planSelTests(tests int) {
	words := (tests + 63) / 64
	p.selTests = make([][]uint64, len(p.selectors))
	p.argSel = make([]bool, len(p.selectors))
	untested := make([]bool, len(p.selectors))
	for k, sel := range p.selectors {
		p.argSel[k] = cachedArgs[sel.v] && !sel.count
		p.selTests[k] = make([]uint64, words)
	}
	asks := func(r *gateRule) {
		for _, k := range r.sels {
			if r.test < 0 {
				untested[k] = true
			} else {
				p.selTests[k][r.test/64] |= 1 << (r.test % 64)
			}
		}
	}
	for _, list := range p.after {
		for i := range list {
			r := &list[i]
			if r.captured == nil && r.keys == nil && r.op != nil {
				asks(r)
			}
			for j := range r.links {
				asks(&r.links[j])
			}
		}
	}
	for k := range p.selTests {
		if untested[k] || words == 0 {
			p.selTests[k] = nil
		}
	}
}

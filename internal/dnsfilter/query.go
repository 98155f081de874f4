package dnsfilter

import (
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// Bounds on what a client sends. A query holds one question of at most
// 255 bytes of name, a header, and at most an EDNS OPT record: 512 bytes
// is room for all of it with padding (RFC 7830 pads a query to 128).
const (
	// MaxQuery is the largest query read, over UDP or TCP; a larger one
	// is not parsed (UDP: dropped; TCP: the connection is closed).
	MaxQuery = 512
	// MaxResponse is the largest answer taken from a resolver over TCP,
	// the most a DNS message can be there.
	MaxResponse = 65535
	// MaxUDPResponse is the largest answer taken from a resolver over
	// UDP. Resolvers answer within what the client advertised, 1232
	// bytes by the 2020 DNS flag day's advice; one past this bound does
	// not parse and is not passed on (SERVFAIL).
	MaxUDPResponse = 4096
	// MaxName is the longest name in presentation form, without its
	// trailing dot (RFC 1035: 255 bytes on the wire).
	MaxName = 253
	// maxLabel is the longest label (RFC 1035).
	maxLabel = 63
)

// Refusal reasons: why a query was not forwarded. They are the records'
// reason texts' keys and the table tests' expectations.
var (
	errNotQuery    = errors.New("not a standard query")
	errQuestions   = errors.New("not exactly one question")
	errSections    = errors.New("a query with answer, authority or other additional records than EDNS")
	errClass       = errors.New("a class other than IN")
	errType        = errors.New("a type the filter does not forward (ANY, zone transfers, meta types)")
	errNameChars   = errors.New("a name with characters other than letters, digits, '-' and '_'")
	errNameLength  = errors.New("a name or label longer than DNS allows, or an empty label")
	errRootName    = errors.New("the root name")
	errNotAllowed  = errors.New("a name no egress rule or allow list entry names")
	errMalformed   = errors.New("a malformed message")
	errTooLarge    = errors.New("a message larger than a query may be")
	errClientBusy  = errors.New("more queries at once than one client may have")
	errUnavailable = errors.New("no resolver answered")
)

// refusedTypes are the question types never forwarded: ANY (RFC 8482:
// answers are huge and of no use to a stub), zone transfers, and the meta
// types that are no question at all.
var refusedTypes = map[uint16]bool{
	dns.TypeANY: true, dns.TypeAXFR: true, dns.TypeIXFR: true, dns.TypeMAILA: true, dns.TypeMAILB: true,
	dns.TypeOPT: true, dns.TypeTSIG: true, dns.TypeTKEY: true, dns.TypeNone: true,
}

// Query is a client's query that passed the bounds: its message and the
// question's name in Name's form.
type Query struct {
	Msg  *dns.Msg
	Name string
}

// ParseQuery reads raw, a client's DNS message, and checks what the filter
// bounds before a name is looked at: a standard query (not a response, not
// a notify or update) of at most MaxQuery bytes, one question of class IN
// and of a type that is no meta type nor ANY, no records but an EDNS OPT,
// and a name that Name accepts. msg is nil when raw is no DNS message at
// all (it is then not answered); otherwise the error says why it is
// refused.
func ParseQuery(raw []byte) (q Query, err error) {
	if len(raw) > MaxQuery {
		return q, errTooLarge
	}
	m := new(dns.Msg)
	if err := m.Unpack(raw); err != nil {
		return q, errMalformed
	}
	if m.Response {
		return q, errMalformed
	}
	q.Msg = m
	if m.Opcode != dns.OpcodeQuery {
		return q, errNotQuery
	}
	if len(m.Question) != 1 {
		return q, errQuestions
	}
	if len(m.Answer) > 0 || len(m.Ns) > 0 || len(m.Extra) > 1 || len(m.Extra) == 1 && m.Extra[0].Header().Rrtype != dns.TypeOPT {
		return q, errSections
	}
	qq := m.Question[0]
	if qq.Qclass != dns.ClassINET {
		return q, errClass
	}
	if refusedTypes[qq.Qtype] {
		return q, errType
	}
	q.Name, err = Name(qq.Name)
	return q, err
}

// Name puts a question's name (miekg/dns's presentation form, escapes and
// all) in the form allow lists match: lower-cased, without the trailing
// dot. Only letters, digits, '-' and '_' are taken in labels (underscores
// for service names such as _dmarc): a name with any other byte, which
// presentation form writes as an escape, is refused rather than unescaped,
// so a dot inside a label can never be read as a separator. Labels of 1 to
// 63 bytes, names of at most MaxName.
func Name(s string) (string, error) {
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "", errRootName
	}
	if len(s) > MaxName {
		return "", errNameLength
	}
	label := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if label == 0 {
				return "", errNameLength
			}
			label = 0
			continue
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return "", errNameChars
		}
		if label++; label > maxLabel {
			return "", errNameLength
		}
	}
	if label == 0 {
		return "", errNameLength
	}
	return strings.ToLower(s), nil
}

// recordedName is a question's name as a record shows it: at most MaxName+1
// bytes of it (presentation form escapes what does not print).
func recordedName(m *dns.Msg) string {
	if m == nil || len(m.Question) == 0 {
		return ""
	}
	n := m.Question[0].Name
	if len(n) > MaxName+1 {
		n = n[:MaxName+1]
	}
	return n
}

// questionType names a question's type for records ("A", "TXT", "TYPE65").
func questionType(m *dns.Msg) string {
	if m == nil || len(m.Question) == 0 {
		return ""
	}
	t := m.Question[0].Qtype
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return fmt.Sprintf("TYPE%d", t)
}

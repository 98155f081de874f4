package dnsfilter

import (
	"errors"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"moat/internal/policy"
)

func TestName(t *testing.T) {
	long := strings.Repeat("a", 63)
	for _, c := range []struct {
		in, want string
		err      error
	}{
		{"www.Example.COM.", "www.example.com", nil},
		{"_dmarc.example.com.", "_dmarc.example.com", nil},
		{"aGVsbG8.evil.example.", "agvsbg8.evil.example", nil},
		{long + ".example.", long + ".example", nil},
		{long + "a.example.", "", errNameLength},
		{strings.Repeat("a.", 126) + "a.", strings.TrimSuffix(strings.Repeat("a.", 127), "."), nil},
		{strings.Repeat("a.", 127) + "a.", "", errNameLength},
		{".", "", errRootName},
		{"", "", errRootName},
		{"a..example.", "", errNameLength},
		{".example.", "", errNameLength},
		{`a\.b.example.`, "", errNameChars},
		{`a\000.example.`, "", errNameChars},
		{"a b.example.", "", errNameChars},
		{"*.example.", "", errNameChars},
		{"ex\u0430mple.com.", "", errNameChars},
	} {
		got, err := Name(c.in)
		if got != c.want || !errors.Is(err, c.err) && (err != nil || c.err != nil) {
			t.Errorf("Name(%q) = %q, %v; want %q, %v", c.in, got, err, c.want, c.err)
		}
	}
}

// query is a known-good query that each case of TestParseQuery mutates.
func query(mut func(m *dns.Msg)) []byte {
	m := new(dns.Msg)
	m.SetQuestion("www.example.com.", dns.TypeA)
	m.SetEdns0(1232, false)
	if mut != nil {
		mut(m)
	}
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

func TestParseQuery(t *testing.T) {
	for _, c := range []struct {
		name   string
		raw    []byte
		err    error
		answer bool // a malformed message is not answered
	}{
		{"good", query(nil), nil, true},
		{"TXT", query(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeTXT }), nil, true},
		{"no EDNS", query(func(m *dns.Msg) { m.Extra = nil }), nil, true},
		{"ANY", query(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeANY }), errType, true},
		{"AXFR", query(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeAXFR }), errType, true},
		{"IXFR", query(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeIXFR }), errType, true},
		{"CHAOS", query(func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }), errClass, true},
		{"two questions", query(func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }), errQuestions, true},
		{"no question", query(func(m *dns.Msg) { m.Question = nil }), errQuestions, true},
		{"update", query(func(m *dns.Msg) { m.Opcode = dns.OpcodeUpdate }), errNotQuery, true},
		{"notify", query(func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }), errNotQuery, true},
		{"an answer", query(func(m *dns.Msg) {
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "x.", Rrtype: dns.TypeA, Class: dns.ClassINET}, A: []byte{1, 2, 3, 4}}}
		}), errSections, true},
		{"a TSIG", query(func(m *dns.Msg) {
			m.Extra = append(m.Extra, &dns.TXT{Hdr: dns.RR_Header{Name: "x.", Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{"x"}})
		}), errSections, true},
		{"escaped dot", query(func(m *dns.Msg) { m.Question[0].Name = `a\.b.example.com.` }), errNameChars, true},
		{"root", query(func(m *dns.Msg) { m.Question[0].Name = "." }), errRootName, true},
		{"response", query(func(m *dns.Msg) { m.Response = true }), errMalformed, false},
		{"truncated", query(nil)[:20], errMalformed, false},
		{"empty", nil, errMalformed, false},
		{"too large", query(func(m *dns.Msg) {
			m.Extra[0].(*dns.OPT).Option = []dns.EDNS0{&dns.EDNS0_PADDING{Padding: make([]byte, MaxQuery)}}
		}), errTooLarge, false},
	} {
		q, err := ParseQuery(c.raw)
		if !errors.Is(err, c.err) && (err != nil || c.err != nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.err)
		}
		if (q.Msg != nil) != c.answer {
			t.Errorf("%s: message %v, want answered %v", c.name, q.Msg != nil, c.answer)
		}
	}
}

// The filter matches names as the egress path matches its rules'
// destinations (policy.HostMatches): an exact name, or any name below a
// "*." domain at any depth, never the domain itself nor a name that merely
// ends in its letters.
func TestMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"ntp.ubuntu.com", "ntp.ubuntu.com", true},
		{"ntp.ubuntu.com", "x.ntp.ubuntu.com", false},
		{"*.debian.org", "deb.debian.org", true},
		{"*.debian.org", "a.b.debian.org", true},
		{"*.debian.org", "debian.org", false},
		{"*.debian.org", "evildebian.org", false},
		{"*.debian.org", "debian.org.evil.example", false},
	} {
		n, err := Name(c.name + ".")
		if err != nil {
			t.Fatal(err)
		}
		if got := policy.HostMatches(c.pattern, n); got != c.want {
			t.Errorf("%q matches %q: %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
}

// FuzzParseQuery: no input panics the parser, and what it accepts is one
// IN question of a forwarded type whose name is bounded, of letters,
// digits, '-', '_' and dots, and matches a "*." pattern only below its
// domain.
func FuzzParseQuery(f *testing.F) {
	f.Add(query(nil))
	f.Add(query(func(m *dns.Msg) { m.Question[0].Name = "aGVsbG8.evil.example." }))
	f.Add(query(func(m *dns.Msg) { m.Question[0].Name = `a\.b.example.com.` }))
	f.Add(query(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeANY }))
	f.Fuzz(func(t *testing.T, raw []byte) {
		q, err := ParseQuery(raw)
		if err != nil {
			return
		}
		if len(raw) > MaxQuery || len(q.Msg.Question) != 1 || q.Msg.Question[0].Qclass != dns.ClassINET || refusedTypes[q.Msg.Question[0].Qtype] {
			t.Fatalf("accepted %x: %+v", raw, q.Msg)
		}
		if len(q.Name) == 0 || len(q.Name) > MaxName || strings.Trim(q.Name, "abcdefghijklmnopqrstuvwxyz0123456789-_.") != "" ||
			strings.Contains(q.Name, "..") || strings.HasPrefix(q.Name, ".") || strings.HasSuffix(q.Name, ".") {
			t.Fatalf("accepted name %q", q.Name)
		}
		for _, l := range strings.Split(q.Name, ".") {
			if len(l) > 63 {
				t.Fatalf("accepted label %q", l)
			}
		}
		if policy.HostMatches("*.example.com", q.Name) && !strings.HasSuffix(q.Name, ".example.com") {
			t.Fatalf("%q matched *.example.com", q.Name)
		}
	})
}

// FuzzName: Name never panics, and a name it returns is its input
// lower-cased without the trailing dot.
func FuzzName(f *testing.F) {
	for _, s := range []string{"www.example.com.", `a\.b.`, ".", "a..b", strings.Repeat("a.", 130)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Name(s)
		if err != nil {
			return
		}
		if n != strings.ToLower(strings.TrimSuffix(s, ".")) || len(n) > MaxName {
			t.Fatalf("Name(%q) = %q", s, n)
		}
	})
}

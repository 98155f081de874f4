package waf

import (
	"io"
	"strconv"
	"strings"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// formBody is moat's URLENCODED body processor, in place of Coraza's.
//
// Coraza 3.8's parses the body into a map and stores each name with Set,
// on a collection whose names are case-insensitive: of "q" and "Q", the
// one the map yields last replaces the other, at random. A client that
// sends "comment=<attack>&Comment=x" (and more case variants of the name,
// to shrink the odds) hides the attack from every rule, while the
// application, for which the two names differ, reads it. Here every pair
// is added, in the body's order, as Coraza already does for the query
// string: the same splitting ("&", then the first "="; empty pairs
// skipped), the same lenient decoding ("+" is a space, a valid %XX its
// byte, anything else as it is) and the same argument limit.
type formBody struct{}

const formBodyProcessorName = "urlencoded"

func newFormBody() plugintypes.BodyProcessor { return formBody{} }

func (formBody) ProcessRequest(r io.Reader, v plugintypes.TransactionVariables, opts plugintypes.BodyProcessorOptions) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	body := string(data)
	post := v.ArgsPost()
	n := 0
	for rest := body; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" {
			continue
		}
		if opts.ArgumentLimit > 0 && n >= opts.ArgumentLimit {
			if s, ok := v.ArgumentsLimitReached().(singleSetter); ok {
				s.Set("1")
			}
			break
		}
		k, val, _ := strings.Cut(pair, "=")
		post.Add(formUnescape(k), formUnescape(val))
		n++
	}
	if s, ok := v.RequestBody().(singleSetter); ok {
		s.Set(body)
	}
	if s, ok := v.RequestBodyLength().(singleSetter); ok {
		s.Set(strconv.Itoa(len(body)))
	}
	return nil
}

func (formBody) ProcessResponse(io.Reader, plugintypes.TransactionVariables, plugintypes.BodyProcessorOptions) error {
	return nil
}

// formUnescape decodes a form component leniently: "+" is a space, "%"
// and two hex digits the byte they name; any other "%" stays.
func formUnescape(s string) string {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '+' {
			b.WriteByte(' ')
			continue
		}
		if d, ok := escapedByte(s, i); c == '%' && ok {
			b.WriteByte(d)
			i += 2
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

package waf

import "strings"

// lenientJSON adds, under name, the string literals of doc, a document
// that reads as JSON to a lenient parser but not to a strict one: strings
// in single quotes, comments, trailing commas, names without quotes.
// Json.NET reads such documents by default, and JSON5 and Jackson's
// leniency features read them so, whatever the declared type: one of them
// reads `{'q':"1' union select…"}` as the value 1' union select…, where the
// document whole is a quote inside a string. Each literal is read as
// JavaScript reads it (escapes decoded, comments skipped, so a quote in a
// comment opens none); an unterminated one runs to the end.
func (b *bodyArgs) lenientJSON(doc []byte, name string) error {
	s := string(doc)
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '\'' || c == '"':
			var lit strings.Builder
			j := i + 1
			for j < len(s) && s[j] != c {
				if s[j] == '\\' && j+1 < len(s) {
					r, n := jsEscape(s[j+1:])
					if r >= 0 {
						lit.WriteRune(r)
					}
					j += 1 + n
					continue
				}
				lit.WriteByte(s[j])
				j++
			}
			if err := b.add(name, lit.String()); err != nil {
				return err
			}
			i = j + 1
		case strings.HasPrefix(s[i:], "/*"):
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return nil
			}
			i += 2 + end + 2
		case strings.HasPrefix(s[i:], "//"):
			end := strings.IndexAny(s[i:], "\n\r")
			if end < 0 {
				return nil
			}
			i += end
		default:
			i++
		}
	}
	return nil
}

package waf

import (
	"reflect"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// detectXSSPick is the gate's pick test for Coraza's @detectXSS
// (libinjection's IsXSS): a value it finds XSS in holds a '<' or a '='.
// IsXSS runs libinjection's HTML5 tokenizer from the text state and from
// inside an attribute value (unquoted, or after a single, double or back
// quote), and answers true only on a token that none of those reaches
// without one of them: a tag, a comment or a doctype opens with '<'; an
// attribute value is judged only after an attribute name, and the
// tokenizer goes from a name to its value on '=' alone (the value a
// context starts in has no name before it, and is never judged).
// TestDetectXSSPick checks it against IsXSS.
var detectXSSPick = newPickTest([]string{"<", "="}, false, false)

// builtinPick is the pick test of one of Coraza's built-in operators the
// gate knows (nil: none).
func builtinPick(op plugintypes.Operator) *pickTest {
	t := reflect.TypeOf(op)
	if t == nil || t.Kind() != reflect.Pointer {
		return nil
	}
	if t = t.Elem(); t.PkgPath() == "github.com/corazawaf/coraza/v3/internal/operators" && t.Name() == "detectXSS" {
		return detectXSSPick
	}
	return nil
}

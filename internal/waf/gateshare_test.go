package waf

import "testing"

// TestGateTwins: a step whose twin (the same function after a chain with
// a step more) was computed on the same input takes the twin's value
// (gateState.twin); where the step between changed the value, it runs
// its own. Rule 1600 base64-decodes the lower-cased value, 1601 the value
// as sent, so "SGk=" is "Hi" to 1601 and "sgk=" decoded to 1600; "aGk="
// ("hi"), which lower-casing leaves as it was, is decoded once.
func TestGateTwins(t *testing.T) {
	const rules = `SecRule ARGS_GET "@rx NOPE" "id:1600,phase:1,pass,t:none,t:lowercase,t:base64Decode,msg:'the twin, a step more'"` + "\n" +
		`SecRule ARGS_GET "@streq Hi" "id:1601,phase:1,deny,status:403,t:none,t:base64Decode,msg:'the step, a step less'"` + "\n" +
		`SecRule ARGS_GET "@streq hi" "id:1602,phase:1,deny,status:403,t:none,t:base64Decode,msg:'the step, a step less'"` + "\n"
	queryMatches(t, rules, []int{1601, 1602}, []queryMatch{{"q=SGk%3D", 1601}, {"q=aGk%3D", 1602}, {"q=SGI%3D", 0}})
}

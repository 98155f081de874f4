package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestReplayProgramMarks: a replay shows the agent's markers, escaped
// whatever the file holds, and says the session's programs are recorded
// only when the recording says so and never says otherwise.
func TestReplayProgramMarks(t *testing.T) {
	head := "{\"version\":2,\"width\":80,\"height\":24}\n"
	on := "[0.1,\"m\",\"programs recorded: every program\"]\n"
	prog := "[0.2,\"m\",\"program: pid 7 ppid 6 uid 0 exe /bin/id argv id\"]\n"
	for _, tc := range []struct {
		name, rec, summary string
	}{
		{"recorded", head + on + prog + "[0.3,\"o\",\"x\"]\n", "every program it ran is recorded: 1"},
		{"one without its arguments", head + on + prog + "[0.3,\"m\",\"program: pid 8 ppid 6: ended before its arguments were read\"]\n", "every program it ran is recorded: 2 (1 without their arguments: they ended before the agent read them)"},
		{"no word of programs", head + "[0.3,\"o\",\"x\"]\n", "the programs it ran are NOT recorded (the recording does not say they are)"},
		{"a program without the word", head + prog, "the programs it ran are NOT recorded (the recording does not say they are)"},
		{"events lost", head + on + prog + "[0.4,\"m\",\"programs NOT recorded: process events were lost\"]\n", "the programs it ran are NOT all recorded (process events were lost); 1 recorded"},
		{"never had them", head + "[0.1,\"m\",\"programs NOT recorded: no CAP_NET_ADMIN\"]\n", "NOT all recorded (no CAP_NET_ADMIN); 0 recorded"},
	} {
		var out, marks bytes.Buffer
		m := &castMarks{w: &marks}
		if _, err := playCastMarks(context.Background(), &out, []byte(tc.rec), 1, time.Second, true, m); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := m.summary("s1"); !strings.Contains(got, tc.summary) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.summary)
		}
		if strings.Contains(out.String(), "program") {
			t.Errorf("%s: a marker was played as output: %q", tc.name, out.String())
		}
	}

	var marks bytes.Buffer
	rec := head + "[1.5,\"m\",\"program: pid 1 argv \\u001b]52;c;eA==\\u0007\\n\\u202e\"]\n"
	if _, err := playCastMarks(context.Background(), &bytes.Buffer{}, []byte(rec), 1, time.Second, true, &castMarks{w: &marks}); err != nil {
		t.Fatal(err)
	}
	if want := "[1.500s] program: pid 1 argv \\x1b]52;c;eA==\\a\\n\\u202e\n"; marks.String() != want {
		t.Errorf("marker shown as %q, want %q", marks.String(), want)
	}
}

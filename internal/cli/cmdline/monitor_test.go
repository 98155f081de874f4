package cmdline

import (
	"slices"
	"testing"
)

func TestMonitorEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want []string // nil: nothing to do
	}{
		{"no GODEBUG", []string{"A=1", "PATH=/bin"},
			[]string{"A=1", "PATH=/bin", "GODEBUG=" + monitorSetting, monitorWas + "="}},
		{"GODEBUG kept and extended", []string{"GODEBUG=madvdontneed=1", "A=1"},
			[]string{"A=1", "GODEBUG=madvdontneed=1," + monitorSetting, monitorWas + "=madvdontneed=1"}},
		{"the operator's schedtrace", []string{"GODEBUG=madvdontneed=1, schedtrace=0"}, nil},
		{"schedtrace alone", []string{"GODEBUG=schedtrace=1000"}, nil},
		{"a lookalike is not schedtrace", []string{"GODEBUG=xschedtrace=1"},
			[]string{"GODEBUG=xschedtrace=1," + monitorSetting, monitorWas + "=xschedtrace=1"}},
		{"re-executed already", []string{"GODEBUG=" + monitorSetting, monitorWas + "="}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := monitorEnv(tc.in)
			if (got == nil) != (tc.want == nil) || !slices.Equal(got, tc.want) {
				t.Fatalf("monitorEnv(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

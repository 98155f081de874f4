package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"moat/internal/api"
	"moat/internal/flow"
)

// castMarks reads the markers of a recording as it is played: the agent's
// notes, and the programs the session ran with whether they are recorded
// at all. Labels are shown through flow.PrintableText: the agent wrote them
// printable, and a replay does not take a file's word for it.
type castMarks struct {
	w        io.Writer // where each marker is shown as it comes
	programs int
	unread   int      // programs that ended before their arguments were read
	on       bool     // a MarkProgramsRecorded was seen
	off      []string // the reasons of every MarkProgramsNotRecorded
}

// mark shows the marker label at t seconds into the session.
func (m *castMarks) mark(t float64, label string) error {
	switch {
	case strings.HasPrefix(label, api.MarkProgram):
		m.programs++
		if strings.Contains(label, api.ProgramEndedFirst) {
			m.unread++
		}
	case strings.HasPrefix(label, api.MarkProgramsRecorded):
		m.on = true
	case strings.HasPrefix(label, api.MarkProgramsNotRecorded):
		if len(m.off) < 8 {
			m.off = append(m.off, flow.PrintableText(strings.TrimPrefix(label, api.MarkProgramsNotRecorded)))
		}
	}
	_, err := fmt.Fprintf(m.w, "[%ss] %s\n", strconv.FormatFloat(t, 'f', 3, 64), flow.PrintableText(label))
	return err
}

// summary says whether the session's programs are recorded: only when the
// recording says so and never says otherwise.
func (m *castMarks) summary(session string) string {
	switch {
	case len(m.off) > 0:
		return fmt.Sprintf("session %s: the programs it ran are NOT all recorded (%s); %d recorded", session, strings.Join(m.off, "; "), m.programs)
	case !m.on:
		return fmt.Sprintf("session %s: the programs it ran are NOT recorded (the recording does not say they are)", session)
	case m.unread > 0:
		return fmt.Sprintf("session %s: every program it ran is recorded: %d (%d without their arguments: they ended before the agent read them)", session, m.programs, m.unread)
	default:
		return fmt.Sprintf("session %s: every program it ran is recorded: %d", session, m.programs)
	}
}

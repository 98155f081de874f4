package flow

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

// Writer receives records. Write must not block the data plane for long: a
// writer that ships records elsewhere queues them and reports loss in its
// metrics, never by stalling the caller.
type Writer interface {
	Write(r Record) error
}

// WriterFunc adapts a function to Writer.
type WriterFunc func(Record) error

// Write calls f(r).
func (f WriterFunc) Write(r Record) error { return f(r) }

// Discard drops every record.
var Discard Writer = WriterFunc(func(Record) error { return nil })

// JSONLines writes each record as one line of JSON to an io.Writer, what
// does not print in its text escaped (PrintableJSON): a record's text is
// what others sent, and the lines are read as text.
type JSONLines struct {
	mu sync.Mutex // guards w
	w  io.Writer
}

// NewJSONLines returns a writer of OCSF JSON lines to w.
func NewJSONLines(w io.Writer) *JSONLines { return &JSONLines{w: w} }

// Write appends r as one line.
func (j *JSONLines) Write(r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("flow: encode record: %w", err)
	}
	b = append(PrintableJSON(b), '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.w.Write(b); err != nil {
		return fmt.Errorf("flow: write record: %w", err)
	}
	return nil
}

// Multi writes every record to each writer in turn and returns the first error
// after trying them all.
func Multi(ws ...Writer) Writer {
	return WriterFunc(func(r Record) error {
		var first error
		for _, w := range ws {
			if err := w.Write(r); err != nil && first == nil {
				first = err
			}
		}
		return first
	})
}

// Memory keeps every record written to it, for tests and tools that look
// at what a pipeline produced. It is safe for concurrent use; the zero
// Memory is ready.
type Memory struct {
	mu      sync.Mutex // guards recs and changed
	recs    []Record
	changed chan struct{}
}

// Write keeps r.
func (m *Memory) Write(r Record) error {
	m.mu.Lock()
	m.recs = append(m.recs, r)
	if m.changed != nil {
		close(m.changed)
		m.changed = nil
	}
	m.mu.Unlock()
	return nil
}

// Records returns what was written so far.
func (m *Memory) Records() []Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Record(nil), m.recs...)
}

// Wait returns the first record that match accepts, waiting for more
// until ctx ends.
func (m *Memory) Wait(ctx context.Context, match func(Record) bool) (Record, error) {
	seen := 0
	for {
		m.mu.Lock()
		for ; seen < len(m.recs); seen++ {
			if match(m.recs[seen]) {
				r := m.recs[seen]
				m.mu.Unlock()
				return r, nil
			}
		}
		if m.changed == nil {
			m.changed = make(chan struct{})
		}
		ch := m.changed
		m.mu.Unlock()
		select {
		case <-ctx.Done():
			return Record{}, ctx.Err()
		case <-ch:
		}
	}
}

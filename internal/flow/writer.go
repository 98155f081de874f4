package flow

import (
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

// JSONLines writes each record as one line of JSON to an io.Writer.
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
	b = append(b, '\n')
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

package cmdline

import (
	"encoding/json"
	"io"

	"moat/internal/flow"
)

// PrintJSON writes v to w as indented JSON, as flow.PrintableJSON writes it.
func PrintJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(flow.PrintableJSON(b), '\n'))
	return err
}

// WriteJSONLine writes v to w as one line of JSON, as
// flow.PrintableJSON writes it.
func WriteJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(flow.PrintableJSON(b), '\n'))
	return err
}

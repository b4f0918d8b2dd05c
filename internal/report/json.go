package report

import (
	"encoding/json"
	"io"
)

// WriteJSON writes a report as --output json prints it: indented by two
// spaces, one value ending in a newline.
func WriteJSON(w io.Writer, rep any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

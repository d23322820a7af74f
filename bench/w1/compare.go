package w1

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
)

// SameRecords reports, as an error, the first difference between the JSON
// lines files gotPath and wantPath compared as records: the same number
// of records in the same order, each with equal fields and values
// (parsed by encoding/json, numbers as float64). Key order and number
// spelling do not matter: the strong loop keeps the input's key order,
// the project's codec sorts keys.
func SameRecords(gotPath, wantPath string) error {
	got, err := readRecords(gotPath)
	if err != nil {
		return err
	}
	want, err := readRecords(wantPath)
	if err != nil {
		return err
	}
	for i := 0; i < min(len(got), len(want)); i++ {
		if !reflect.DeepEqual(got[i], want[i]) {
			return fmt.Errorf("record %d differs: got %v, want %v", i+1, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		return fmt.Errorf("%d records, want %d", len(got), len(want))
	}
	return nil
}

func readRecords(path string) ([]map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("w1: %w", err)
	}
	var recs []map[string]any
	for i, line := range bytes.Split(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			return nil, fmt.Errorf("w1: %s line %d: %w", path, i+1, err)
		}
		recs = append(recs, m)
	}
	return recs, nil
}

package api

import (
	"fmt"
	"path"
	"strings"
)

// Patterns select records by name, one dotted level at a time: a level of
// the pattern is matched against one level of the name with path.Match
// (`*` any run of characters, `?` one character, `[...]` a class), and a
// level `**` matches any number of levels, none included. A pattern with
// no wildcard names one record.
//
//	sensor.*      sensor.temp, sensor.hum (not sensor.temp.raw)
//	sensor.**     sensor, sensor.temp, sensor.temp.raw
//	*.temp        sensor.temp, room.temp

// checkPattern reports a malformed pattern.
func checkPattern(p string) error {
	if p == "" {
		return fmt.Errorf("empty pattern")
	}
	for _, lv := range strings.Split(p, ".") {
		if lv == "**" {
			continue
		}
		if _, err := path.Match(lv, ""); err != nil {
			return fmt.Errorf("pattern %q: %w", p, err)
		}
	}
	return nil
}

// matchPattern reports whether the record name matches the pattern
// (checked with checkPattern).
func matchPattern(pattern, name string) bool {
	return matchLevels(strings.Split(pattern, "."), strings.Split(name, "."))
}

func matchLevels(p, n []string) bool {
	for len(p) > 0 {
		if p[0] == "**" {
			for i := 0; i <= len(n); i++ {
				if matchLevels(p[1:], n[i:]) {
					return true
				}
			}
			return false
		}
		if len(n) == 0 {
			return false
		}
		if ok, _ := path.Match(p[0], n[0]); !ok {
			return false
		}
		p, n = p[1:], n[1:]
	}
	return len(n) == 0
}

package dsl

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/aimdb-dev/aimdb-flow/connectors/registry"
)

// load runs the whole front end on one source and returns the problems as
// "file:line:col: message" lines.
func load(t *testing.T, src string, env map[string]string) []string {
	t.Helper()
	opts := Options{Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	_, err := Load(opts, Source{Name: "t.flow", Src: []byte(src)})
	if err == nil {
		return nil
	}
	var el *ErrorList
	if !errors.As(err, &el) {
		t.Fatalf("error is %T, want *ErrorList: %v", err, err)
	}
	var out []string
	for _, e := range el.Errors {
		out = append(out, e.Error())
	}
	return out
}

const okHeader = "connector gen \"gen://\"\nconnector stdio \"stdio://\"\n"

func TestProblems(t *testing.T) {
	type tcase struct {
		name string
		src  string
		want []string
		env  map[string]string
	}
	tests := []tcase{
		{"lexer: unterminated string", `connector gen "gen://`,
			[]string{"t.flow:1:15: unterminated string (a string ends on its line with \")"}, nil},
		{"lexer: unterminated expression", okHeader + "record r {\n  from \"gen://x\" decode json\n}\npipeline p {\n  from r\n  filter `temp > 1\n  to \"stdio://stdout\" encode json\n}\n",
			[]string{"t.flow:8:10: unterminated expression (missing closing `)"}, nil},
		{"lexer: bad character", "connector gen \"gen://\" ;\n",
			[]string{"t.flow:1:24: unexpected character ';'"}, nil},
		{"lexer: malformed duration", okHeader + "record r {\n  from \"gen://x\" decode json\n}\npipeline p {\n  from r\n  batch 10 every 5parsecs\n  to \"stdio://stdout\" encode json\n}\n",
			[]string{"t.flow:8:18: malformed number, duration or size \"5parsecs\" (durations look like 500ms, 5s, 1m30s, 7d; sizes like 4MiB, 512KiB, 1MB)"}, nil},
		{"parser: stray brace", "}\n",
			[]string{"t.flow:1:1: unexpected '}' (no block is open)"}, nil},
		{"parser: unclosed block", okHeader + "record r {\n  from \"gen://x\" decode json\n",
			[]string{"t.flow:3:10: unclosed '{' (missing '}')"}, nil},
		{"parser: nested block", okHeader + "record r {\n  from \"gen://x\" decode json {\n  }\n}\n",
			[]string{"t.flow:4:30: unexpected '{': blocks do not nest (only record and pipeline have a block)"}, nil},
		{"parser: statement not starting with a keyword", "\"gen://\"\n",
			[]string{"t.flow:1:1: unexpected string \"gen://\": a statement starts with a keyword"}, nil},
		{"checker: unknown statement with suggestion", "conector gen \"gen://\"\n",
			[]string{"t.flow:1:1: unknown statement \"conector\" (want connector, record, pipeline, deadletter) (did you mean \"connector\"?)"}, nil},
		{"checker: unknown scheme", "connector x \"nope://\"\n",
			[]string{"t.flow:1:13: connector x: unknown connector scheme \"nope\" (known: " + strings.Join(registry.Default().Schemes(), ", ") + ")"}, nil},
		{"checker: missing codec", okHeader + "record r {\n  from \"gen://x\"\n}\n",
			[]string{"t.flow:4:17: from: missing decode CODEC (one of json, msgpack, raw, protobuf \"FILE.proto\" Message)"}, nil},
		{"checker: unknown codec", okHeader + "record r {\n  from \"gen://x\" decode jsn\n}\n",
			[]string{"t.flow:4:25: unknown codec \"jsn\" (known: [json msgpack raw])"}, nil},
		{"checker: expression syntax error points inside the expression", okHeader + "record r {\n  from \"gen://x\" decode json\n}\npipeline p {\n  from r\n  filter `temp > `\n  to \"stdio://stdout\" encode json\n}\n",
			[]string{"t.flow:8:17: filter: expr expression: unexpected token EOF"}, nil},
		{"checker: error on the second line of an expression", okHeader + "record r {\n  from \"gen://x\" decode json\n}\npipeline p {\n  from r\n  map `{\n    \"a\": temp +\n  }`\n  to \"stdio://stdout\" encode json\n}\n",
			[]string{"t.flow:10:3: map: expr expression: unexpected token Bracket(\"}\")"}, nil},
		{"checker: CEL type error", okHeader + "record r {\n  from \"gen://x\" decode json\n}\npipeline p {\n  from r\n  filter cel `1 + 2`\n  to \"stdio://stdout\" encode json\n}\n",
			[]string{"t.flow:8:15: filter: cel expression: a filter must be boolean, this expression is int"}, nil},
		{"checker: expr type error for a filter", okHeader + "record r {\n  from \"gen://x\" decode json\n}\npipeline p {\n  from r\n  filter `1 + 2`\n  to \"stdio://stdout\" encode json\n}\n",
			[]string{"t.flow:8:11: filter: expr expression: expected bool, but got int"}, nil},
		{"checker: unset environment variable", "connector f \"file://\"\ndeadletter \"f://${DIR}/dead.jsonl\"\n",
			[]string{"t.flow:2:17: environment variable DIR is not set (write ${DIR:-default} to give a default)"}, nil},
		{"checker: unset variable in a connector URL is reported once, not again at every link",
			"connector mqtt \"mqtt://127.0.0.1:${MQTT_PORT}\"\nconnector stdio \"stdio://\"\nrecord r {\n  from \"mqtt://a/b\" decode json\n}\npipeline p {\n  from r\n  to \"mqtt://c\" encode json\n}\n",
			[]string{"t.flow:1:34: environment variable MQTT_PORT is not set (write ${MQTT_PORT:-default} to give a default)"}, nil},
		{"checker: a statement indented under another continues it, and the error says so",
			okHeader + "record r {\n  from \"gen://x\" decode json\n}\npipeline p {\n  from r\n  filter `temp > 1`\n    to \"stdio://stdout\" encode json\n}\n",
			[]string{"t.flow:9:5: filter: unexpected name to (line 9 is indented deeper than filter on line 8, so it continues that statement; indent to like filter to start a new statement)"}, nil},
		{"checker: connector and pipeline declared twice say where first",
			okHeader + "connector gen \"gen://\"\nrecord r {\n  from \"gen://x\" decode json\n}\npipeline p {\n  from r\n  to \"stdio://stdout\" encode json\n}\npipeline p {\n  from r\n  to \"stdio://stdout\" encode json\n}\n",
			[]string{"t.flow:3:1: connector \"gen\" declared twice (first at t.flow:1:1)", "t.flow:11:1: pipeline \"p\" declared twice (first at t.flow:7:1)"}, nil},
		{"checker: default and set variables", "connector f \"file://\"\ndeadletter \"f://${DIR:-/tmp}/${NAME}.jsonl\"\n", nil, map[string]string{"NAME": "d"}},
		{"checker: wrong arguments", okHeader + "record r {\n  from \"gen://x\" decode json\n  buffer ring\n}\npipeline p {\n  from r\n  batch 0\n  throttle 5 per\n  window sliding 10s every 1m\n  parallel 2 3\n  to \"stdio://stdout\" encode json\n}\n",
			[]string{
				"t.flow:5:10: buffer: buffer ring needs a size, e.g. \"ring 1024\"",
				"t.flow:9:9: batch: want a positive whole number, got \"0\"",
				"t.flow:10:17: throttle: missing a period, e.g. throttle 100 per 1s",
				"t.flow:11:10: window sliding: slide 1m0s is longer than the window 10s",
				"t.flow:12:14: parallel: unexpected number 3",
			}, nil},
		{"checker: a session window cannot be keyed", okHeader + "record r {\n  from \"gen://x\" decode json\n}\npipeline p {\n  from r\n  window session 5s by `device`\n  to \"stdio://stdout\" encode json\n}\n",
			[]string{"t.flow:8:21: window session cannot be keyed: a session spans every key (use window tumbling or sliding ... by)"}, nil},
		{"checker: a record pipelines read but nothing writes", okHeader + "record r {\n  from \"gen://x\" decode json\n}\nrecord idle {\n  buffer queue 16\n}\npipeline p {\n  from idle\n  to \"stdio://stdout\" encode json\n}\npipeline q {\n  from r\n  to \"stdio://stdout\" encode json\n}\n",
			[]string{"t.flow:6:1: record idle has no writer: pipeline p would wait for it forever (add from \"connector://address\" to the record, or into idle to a pipeline)"}, nil},
		{"checker: an unset variable in a to is the root cause, not also 'no output'", okHeader + "record r {\n  from \"gen://x\" decode json\n}\npipeline p {\n  from r\n  to \"stdio://${OUT}\" encode json\n}\n",
			[]string{"t.flow:8:15: environment variable OUT is not set (write ${OUT:-default} to give a default)"}, nil},
		{"checker: an unterminated string is reported once, without follow-ons", okHeader + "record r {\n  from \"gen://x decode json\n}\npipeline p {\n  from r\n  to \"stdio://stdout\" encode json\n}\n",
			[]string{"t.flow:4:8: unterminated string (a string ends on its line with \")"}, nil},
		{"cycle through two pipelines names them", okHeader + "record a {\n}\nrecord b {\n}\npipeline p {\n  from a\n  into b\n}\npipeline q {\n  from b\n  into a\n}\n",
			[]string{"t.flow:3:1: cycle between records: a -> (pipeline p) -> b -> (pipeline q) -> a"}, nil},
		{"schema: a misspelled field is caught at load, at its position, with did-you-mean", okHeader + "record r {\n  from \"gen://x\" decode json\n  schema device string temp float seq int\n}\npipeline p {\n  from r\n  filter `tmp > 25`\n  set hot `temp > 30`\n  filter cel `hot && device > 1`\n  to \"stdio://stdout\" encode json key `devise`\n}\n",
			[]string{
				"t.flow:9:11: filter: expr expression: unknown name tmp (not a field of the record's schema; did you mean \"temp\"?)",
				"t.flow:11:29: filter: cel expression: found no matching overload for '_>_' applied to '(string, int)'",
				"t.flow:12:40: to: expr expression: unknown name devise (not a field of the record's schema; did you mean \"device\"?)",
			}, nil},
		{"schema: after a map the shape is unknown; bad schemas are reported", okHeader + "record r {\n  from \"gen://x\" decode json\n  schema device strng temp float temp int\n}\npipeline p {\n  from r\n  map `{\"t\": temp}`\n  filter `t > 1`\n  to \"stdio://stdout\" encode json\n}\n",
			[]string{
				"t.flow:5:17: schema: field device: unknown field type \"strng\" (want string, float, int, bool, object, list, any) (did you mean \"string\"?)",
				"t.flow:5:34: schema: field temp given twice",
			}, nil},
		{"checker: duplicates", okHeader + "record r {\n  from \"gen://x\" decode json\n}\nrecord r {\n}\npipeline p {\n  from r\n  from r\n  to \"stdio://stdout\" encode json\n}\n",
			[]string{"t.flow:6:8: record r declared twice (first at t.flow:3:1)", "t.flow:10:3: pipeline p: from given twice (first at t.flow:9:3)"}, nil},
		{"graph validation with positions", okHeader + "record r {\n  from \"gen://x\" decode json\n}\npipeline p {\n  from rr\n  to \"kafka2://x\" encode json\n}\npipeline q {\n  from r\n}\n",
			[]string{
				"t.flow:7:8: pipeline p: unknown input record \"rr\" (did you mean \"r\"?)",
				"t.flow:8:6: pipeline p: unknown connector \"kafka2\" in \"kafka2://x\" (declare it with connector kafka2 \"...\")",
				"t.flow:10:1: pipeline q: no output (add to \"connector://destination\" or into RECORD)",
			}, nil},
		{"link settings checked by the connector, each at its setting", okHeader + "record r {\n  from \"gen://x\" decode json rate fast\n    count -1 colour red\n}\n",
			[]string{
				"t.flow:4:30: record r: \"gen://x\": rate \"fast\": want a number of at least 0",
				"t.flow:5:5: record r: \"gen://x\": count \"-1\": want a whole number of at least 0",
				"t.flow:5:14: record r: \"gen://x\": colour: unknown inbound link setting (known: rate, count, seed, template)",
			}, nil},
		{"connector settings checked with the one grammar, each at its setting",
			"connector hooks \"http://127.0.0.1:1\" timeout 30 retries -1 timout 2s max_body 4MiB backoff 1d12h\n    token \"${TOKEN}\" wait ak\n",
			[]string{
				"t.flow:1:38: connector hooks: timeout \"30\": a duration needs a unit: write 30s for seconds (or 30ms, 30m, ...)",
				"t.flow:1:49: connector hooks: retries \"-1\": want a whole number of at least 0",
				"t.flow:1:60: connector hooks: timout: unknown setting (did you mean \"timeout\"?)",
				"t.flow:2:5: connector hooks: token: invalid characters", // a secret: never shown
				"t.flow:2:22: connector hooks: wait \"ak\": want accept or ack (did you mean \"ack\"?)",
			}, map[string]string{"TOKEN": "s3\ncret"}},
		{"connector without settings", "connector m \"mem://\" size 3\n",
			[]string{"t.flow:1:22: connector m: size: unknown setting (none are accepted here)"}, nil},
		{"stage durations use the one grammar: days, and no bare numbers", okHeader + "record r {\n  from \"gen://x\" decode json\n}\npipeline p {\n  from r\n  window session 1d12h\n  batch 10 every ${EVERY}\n  to \"stdio://stdout\" encode json\n}\n",
			[]string{"t.flow:9:18: batch: duration \"30\": a duration needs a unit: write 30s for seconds (or 30ms, 30m, ...)"}, map[string]string{"EVERY": "30"}},
		{"two writers", okHeader + "record r {\n  from \"gen://x\" decode json\n}\npipeline p {\n  from r\n  into r\n}\n",
			[]string{"t.flow:3:1: cycle between records: r -> (pipeline p) -> r", "t.flow:8:8: pipeline p: record r already has a writer (its inbound links); a record has exactly one writer"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := load(t, tc.src, tc.env)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestPrettyShowsLineAndCaret(t *testing.T) {
	src := "connector gen \"gen://\"\nrecord r {\n\tfrom\t\"gen://x\" decode nope\n}\n"
	_, err := Load(Options{}, Source{Name: "p.flow", Src: []byte(src)})
	var el *ErrorList
	if !errors.As(err, &el) {
		t.Fatalf("err = %v", err)
	}
	want := "p.flow:3:24: unknown codec \"nope\" (known: [json msgpack raw])\n" +
		"    \tfrom\t\"gen://x\" decode nope\n" +
		"    \t    \t" + strings.Repeat(" ", 17) + "^\n"
	if got := el.Pretty(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestAllProblemsOfAllFiles(t *testing.T) {
	a := Source{Name: "a.flow", Src: []byte("connector gen \"gen://\"\nrecord r {\n  from \"gen://x\" decode nope\n}\n")}
	b := Source{Name: "b.flow", Src: []byte("pipeline p {\n  from r\n  filter `(`\n  to \"gen2://x\" encode json\n}\n")}
	_, err := Load(Options{}, a, b)
	var el *ErrorList
	if !errors.As(err, &el) || el.Len() != 3 {
		t.Fatalf("want 3 problems in two files, got %v", err)
	}
	if el.Errors[0].Pos.File != "a.flow" || el.Errors[2].Pos.File != "b.flow" {
		t.Fatalf("problems not in file order: %v", err)
	}
}

// Warnings do not stop the load; they are logged with their positions.
func TestUseWarnings(t *testing.T) {
	var logs strings.Builder
	src := okHeader + "connector file \"file://\"\nrecord r {\n  from \"gen://x\" decode json\n}\nrecord fed {\n}\npipeline p {\n  from fed\n  to \"stdio://stdout\" encode json\n}\npipeline q {\n  from r\n  to \"stdio://stdout\" encode json\n}\n"
	opts := Options{Embedded: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	if _, err := Load(opts, Source{Name: "t.flow", Src: []byte(src)}); err != nil {
		t.Fatalf("embedded load failed: %v", err)
	}
	for _, want := range []string{
		"t.flow:3:1: connector file is declared but no link uses it",
		"t.flow:7:1: record fed has no writer: pipeline p would wait for it forever",
		"fine if Go code writes it with Runner.Writer",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("warnings %q lack %q", logs.String(), want)
		}
	}
	if strings.Contains(logs.String(), "connector gen") || strings.Contains(logs.String(), "connector stdio") {
		t.Fatalf("used connectors warned about: %s", logs.String())
	}
}

package kit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// A Secret shows its value nowhere: not through fmt (any verb, nested in
// structs, exported or unexported fields), slog, JSON or errors.
func TestSecretNeverShowsItsValue(t *testing.T) {
	const pw = "hunter2"
	sec := NewSecret(pw)
	type config struct {
		User     string
		Password Secret
		token    Secret
	}
	cfg := config{User: "edge", Password: sec, token: sec}

	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("connecting", "password", sec, "cfg", cfg)
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v": fmt.Sprintf("%v", sec), "%s": fmt.Sprintf("%s", sec), "%q": fmt.Sprintf("%q", sec),
		"%x": fmt.Sprintf("%x", sec), "%#v": fmt.Sprintf("%#v", sec), "%d": fmt.Sprintf("%d", sec),
		"struct %v": fmt.Sprintf("%v", cfg), "struct %+v": fmt.Sprintf("%+v", cfg), "struct %#v": fmt.Sprintf("%#v", cfg),
		"pointer %+v": fmt.Sprintf("%+v", &cfg), "Println": fmt.Sprintln(sec, cfg),
		"error %v": fmt.Errorf("auth with %v failed", sec).Error(),
		"slog":     logged.String(), "json": string(js),
	}
	for what, out := range outputs {
		if strings.Contains(out, pw) {
			t.Errorf("%s shows the secret: %s", what, out)
		}
	}
	if got := fmt.Sprintf("%v|%s|%q|%#v", sec, sec, sec, sec); got != `[redacted]|[redacted]|"[redacted]"|kit.Secret("[redacted]")` {
		t.Errorf("renderings: %s", got)
	}
	if !strings.Contains(logged.String(), `"password":"[redacted]"`) {
		t.Errorf("slog: %s", logged.String())
	}
	if string(js) != `{"User":"edge","Password":"[redacted]"}` {
		t.Errorf("json: %s", js)
	}
	if sec.Value() != pw || !sec.IsSet() || !sec.Equal(NewSecret(pw)) || sec.Equal(Secret{}) {
		t.Error("Value/IsSet/Equal")
	}
	var empty Secret
	if empty.String() != "" || empty.IsSet() || NewSecret("").IsSet() {
		t.Error("empty secret")
	}
	// A problem with a secret setting names the setting, never the value.
	s := Read(map[string]string{"password": pw})
	s.Secret("password")
	s.Errorf("password", "too short")
	var ke *Error
	if err := s.Err(); !errors.As(err, &ke) || err.Error() != "password: too short" || ke.Value != "" {
		t.Errorf("error = %v (%+v)", err, ke)
	}
}

// Package chromium drives a headless Chromium (Debian's
// chromium-headless-shell, installed by scripts/ensure-chromium.sh) over
// the DevTools protocol for page tests: open a URL, evaluate JavaScript in
// it, wait for a condition, take a screenshot. Loopback only.
package chromium

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Binaries are the names tried, in order.
var binaries = []string{"chromium-headless-shell", "chromium", "chromium-browser"}

// Browser is a running headless Chromium.
type Browser struct {
	t     testing.TB
	cmd   *exec.Cmd
	debug string // http://127.0.0.1:PORT
}

// Start launches a headless Chromium for the test, stopped (by its PID)
// when the test ends. Without a Chromium the test is skipped, or fails
// when the CI environment variable is set.
func Start(t testing.TB) *Browser {
	t.Helper()
	bin := ""
	for _, b := range binaries {
		if p, err := exec.LookPath(b); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no headless Chromium: make deps runs scripts/ensure-chromium.sh")
		}
		t.Skip("no headless Chromium: run scripts/ensure-chromium.sh")
	}
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--remote-debugging-address=127.0.0.1",
		"--remote-debugging-port=0", "--user-data-dir="+t.TempDir(), "--window-size=1280,860", "about:blank")
	// Its own process group: Chromium forks renderer, zygote and utility
	// processes, and they must end with it (killing only the browser's
	// PID leaves them running).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := &Browser{t: t, cmd: cmd}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the group we started
		_ = cmd.Wait()
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if _, rest, ok := strings.Cut(sc.Text(), "DevTools listening on ws://"); ok {
				host, _, _ := strings.Cut(rest, "/")
				select {
				case found <- host:
				default:
				}
			}
		}
	}()
	select {
	case host := <-found:
		b.debug = "http://" + host
	case <-time.After(30 * time.Second):
		t.Fatal("chromium did not start its DevTools endpoint within 30s")
	}
	return b
}

// Page is one tab.
type Page struct {
	t    testing.TB
	c    *websocket.Conn
	next atomic.Int64
	mu   sync.Mutex
}

// Open opens url in a new tab.
func (b *Browser) Open(url string) *Page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPut, b.debug+"/json/new?about:blank", nil)
	if err != nil {
		b.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatalf("chromium: new tab: %v", err)
	}
	defer resp.Body.Close()
	var target struct {
		WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&target); err != nil || target.WebSocketDebuggerURL == "" {
		b.t.Fatalf("chromium: new tab: %v (status %s)", err, resp.Status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, target.WebSocketDebuggerURL, nil)
	if err != nil {
		b.t.Fatalf("chromium: devtools: %v", err)
	}
	c.SetReadLimit(64 << 20)
	b.t.Cleanup(func() { c.CloseNow() })
	p := &Page{t: b.t, c: c}
	// Navigated over the protocol: a URL in /json/new's query would lose
	// its fragment.
	if err := p.call("Page.navigate", map[string]any{"url": url}, nil); err != nil {
		b.t.Fatalf("chromium: navigate to %s: %v", url, err)
	}
	return p
}

// call sends one DevTools command and returns its result.
func (p *Page) call(method string, params any, result any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	id := p.next.Add(1)
	msg, _ := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.c.Write(ctx, websocket.MessageText, msg); err != nil {
		return err
	}
	for {
		_, b, err := p.c.Read(ctx)
		if err != nil {
			return err
		}
		var ans struct {
			ID     int64           `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(b, &ans) != nil || ans.ID != id {
			continue // an event, or another answer
		}
		if ans.Error != nil {
			return fmt.Errorf("%s: %s", method, ans.Error.Message)
		}
		if result != nil {
			return json.Unmarshal(ans.Result, result)
		}
		return nil
	}
}

// Eval evaluates a JavaScript expression in the page and unmarshals its
// value (JSON-serialisable) into out.
func (p *Page) Eval(expr string, out any) error {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := p.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res); err != nil {
		return err
	}
	if res.ExceptionDetails != nil {
		return fmt.Errorf("evaluate %q: %s", expr, res.ExceptionDetails.Text)
	}
	if out == nil || len(res.Result.Value) == 0 {
		return nil
	}
	return json.Unmarshal(res.Result.Value, out)
}

// WaitFor evaluates expr (a boolean expression) until it is true, or
// fails the test after timeout with what it last saw.
func (p *Page) WaitFor(expr string, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		var ok bool
		if last = p.Eval("Boolean("+expr+")", &ok); last == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("page: %s not true within %v (last error: %v)", expr, timeout, last)
		}
		time.Sleep(50 * time.Millisecond) // the page has no change notification to wait on
	}
}

// Screenshot returns a PNG of the page.
func (p *Page) Screenshot() []byte {
	p.t.Helper()
	var res struct {
		Data string `json:"data"`
	}
	if err := p.call("Page.captureScreenshot", map[string]any{"format": "png"}, &res); err != nil {
		p.t.Fatal(err)
	}
	b, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil {
		p.t.Fatal(err)
	}
	return b
}

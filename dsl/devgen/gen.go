package devgen

import (
	"bytes"
	"fmt"
	"go/format"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Targets are the build targets Generate knows.
var Targets = []string{"cortex-m-qemu", "wasip1", "host"}

// Sizes of the generated program's storage (allocated once, at start-up).
const (
	maxFields  = 16  // fields per decoded record
	arenaBytes = 128 // string bytes per decoded record
	scratch    = 64  // string scratch per expression
	maxPacket  = 256 // MQTT packet buffer
	inflight   = 4   // QoS 1 messages in flight
	maxPayload = 160 // encoded output record
)

// GenOptions configure Generate.
type GenOptions struct {
	// Target is one of Targets.
	Target string
	// Driver is the import path of the package providing Open() (flow.Sensors, error);
	// required when the device has sensors.
	Driver string
}

// Generate renders d as a Go main package for opts.Target: gofmt'ed
// source of main.go.
func Generate(d *Device, opts GenOptions) ([]byte, error) {
	known := false
	for _, t := range Targets {
		known = known || t == opts.Target
	}
	if !known {
		return nil, fmt.Errorf("devgen: unknown target %q (want %s)", opts.Target, strings.Join(Targets, ", "))
	}
	if len(d.Sensors) > 0 && opts.Driver == "" {
		s := d.Sensors[0]
		return nil, fmt.Errorf("%s: sensor://%s needs a driver: aimdb-flow build --driver PKG (a package with func Open() (flow.Sensors, error), see device/flow.Sensors)", s.Pos, s.Name)
	}
	if opts.Target == "host" && d.MQTT != nil && len(d.Serial) > 0 {
		return nil, fmt.Errorf("devgen: a host build talks MQTT over stdin/stdout and has no stream left for the serial uplink (%s): build for cortex-m-qemu (MQTT on UART1, frames on UART0) or drop one", strings.Join(d.Serial, ", "))
	}
	g := &gen{d: d, opts: opts, vars: map[string]string{}, used: map[string]bool{}}
	src := g.file()
	out, err := format.Source(src)
	if err != nil {
		return nil, fmt.Errorf("devgen: generated code does not parse (a bug): %w\n%s", err, src)
	}
	return out, nil
}

type gen struct {
	d    *Device
	opts GenOptions
	b    bytes.Buffer
	vars map[string]string // record name -> Go variable
	used map[string]bool
}

func (g *gen) p(format string, args ...any) { fmt.Fprintf(&g.b, format, args...); g.b.WriteByte('\n') }

// recVar returns the Go variable of a record ("temp.raw" -> recTempRaw).
func (g *gen) recVar(name string) string {
	if v, ok := g.vars[name]; ok {
		return v
	}
	var b strings.Builder
	b.WriteString("rec")
	up := true
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			up = true
			continue
		}
		if up {
			r = unicode.ToUpper(r)
			up = false
		}
		b.WriteRune(r)
	}
	v := b.String()
	for i := 2; g.used[v]; i++ {
		v = b.String() + strconv.Itoa(i)
	}
	g.used[v] = true
	g.vars[name] = v
	return v
}

func q(s string) string { return strconv.Quote(s) }

// rawq quotes an expression as a raw string when it can.
func rawq(s string) string {
	if !strings.Contains(s, "`") {
		return "`" + s + "`"
	}
	return strconv.Quote(s)
}

func codecExpr(name string) string {
	if name == "binflat" {
		return "binflat.Codec{}"
	}
	return "jsonflat.Codec{}"
}

func durExpr(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d%time.Second == 0:
		return fmt.Sprintf("%d * time.Second", d/time.Second)
	case d%time.Millisecond == 0:
		return fmt.Sprintf("%d * time.Millisecond", d/time.Millisecond)
	case d%time.Microsecond == 0:
		return fmt.Sprintf("%d * time.Microsecond", d/time.Microsecond)
	}
	return fmt.Sprintf("%d", int64(d))
}

// pos renders a position relative to the .flow file's directory ("device.flow:9").
func pos(p fmt.Stringer) string { return p.String() }

func (g *gen) imports() []string {
	d := g.d
	need := map[string]bool{"context": true, "time": true, "io": true,
		"github.com/aimdb-dev/aimdb-flow/device/flow":     true,
		"github.com/aimdb-dev/aimdb-flow/pipeline/buffer": true,
	}
	if d.MQTT != nil {
		need["github.com/aimdb-dev/aimdb-flow/device/mqtt"] = true
		need["strconv"] = true
	}
	if len(d.Sensors) > 0 {
		need["github.com/aimdb-dev/aimdb-flow/device/value"] = true
		need["runtime"] = true
		need["strconv"] = true
	}
	codecs := map[string]bool{}
	for _, r := range d.Records {
		for _, s := range r.Subs {
			codecs[s.Codec] = true
		}
	}
	for _, p := range d.Pipelines {
		if p.Out != nil {
			codecs[p.Out.Codec] = true
			if p.Out.Kind == "serial" {
				need["github.com/aimdb-dev/aimdb-flow/device/frame"] = true
				need["os"] = true
			}
		}
	}
	if codecs["json"] {
		need["github.com/aimdb-dev/aimdb-flow/device/jsonflat"] = true
	}
	if codecs["binflat"] {
		need["github.com/aimdb-dev/aimdb-flow/device/binflat"] = true
	}
	switch g.opts.Target {
	case "host":
		need["os"], need["syscall"] = true, true
	case "wasip1":
		need["os"] = true
	case "cortex-m-qemu":
		if d.MQTT != nil {
			need["runtime/volatile"], need["unsafe"] = true, true
		}
	}
	var std, mod []string
	for k := range need {
		if strings.Contains(k, ".") {
			mod = append(mod, k)
		} else {
			std = append(std, k)
		}
	}
	sortStrings(std)
	sortStrings(mod)
	out := append(std, "")
	out = append(out, mod...)
	if len(d.Sensors) > 0 {
		out = append(out, "", "driver "+q(g.opts.Driver))
	}
	return out
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func (g *gen) file() []byte {
	d := g.d
	files := make([]string, len(d.Files))
	for i, f := range d.Files {
		files[i] = filepath.ToSlash(f)
	}
	names := strings.Join(files, ", ")
	g.p("// Command %s is %s built for a device (target %s) by aimdb-flow build.", progName(d), names, g.opts.Target)
	g.p("//")
	g.p("// Generated from the .flow file: records with fixed-capacity buffers, the")
	g.p("// pipelines' filters and maps on device/flow, and the device connectors. Regenerate")
	g.p("// it from the .flow file rather than edit it (aimdb-flow build --emit DIR")
	g.p("// keeps a copy). Storage is allocated once, before the main loop.")
	g.p("//")
	g.p("//\taimdb-flow build --target %s %s", g.opts.Target, names)
	g.transportDoc()
	g.p("package main")
	g.p("")
	g.p("import (")
	for _, im := range g.imports() {
		switch {
		case im == "":
			g.p("")
		case strings.HasPrefix(im, "driver "):
			g.p("\t%s", im)
		default:
			g.p("\t%s", q(im))
		}
	}
	g.p(")")
	g.p("")
	g.p("func main() {")
	g.p("\tif err := run(); err != nil {")
	g.p("\t\tconsole(\"error: \" + err.Error())")
	g.p("\t}")
	g.p("}")
	g.p("")
	if len(d.Sensors) > 0 {
		g.p("// input is a sensor source: the driver's Read, at the link's rate.")
		g.p("type input struct {")
		g.p("\tname     string // the sensor (the link's address), also the readings' topic")
		g.p("\trec      *flow.Record")
		g.p("\tevery    time.Duration")
		g.p("\tdue      time.Duration")
		g.p("\tdone     bool")
		g.p("}")
		g.p("")
	}
	g.p("// idle is the longest the main loop sleeps between polls.")
	g.p("const idle = time.Millisecond")
	g.p("")
	g.p("func run() error {")
	g.p("\tstart := time.Now()")
	g.p("\tclock := func() time.Duration { return time.Since(start) } // monotonic, for the MQTT timers and sensor rates")
	g.p("\tctx := context.Background()")
	g.p("\tf := flow.New(flow.Config{MaxFields: %d, ArenaBytes: %d, Scratch: %d})", maxFields, arenaBytes, scratch)
	g.p("")
	for _, r := range d.Records {
		buf := "buffer.Config{Kind: buffer.Latest}"
		if r.Ring > 0 {
			buf = fmt.Sprintf("buffer.Config{Kind: buffer.Ring, Size: %d}", r.Ring)
		}
		g.p("\t%s := f.Record(%s, %s) // %s", g.recVar(r.Name), q(r.Name), buf, pos(r.Pos))
	}
	if m := d.MQTT; m != nil {
		g.p("")
		g.p("\t// connector %s (%s): the server dials %s; the device", m.Name, pos(m.Pos), m.Addr)
		g.p("\t// talks MQTT over the transport its board provides (openTransport).")
		g.p("\tclient, err := mqtt.New(mqtt.Config{")
		g.p("\t\tClientID: %s,", q(m.ClientID))
		if m.Username != "" {
			g.p("\t\tUsername: %s,", q(m.Username))
		}
		if m.Password != "" {
			g.p("\t\tPassword: []byte(%s),", q(m.Password))
		}
		g.p("\t\tKeepAlive: %s,", durExpr(m.KeepAlive))
		if m.CleanStart {
			g.p("\t\tCleanStart: true,")
		}
		g.p("\t\tMaxPacket: %d, MaxInflight: %d,", maxPacket, inflight)
		g.p("\t\tSubscriptions: []mqtt.Subscription{")
		for _, r := range d.Records {
			for _, s := range r.Subs {
				g.p("\t\t\t{Topic: %s, QoS: mqtt.QoS%d, Handler: mqtt.NewRecordSource(%s, %s, %d, %d)}, // %s",
					q(s.Topic), s.QoS, g.recVar(r.Name), codecExpr(s.Codec), maxFields, arenaBytes, pos(s.Pos))
			}
		}
		g.p("\t\t},")
		g.p("\t})")
		g.p("\tif err != nil {")
		g.p("\t\treturn err")
		g.p("\t}")
	}
	needsUplink := false
	for _, p := range d.Pipelines {
		if p.Out != nil && p.Out.Kind == "serial" {
			needsUplink = true
		}
	}
	if needsUplink {
		g.p("")
		g.p("\t// The serial uplink: framed records (device/frame) on %s.", g.uplinkName())
		g.p("\tuplink := frame.NewWriter(os.Stdout, %d)", maxPacket)
	}
	for _, p := range d.Pipelines {
		g.p("")
		g.p("\t// pipeline %s (%s)", p.Name, pos(p.Pos))
		g.b.WriteString(fmt.Sprintf("\tf.Pipeline(%s).From(%s)", q(p.Name), g.recVar(p.From)))
		for _, s := range p.Stages {
			kind := "Filter"
			if s.Map {
				kind = "Map"
			}
			g.b.WriteString(fmt.Sprintf(".\n\t\t%s(%s)", kind, rawq(s.Src)))
		}
		switch {
		case p.Into != "":
			g.b.WriteString(fmt.Sprintf(".\n\t\tInto(\"\", %s)\n", g.recVar(p.Into)))
		case p.Out.Kind == "mqtt":
			retain := ""
			if p.Out.Retain {
				retain = ", Retain: true"
			}
			g.b.WriteString(fmt.Sprintf(".\n\t\tTo(%s, mqtt.NewSink(client, mqtt.SinkOptions{Codec: %s, QoS: mqtt.QoS%d%s, MaxPayload: %d, Clock: clock}))\n",
				q(p.Out.Topic), codecExpr(p.Out.Codec), p.Out.QoS, retain, maxPayload))
		default:
			g.b.WriteString(fmt.Sprintf(".\n\t\tTo(%s, flow.NewFrameSink(uplink, %s, %d))\n", q(p.Out.Topic), codecExpr(p.Out.Codec), maxPayload))
		}
	}
	g.p("\tif err := f.Validate(); err != nil {")
	g.p("\t\treturn err")
	g.p("\t}")
	if d.MQTT != nil {
		g.p("\trw, err := openTransport()")
		g.p("\tif err != nil {")
		g.p("\t\treturn err")
		g.p("\t}")
		g.p("\tif err := client.Connect(rw, clock()); err != nil {")
		g.p("\t\treturn err")
		g.p("\t}")
	}
	g.p("")
	if len(d.Sensors) > 0 {
		g.p("\tsensors, err := driver.Open()")
		g.p("\tif err != nil {")
		g.p("\t\treturn err")
		g.p("\t}")
		g.p("\treading := value.NewObject(%d, %d)", maxFields, arenaBytes)
		g.p("\tinputs := []input{")
		for _, s := range d.Sensors {
			g.p("\t\t{name: %s, rec: %s, every: %s}, // %s", q(s.Name), g.recVar(s.Record), durExpr(s.Every), pos(s.Pos))
		}
		g.p("\t}")
		g.p("\t// Allocations are counted from the second reading on: the first")
		g.p("\t// warms up; after it, a reading should allocate nothing.")
		g.p("\tvar readings, failed, lost uint64")
		g.p("\tvar mem runtime.MemStats")
		g.p("\tvar mallocs uint64")
		g.p("\tfor active := len(inputs); active > 0; {")
		g.p("\t\tnow := clock()")
		g.p("\t\tnext := now + idle")
		g.p("\t\tfor i := range inputs {")
		g.p("\t\t\tin := &inputs[i]")
		g.p("\t\t\tif in.done {")
		g.p("\t\t\t\tcontinue")
		g.p("\t\t\t}")
		g.p("\t\t\tif now >= in.due {")
		g.p("\t\t\t\tin.due = now + in.every")
		g.p("\t\t\t\treading.Reset()")
		g.p("\t\t\t\tswitch sensors.Read(in.name, reading) {")
		g.p("\t\t\t\tcase flow.Reading:")
		g.p("\t\t\t\t\tif err := in.rec.Write(ctx, in.name, reading); err != nil {")
		g.p("\t\t\t\t\t\tlost++ // longer than flow.MaxMsg")
		g.p("\t\t\t\t\t}")
		g.p("\t\t\t\t\treadings++")
		g.p("\t\t\t\tcase flow.NoReading:")
		g.p("\t\t\t\tcase flow.SensorDone:")
		g.p("\t\t\t\t\tin.done = true")
		g.p("\t\t\t\t\tactive--")
		g.p("\t\t\t\t\tcontinue")
		g.p("\t\t\t\tdefault:")
		g.p("\t\t\t\t\tfailed++")
		g.p("\t\t\t\t}")
		g.p("\t\t\t}")
		g.p("\t\t\tif in.due < next {")
		g.p("\t\t\t\tnext = in.due")
		g.p("\t\t\t}")
		g.p("\t\t}")
		g.p("\t\tif _, err := f.Poll(ctx); err != nil {")
		g.p("\t\t\treturn err")
		g.p("\t\t}")
		if d.MQTT != nil {
			g.p("\t\tif err := client.Poll(clock()); err != nil {")
			g.p("\t\t\treturn err // a board would close the transport, reopen it and Connect again")
			g.p("\t\t}")
		}
		g.p("\t\tif readings == 1 && mallocs == 0 {")
		g.p("\t\t\truntime.ReadMemStats(&mem)")
		g.p("\t\t\tmallocs = mem.Mallocs")
		g.p("\t\t}")
		g.p("\t\tif wait := next - clock(); wait > 0 {")
		g.p("\t\t\ttime.Sleep(wait)")
		g.p("\t\t}")
		g.p("\t}")
		g.p("\truntime.ReadMemStats(&mem)")
		g.p("\tmallocs = mem.Mallocs - mallocs")
	}
	g.p("\t// Drain: every buffered record through the pipelines%s.", map[bool]string{true: ", every QoS 1 message acknowledged", false: ""}[d.MQTT != nil])
	g.p("\tfor {")
	g.p("\t\tn, err := f.Poll(ctx)")
	g.p("\t\tif err != nil {")
	g.p("\t\t\treturn err")
	g.p("\t\t}")
	if d.MQTT != nil {
		g.p("\t\tif err := client.Poll(clock()); err != nil {")
		g.p("\t\t\treturn err")
		g.p("\t\t}")
		g.p("\t\tif n == 0 && client.Pending() == 0 {")
	} else {
		g.p("\t\tif n == 0 {")
	}
	g.p("\t\t\tbreak")
	g.p("\t\t}")
	g.p("\t\ttime.Sleep(idle)")
	g.p("\t}")
	var summary []string
	if d.MQTT != nil {
		g.p("\tst := client.Stats()")
		summary = append(summary, `"published " + strconv.FormatUint(st.Published, 10)`, `", acknowledged " + strconv.FormatUint(st.Acked, 10)`)
	}
	if len(d.Sensors) > 0 {
		sep := `", "`
		if len(summary) == 0 {
			sep = `""`
		}
		summary = append(summary, sep+` + "readings " + strconv.FormatUint(readings, 10)`,
			`", failed " + strconv.FormatUint(failed, 10) + ", lost " + strconv.FormatUint(lost, 10)`,
			`", allocations after the first reading " + strconv.FormatUint(mallocs, 10)`)
	}
	if len(summary) > 0 {
		g.p("\tconsole(%s)", strings.Join(summary, " +\n\t\t"))
	}
	if d.MQTT != nil {
		g.p("\treturn client.Disconnect()")
	} else {
		g.p("\treturn nil")
	}
	g.p("}")
	g.transport(needsUplink)
	return g.b.Bytes()
}

func progName(d *Device) string {
	if len(d.Files) == 0 {
		return "device"
	}
	base := strings.TrimSuffix(filepath.Base(d.Files[0]), ".flow")
	if base == "" {
		return "device"
	}
	return base
}

func (g *gen) uplinkName() string {
	switch g.opts.Target {
	case "cortex-m-qemu":
		return "UART0 (os.Stdout)"
	}
	return "stdout"
}

func (g *gen) transportDoc() {
	d := g.d
	switch g.opts.Target {
	case "cortex-m-qemu":
		if d.MQTT != nil {
			g.p("//")
			g.p("// The MQTT link is the LM3S6965's UART1, which qemu connects to the broker:")
			g.p("//")
			g.p("//\tqemu-system-arm -machine lm3s6965evb -semihosting -display none -monitor none \\")
			g.p("//\t\t-serial stdio -serial tcp:%s,nodelay=on -kernel device.elf", d.MQTT.Addr)
		}
		if len(d.Serial) > 0 {
			g.p("//")
			g.p("// The serial uplink is UART0 (os.Stdout): frames for connectors/serial on the host.")
		}
	case "host":
		if d.MQTT != nil {
			g.p("//")
			g.p("// The MQTT link is stdin/stdout (TinyGo has no net package): connect them to")
			g.p("// the broker, e.g. socat TCP:%s EXEC:./device; the console is stderr.", d.MQTT.Addr)
		}
	case "wasip1":
		if d.MQTT != nil {
			g.p("//")
			g.p("// The MQTT link is stdin/stdout (WASI preview 1 has no sockets); reads block,")
			g.p("// so the runner must keep stdin fed (the broker answers every QoS 1 publish).")
		}
	}
}

func (g *gen) transport(needsUplink bool) {
	d := g.d
	switch g.opts.Target {
	case "cortex-m-qemu":
		if needsUplink {
			g.p("")
			g.p("// console is silent: UART0 carries the framed uplink.")
			g.p("func console(string) {}")
		} else {
			g.p("")
			g.p("// console prints a line on UART0.")
			g.p("func console(s string) { println(s) }")
		}
		if d.MQTT == nil {
			return
		}
		g.b.WriteString(qemuUART)
	case "host":
		g.p("")
		g.p("// console prints a line on stderr (stdout may carry the MQTT link).")
		g.p("func console(s string) { os.Stderr.WriteString(s + \"\\n\") }")
		if d.MQTT == nil {
			return
		}
		g.b.WriteString(hostStdio)
	case "wasip1":
		g.p("")
		g.p("// console prints a line on stderr (stdout may carry the MQTT link).")
		g.p("func console(s string) { os.Stderr.WriteString(s + \"\\n\") }")
		if d.MQTT == nil {
			return
		}
		g.b.WriteString(wasiStdio)
	}
}

const qemuUART = `
// uart is the LM3S6965's UART1 (a PL011), polled: the MQTT link. Under
// qemu, -serial stdio -serial tcp:HOST:PORT connects UART0 to the console
// and UART1 to the broker. On another board, return the network driver's
// socket (any io.ReadWriter whose Read does not block) from openTransport.
type uart struct {
	dr *volatile.Register32 // data
	fr *volatile.Register32 // flags
}

const (
	uart1Base = 0x4000D000
	frRXFE    = 1 << 4 // receive FIFO empty
	frTXFF    = 1 << 5 // transmit FIFO full
)

func openTransport() (io.ReadWriter, error) {
	return &uart{
		dr: (*volatile.Register32)(unsafe.Pointer(uintptr(uart1Base))),
		fr: (*volatile.Register32)(unsafe.Pointer(uintptr(uart1Base + 0x18))),
	}, nil
}

// Read returns what the receive FIFO holds, without blocking.
func (u *uart) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) && u.fr.Get()&frRXFE == 0 {
		b[n] = byte(u.dr.Get())
		n++
	}
	return n, nil
}

// Write sends b, waiting while the transmit FIFO is full.
func (u *uart) Write(b []byte) (int, error) {
	for _, c := range b {
		for u.fr.Get()&frTXFF != 0 {
		}
		u.dr.Set(uint32(c))
	}
	return len(b), nil
}

// Buffered reports whether a byte is waiting (1 means at least one).
func (u *uart) Buffered() int {
	if u.fr.Get()&frRXFE != 0 {
		return 0
	}
	return 1
}
`

const hostStdio = `
// stdio is the MQTT link on a host: stdin (non-blocking) and stdout.
type stdio struct{}

func openTransport() (io.ReadWriter, error) {
	if err := syscall.SetNonblock(0, true); err != nil {
		return nil, err
	}
	return stdio{}, nil
}

// Read returns what stdin holds, without blocking; io.EOF when the peer
// has closed it.
func (stdio) Read(b []byte) (int, error) {
	n, err := syscall.Read(0, b)
	switch {
	case err == syscall.EAGAIN:
		return 0, nil
	case err != nil:
		return 0, err
	case n == 0 && len(b) > 0:
		return 0, io.EOF
	}
	return n, nil
}

func (stdio) Write(b []byte) (int, error) { return os.Stdout.Write(b) }
`

const wasiStdio = `
// stdio is the MQTT link under WASI: stdin and stdout.
type stdio struct{}

func openTransport() (io.ReadWriter, error) { return stdio{}, nil }

func (stdio) Read(b []byte) (int, error)  { return os.Stdin.Read(b) }
func (stdio) Write(b []byte) (int, error) { return os.Stdout.Write(b) }
`

// ModuleOptions configure WriteModule.
type ModuleOptions struct {
	// FlowDir is the directory of the github.com/aimdb-dev/aimdb-flow
	// module (the checkout whose device packages the program imports).
	FlowDir string
	// Replace maps further module paths to directories (the driver's
	// module when it is not aimdb-flow's).
	Replace map[string]string
	// GoVersion is the go directive (default "1.26.0").
	GoVersion string
}

// FlowModule is the aimdb-flow module path.
const FlowModule = "github.com/aimdb-dev/aimdb-flow"

// WriteModule writes main.go and a go.mod (module aimdbflow.local/NAME,
// requiring aimdb-flow, replaced by opts.FlowDir) into dir, which it
// creates.
func WriteModule(dir, name string, mainGo []byte, opts ModuleOptions) error {
	if opts.GoVersion == "" {
		opts.GoVersion = "1.26.0"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("devgen: %w", err)
	}
	var mod bytes.Buffer
	fmt.Fprintf(&mod, "// Generated by aimdb-flow build.\nmodule aimdbflow.local/%s\n\ngo %s\n\nrequire %s v0.0.0\n", modName(name), opts.GoVersion, FlowModule)
	var paths []string
	for p := range opts.Replace {
		if p != FlowModule {
			paths = append(paths, p)
		}
	}
	sortStrings(paths)
	for _, p := range paths {
		fmt.Fprintf(&mod, "\nrequire %s v0.0.0\n", p)
	}
	fmt.Fprintf(&mod, "\nreplace %s => %s\n", FlowModule, opts.FlowDir)
	for _, p := range paths {
		fmt.Fprintf(&mod, "\nreplace %s => %s\n", p, opts.Replace[p])
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), mod.Bytes(), 0o644); err != nil {
		return fmt.Errorf("devgen: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), mainGo, 0o644); err != nil {
		return fmt.Errorf("devgen: %w", err)
	}
	return nil
}

func modName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		return "device"
	}
	return b.String()
}

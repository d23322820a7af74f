//go:build linux

package serial

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/aimdb-dev/aimdb-flow/device/frame"
)

// openPTY returns the master side and the slave path of a new
// pseudo-terminal: a real tty, driven like a serial port.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	rc, _ := m.SyscallConn()
	var n uint32
	var e1, e2 syscall.Errno
	rc.Control(func(fd uintptr) {
		var unlock int32
		_, _, e1 = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock)))
		_, _, e2 = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n)))
	})
	if e1 != 0 || e2 != 0 {
		t.Fatalf("pty ioctl: %v %v", e1, e2)
	}
	return m, "/dev/pts/" + strconv.Itoa(int(n))
}

// A tty in its default (cooked) mode would translate bytes (CR/LF, erase
// characters, echo); frames pass byte-exact only after setRaw.
func TestTTYRawModeAndBaud(t *testing.T) {
	m, slave := openPTY(t)
	s, err := OpenPath(slave, 115200)(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := s.(*os.File)
	if sp, err := termiosSpeed(f); err != nil || sp != syscall.B115200 {
		t.Fatalf("speed %#o, %v; want B115200", sp, err)
	}
	payload := []byte("{\"t\":\"\r\n\x7f\x03\x15\x04\"}") // CR, LF, DEL, ^C, ^U, ^D: all mangled in cooked mode
	var want [][]byte
	for i := 0; i < 20; i++ {
		want = append(want, append(payload, byte(i)))
	}
	go func() {
		w := frame.NewWriter(m, 64)
		for _, p := range want {
			w.WriteRecord("tty/test", p)
		}
	}()
	f.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := frame.NewReader(f, 64)
	for i, p := range want {
		tp, got, err := r.ReadRecord()
		if err != nil || string(tp) != "tty/test" || !bytes.Equal(got, p) {
			t.Fatalf("frame %d: %q %q %v", i, tp, got, err)
		}
	}
	if _, err := OpenPath(slave, 12345)(context.Background()); err == nil {
		t.Fatal("unsupported baud accepted")
	}
	if _, err := OpenPath(os.DevNull, 9600)(context.Background()); err == nil {
		t.Fatal("baud on a non-tty accepted")
	}
}

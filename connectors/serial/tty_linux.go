//go:build linux

package serial

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

const cbaud = 0o010017 // CBAUD: not exported by package syscall

var speeds = map[int]uint32{
	1200: syscall.B1200, 2400: syscall.B2400, 4800: syscall.B4800, 9600: syscall.B9600,
	19200: syscall.B19200, 38400: syscall.B38400, 57600: syscall.B57600, 115200: syscall.B115200,
	230400: syscall.B230400, 460800: syscall.B460800, 921600: syscall.B921600,
	1000000: syscall.B1000000, 2000000: syscall.B2000000, 4000000: syscall.B4000000,
}

// setRaw puts a tty in raw 8N1 mode at baud (like cfmakeraw + cfsetspeed).
func setRaw(f *os.File, baud int) error {
	speed, ok := speeds[baud]
	if !ok {
		return fmt.Errorf("unsupported baud rate %d", baud)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ioErr error
	err = rc.Control(func(fd uintptr) {
		var t syscall.Termios
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TCGETS, uintptr(unsafe.Pointer(&t))); e != 0 {
			ioErr = fmt.Errorf("not a tty (TCGETS): %w", e)
			return
		}
		t.Iflag &^= syscall.IGNBRK | syscall.BRKINT | syscall.PARMRK | syscall.ISTRIP | syscall.INLCR | syscall.IGNCR | syscall.ICRNL | syscall.IXON
		t.Oflag &^= syscall.OPOST
		t.Lflag &^= syscall.ECHO | syscall.ECHONL | syscall.ICANON | syscall.ISIG | syscall.IEXTEN
		t.Cflag &^= syscall.CSIZE | syscall.PARENB | cbaud
		t.Cflag |= syscall.CS8 | syscall.CREAD | syscall.CLOCAL | speed
		t.Ispeed, t.Ospeed = speed, speed
		t.Cc[syscall.VMIN], t.Cc[syscall.VTIME] = 1, 0
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TCSETS, uintptr(unsafe.Pointer(&t))); e != 0 {
			ioErr = fmt.Errorf("TCSETS: %w", e)
		}
	})
	if err != nil {
		return err
	}
	return ioErr
}

// termiosSpeed returns the output speed constant configured on a tty (for
// tests).
func termiosSpeed(f *os.File) (uint32, error) {
	var t syscall.Termios
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var e syscall.Errno
	rc.Control(func(fd uintptr) {
		_, _, e = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TCGETS, uintptr(unsafe.Pointer(&t)))
	})
	if e != 0 {
		return 0, e
	}
	return t.Cflag & cbaud, nil
}

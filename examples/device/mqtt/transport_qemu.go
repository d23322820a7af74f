//go:build tinygo && lm3s6965

package main

import (
	"io"
	"runtime/volatile"
	"unsafe"
)

// uart is the LM3S6965's UART1 (a PL011), polled: the MQTT link. Under
// qemu, `-serial stdio -serial tcp:HOST:PORT` connects UART0 to the
// console and UART1 to the broker.
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

// Buffered reports whether a byte is waiting (the PL011 has no count
// register: 1 means "at least one").
func (u *uart) Buffered() int {
	if u.fr.Get()&frRXFE != 0 {
		return 0
	}
	return 1
}

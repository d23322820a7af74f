// Package frame carries records over byte streams without `net`: a UART, a
// pipe, a file or a TCP bridge. Each frame is the COBS encoding of
// (message || CRC-16/CCITT-FALSE of message, big endian) followed by a 0x00
// delimiter, so a reader that starts mid-stream or meets line noise
// resynchronises at the next 0x00 and corrupted frames are detected.
//
// A record message (AppendRecord/SplitRecord) is a uvarint topic length,
// the topic, then the payload (e.g. a jsonflat object).
//
// Writer and Reader preallocate their buffers; writing and reading a frame
// allocate nothing. The package builds under TinyGo.
package frame

import (
	"errors"
	"io"
)

// Errors reported by Reader and Writer.
var (
	// ErrTooLong: a frame exceeded the configured maximum. The reader skips
	// to the next delimiter.
	ErrTooLong = errors.New("frame: too long")
	// ErrCorrupt: a frame failed COBS decoding or its CRC check. The reader
	// has already moved on to the next frame.
	ErrCorrupt = errors.New("frame: corrupt (bad COBS or CRC)")
	// ErrRecord: a frame is not a valid record message.
	ErrRecord = errors.New("frame: malformed record message")
)

// Overhead returns the largest number of bytes a frame adds to an n-byte
// message (CRC, COBS code bytes and the delimiter).
func Overhead(n int) int { return 2 + (n+2)/254 + 1 + 1 }

// CRC16 computes CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF).
func CRC16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc ^= uint16(c) << 8
		for i := 0; i < 8; i++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// AppendEncode appends the frame for msg to dst.
func AppendEncode(dst, msg []byte) []byte {
	crc := CRC16(msg)
	tail := [2]byte{byte(crc >> 8), byte(crc)}
	e := cobsEncoder{dst: dst, codeAt: len(dst), code: 1}
	e.dst = append(e.dst, 0)
	for _, c := range msg {
		e.put(c)
	}
	e.put(tail[0])
	e.put(tail[1])
	e.dst[e.codeAt] = e.code
	return append(e.dst, 0)
}

// cobsEncoder is a plain struct rather than a closure: TinyGo heap-allocates
// variables captured by closures on some targets.
type cobsEncoder struct {
	dst    []byte
	codeAt int
	code   byte
}

func (e *cobsEncoder) put(c byte) {
	if c == 0 {
		e.dst[e.codeAt] = e.code
		e.codeAt = len(e.dst)
		e.dst = append(e.dst, 0)
		e.code = 1
		return
	}
	e.dst = append(e.dst, c)
	e.code++
	if e.code == 0xFF {
		e.dst[e.codeAt] = e.code
		e.codeAt = len(e.dst)
		e.dst = append(e.dst, 0)
		e.code = 1
	}
}

// Decode decodes one frame body (without the 0x00 delimiter) in place and
// returns the message, checking the CRC.
func Decode(body []byte) ([]byte, error) {
	out := 0
	i := 0
	for i < len(body) {
		code := int(body[i])
		if code == 0 || i+code > len(body) {
			return nil, ErrCorrupt
		}
		i++
		for k := 1; k < code; k++ {
			body[out] = body[i]
			out++
			i++
		}
		if code != 0xFF && i < len(body) {
			body[out] = 0
			out++
		}
	}
	if out < 2 {
		return nil, ErrCorrupt
	}
	msg := body[:out-2]
	if CRC16(msg) != uint16(body[out-2])<<8|uint16(body[out-1]) {
		return nil, ErrCorrupt
	}
	return msg, nil
}

// Writer writes frames to an io.Writer, one Write call per frame.
type Writer struct {
	w   io.Writer
	buf []byte // encoded frame
	msg []byte // record message being framed
	max int
}

// NewWriter returns a Writer for messages of up to maxMsg bytes; its
// buffers (about 2*maxMsg bytes) are allocated here, once.
func NewWriter(w io.Writer, maxMsg int) *Writer {
	return &Writer{w: w, buf: make([]byte, 0, maxMsg+Overhead(maxMsg)), msg: make([]byte, 0, maxMsg), max: maxMsg}
}

// WriteFrame frames msg and writes it.
func (fw *Writer) WriteFrame(msg []byte) error {
	if len(msg) > fw.max {
		return ErrTooLong
	}
	fw.buf = AppendEncode(fw.buf[:0], msg)
	_, err := fw.w.Write(fw.buf)
	return err
}

// WriteRecord frames a record message (topic + payload).
func (fw *Writer) WriteRecord(topic string, payload []byte) error {
	if uvarintLen(uint64(len(topic)))+len(topic)+len(payload) > fw.max {
		return ErrTooLong
	}
	fw.msg = AppendRecord(fw.msg[:0], topic, payload)
	return fw.WriteFrame(fw.msg)
}

// Reader reads frames from an io.Reader.
type Reader struct {
	r     io.Reader
	buf   []byte // read buffer
	start int    // unread data is buf[start:end]
	end   int
	frame []byte // current frame body being assembled
	max   int
	skip  bool // discarding an overlong frame until the next delimiter
	err   error
}

// NewReader returns a Reader for messages of up to maxMsg bytes.
func NewReader(r io.Reader, maxMsg int) *Reader {
	n := maxMsg + Overhead(maxMsg)
	return &Reader{r: r, buf: make([]byte, 4096), frame: make([]byte, 0, n), max: n}
}

// ReadFrame returns the next message. The slice is valid until the next
// call. ErrCorrupt and ErrTooLong report a bad frame that was skipped: the
// caller may count it and call ReadFrame again. At the end of the stream it
// returns io.EOF, or io.ErrUnexpectedEOF if a partial frame was pending.
func (fr *Reader) ReadFrame() ([]byte, error) {
	fr.frame = fr.frame[:0]
	for {
		for fr.start < fr.end {
			c := fr.buf[fr.start]
			fr.start++
			if c == 0 {
				if fr.skip {
					fr.skip = false
					fr.frame = fr.frame[:0]
					return nil, ErrTooLong
				}
				if len(fr.frame) == 0 {
					continue // empty frame: idle delimiter
				}
				return Decode(fr.frame)
			}
			if fr.skip {
				continue
			}
			if len(fr.frame) == fr.max {
				fr.skip = true
				continue
			}
			fr.frame = append(fr.frame, c)
		}
		if fr.err != nil {
			if len(fr.frame) > 0 || fr.skip {
				fr.frame, fr.skip = fr.frame[:0], false
				if fr.err == io.EOF {
					return nil, io.ErrUnexpectedEOF
				}
			}
			return nil, fr.err
		}
		n, err := fr.r.Read(fr.buf)
		fr.start, fr.end = 0, n
		if err != nil {
			fr.err = err
		}
	}
}

// ReadRecord reads the next frame and splits it into topic and payload.
// Both are valid until the next call.
func (fr *Reader) ReadRecord() (topic, payload []byte, err error) {
	msg, err := fr.ReadFrame()
	if err != nil {
		return nil, nil, err
	}
	return SplitRecord(msg)
}

// AppendRecord appends a record message: uvarint(len(topic)) topic payload.
func AppendRecord(dst []byte, topic string, payload []byte) []byte {
	for x := uint64(len(topic)); ; x >>= 7 {
		if x < 0x80 {
			dst = append(dst, byte(x))
			break
		}
		dst = append(dst, byte(x)|0x80)
	}
	dst = append(dst, topic...)
	return append(dst, payload...)
}

// SplitRecord splits a record message.
func SplitRecord(msg []byte) (topic, payload []byte, err error) {
	var n uint64
	k := 0
	for shift := uint(0); ; shift += 7 {
		if k == len(msg) || shift > 28 {
			return nil, nil, ErrRecord
		}
		c := msg[k]
		k++
		n |= uint64(c&0x7f) << shift
		if c < 0x80 {
			break
		}
	}
	if uint64(len(msg)-k) < n {
		return nil, nil, ErrRecord
	}
	return msg[k : k+int(n)], msg[k+int(n):], nil
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

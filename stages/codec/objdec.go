package codec

import "unsafe"

// lazyObject indexes the object starting at d.pos (a '{'): it validates
// the whole object exactly as object() does, with the same errors, but
// records each top-level field's key and value span instead of building a
// map. Nested values are validated by skip.
func (d *jsonDecoder) lazyObject() (*Object, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	start := d.pos
	do := d.newObject()
	x := &do.idx
	do.obj.idx = x
	x.fields = x.inline[:0]
	d.pos++ // '{'
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		d.depth--
		x.raw = d.data[start:d.pos]
		return &do.obj, nil
	}
	for {
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.unexpectedEnd()
		}
		if d.data[d.pos] != '"' {
			return nil, d.errorf("invalid character %s looking for beginning of object key string", quoteChar(d.data[d.pos]))
		}
		ks := d.pos
		kb, err := d.str()
		if err != nil {
			return nil, err
		}
		f := objField{keyStart: int32(ks - start)}
		if n := d.pos - ks; n <= maxKeyLen {
			f.keyLen = uint16(n)
		}
		if len(kb) != d.pos-ks-2 || d.badUTF8 || f.keyLen == 0 {
			// An escaped key (rare): keep its unescaped text aside.
			f.keyEsc = true
			for len(x.esc) < len(x.fields) {
				x.esc = append(x.esc, "")
			}
			x.esc = append(x.esc, d.keys.intern(kb))
		}
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.unexpectedEnd()
		}
		if d.data[d.pos] != ':' {
			return nil, d.errorf("invalid character %s after object key", quoteChar(d.data[d.pos]))
		}
		d.pos++
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.unexpectedEnd()
		}
		vs := d.pos
		f.start = int32(vs - start)
		switch c := d.data[d.pos]; c {
		case '"':
			bad := d.badUTF8
			d.badUTF8 = false
			vb, err := d.str()
			if err != nil {
				return nil, err
			}
			// Escapes only shorten a string, so an unchanged length with
			// no invalid UTF-8 means the bytes are the value.
			if len(vb) == d.pos-vs-2 && !d.badUTF8 {
				f.kind = kindString
			} else {
				f.kind = kindEscaped
			}
			d.badUTF8 = d.badUTF8 || bad
		case '{', '[':
			f.kind = kindNested
			if err := d.skip(); err != nil {
				return nil, err
			}
		case 't':
			f.kind = kindTrue
			err = d.literal("true")
		case 'f':
			f.kind = kindFalse
			err = d.literal("false")
		case 'n':
			f.kind = kindNull
			err = d.literal("null")
		default:
			if c != '-' && (c < '0' || c > '9') {
				return nil, d.errorf("invalid character %s looking for beginning of value", quoteChar(c))
			}
			f.kind = kindNumber
			f.num, err = d.number()
			if d.isInt {
				f.kind = kindInt
				*(*int64)(unsafe.Pointer(&f.num)) = d.intVal
			}
		}
		if err != nil {
			return nil, err
		}
		f.end = int32(d.pos - start)
		x.fields = append(x.fields, f)
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.unexpectedEnd()
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			d.depth--
			x.raw = d.data[start:d.pos]
			x.badUTF8 = d.badUTF8
			return &do.obj, nil
		default:
			return nil, d.errorf("invalid character %s after object key:value pair", quoteChar(d.data[d.pos]))
		}
	}
}

// skip validates one value without building it, with value()'s errors.
func (d *jsonDecoder) skip() error {
	d.skipSpace()
	if d.pos >= len(d.data) {
		return d.unexpectedEnd()
	}
	switch c := d.data[d.pos]; c {
	case '{':
		return d.skipObject()
	case '[':
		return d.skipArray()
	case '"':
		_, err := d.str()
		return err
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			_, err := d.number()
			return err
		}
		return d.errorf("invalid character %s looking for beginning of value", quoteChar(c))
	}
}

func (d *jsonDecoder) skipObject() error {
	if err := d.enter(); err != nil {
		return err
	}
	d.pos++ // '{'
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		d.depth--
		return nil
	}
	for {
		d.skipSpace()
		if d.pos >= len(d.data) {
			return d.unexpectedEnd()
		}
		if d.data[d.pos] != '"' {
			return d.errorf("invalid character %s looking for beginning of object key string", quoteChar(d.data[d.pos]))
		}
		if _, err := d.str(); err != nil {
			return err
		}
		d.skipSpace()
		if d.pos >= len(d.data) {
			return d.unexpectedEnd()
		}
		if d.data[d.pos] != ':' {
			return d.errorf("invalid character %s after object key", quoteChar(d.data[d.pos]))
		}
		d.pos++
		if err := d.skip(); err != nil {
			return err
		}
		d.skipSpace()
		if d.pos >= len(d.data) {
			return d.unexpectedEnd()
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			d.depth--
			return nil
		default:
			return d.errorf("invalid character %s after object key:value pair", quoteChar(d.data[d.pos]))
		}
	}
}

func (d *jsonDecoder) skipArray() error {
	if err := d.enter(); err != nil {
		return err
	}
	d.pos++ // '['
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		d.depth--
		return nil
	}
	for {
		if err := d.skip(); err != nil {
			return err
		}
		d.skipSpace()
		if d.pos >= len(d.data) {
			return d.unexpectedEnd()
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case ']':
			d.pos++
			d.depth--
			return nil
		default:
			return d.errorf("invalid character %s after array element", quoteChar(d.data[d.pos]))
		}
	}
}

// objSlab is how many decoded objects one allocation holds. Objects are
// handed out from a chunk instead of one allocation each; the cost is
// bounded retention: an object that outlives its siblings keeps its chunk
// (objSlab objects, about 7.5 KiB) alive, like the value slabs of the eager
// decoder.
const objSlab = 32

func (d *jsonDecoder) newObject() *decodedObject {
	if len(d.objs) == 0 {
		d.objs = make([]decodedObject, objSlab)
	}
	o := &d.objs[0]
	d.objs = d.objs[1:]
	return o
}

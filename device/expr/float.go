package expr

// parseFloat parses a decimal float literal ("1.5", ".5", "2e-3") with the
// exact fast path (Clinger): a mantissa of at most 15 significant digits
// times an exact power of ten up to 1e22 is correctly rounded by one float
// operation, so the result equals strconv.ParseFloat's. Literals outside it
// are reported (ok false) instead of pulling strconv's float tables (~20 KB
// of flash) into device builds.
func parseFloat(s string) (f float64, ok bool) {
	var mant uint64
	digits, exp := 0, 0
	i := 0
	sawDot, sawDigit := false, false
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			sawDigit = true
			if mant == 0 && c == '0' {
				if sawDot {
					exp--
				}
				continue
			}
			if digits >= 15 {
				return 0, false
			}
			mant = mant*10 + uint64(c-'0')
			digits++
			if sawDot {
				exp--
			}
		case c == '.' && !sawDot:
			sawDot = true
		case c == 'e' || c == 'E':
			goto exponent
		default:
			return 0, false
		}
	}
	goto done
exponent:
	{
		i++
		neg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			neg = s[i] == '-'
			i++
		}
		if i == len(s) {
			return 0, false
		}
		e := 0
		for ; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' || e > 1000 {
				return 0, false
			}
			e = e*10 + int(s[i]-'0')
		}
		if neg {
			e = -e
		}
		exp += e
	}
done:
	if !sawDigit {
		return 0, false
	}
	f = float64(mant)
	if mant == 0 {
		return 0, true
	}
	// Fold surplus exponent into the mantissa while it stays exact.
	for exp > 22 && f < 1e15 {
		f *= 10
		exp--
	}
	switch {
	case exp > 22 || exp < -22:
		return 0, false
	case exp >= 0:
		return f * pow10[exp], true
	}
	return f / pow10[-exp], true
}

var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseInt parses an optionally signed integer in base 10 or 16 (digits
// only, no prefix), failing on overflow. It replaces strconv.ParseInt, whose
// error comparisons would link reflection-based interface equality into
// device builds.
func parseInt(s string, base uint64) (int64, bool) {
	neg := false
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return 0, false
	}
	var u uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return 0, false
		}
		if u > (1<<64-1-d)/base {
			return 0, false
		}
		u = u*base + d
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > 1<<63-1 {
		return 0, false
	}
	return int64(u), true
}

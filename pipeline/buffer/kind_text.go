package buffer

import "errors"

// MarshalText renders the kind by its DSL keyword, so JSON (the /stats
// endpoint, the records API) shows "ring", not 1.
func (k Kind) MarshalText() ([]byte, error) {
	switch k {
	case Ring, Latest, Mailbox, Queue:
		return []byte(k.String()), nil
	}
	return nil, errors.New("buffer: unknown kind " + k.String())
}

// UnmarshalText reads a kind's DSL keyword.
func (k *Kind) UnmarshalText(b []byte) error {
	for _, c := range []Kind{Ring, Latest, Mailbox, Queue} {
		if string(b) == c.String() {
			*k = c
			return nil
		}
	}
	return errors.New("buffer: unknown kind " + string(b) + " (want ring, latest, mailbox or queue)")
}

// Package topic matches MQTT-style topic names against filters with the
// single-level wildcard '+' and the multi-level wildcard '#', and routes a
// topic to every value registered under a matching filter.
//
// The matcher follows MQTT 5 §4.7: levels are separated by '/'; '+' matches
// exactly one level (possibly empty); '#' must be the last level and matches
// the parent level and any number of child levels; filters starting with a
// wildcard do not match topics starting with '$'. A shared-subscription
// prefix "$share/GROUP/" is stripped by Filter before matching.
//
// The package has no dependencies beyond strings and errors so it builds
// under TinyGo.
package topic

import (
	"errors"
	"strings"
)

// Validate reports whether filter is a well-formed topic filter.
func Validate(filter string) error {
	if filter == "" {
		return errors.New("empty topic filter")
	}
	levels := strings.Split(filter, "/")
	for i, l := range levels {
		switch {
		case l == "#":
			if i != len(levels)-1 {
				return errors.New("'#' must be the last level of a topic filter")
			}
		case l == "+":
		case strings.ContainsAny(l, "#+"):
			return errors.New("wildcards '+' and '#' must occupy a whole level")
		}
	}
	return nil
}

// Filter strips an MQTT 5 shared-subscription prefix ($share/GROUP/) and
// returns the filter that topics are matched against, plus the group name
// (empty when not shared).
func Filter(sub string) (filter, group string) {
	if rest, ok := strings.CutPrefix(sub, "$share/"); ok {
		if i := strings.IndexByte(rest, '/'); i > 0 {
			return rest[i+1:], rest[:i]
		}
	}
	return sub, ""
}

// Match reports whether topic matches filter.
func Match(filter, topic string) bool {
	if topic != "" && topic[0] == '$' && filter != "" && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		if fl == "#" {
			return true
		}
		tl, trest, tmore := strings.Cut(topic, "/")
		if fl != "+" && fl != tl {
			return false
		}
		if !fmore && !tmore {
			return true
		}
		if !tmore {
			// topic exhausted: "a/#" matches "a"
			return frest == "#"
		}
		if !fmore {
			return false
		}
		filter, topic = frest, trest
	}
}

// HasWildcard reports whether filter contains '+' or '#'.
func HasWildcard(filter string) bool { return strings.ContainsAny(filter, "+#") }

// Router maps topic filters to values. Lookups of exact (wildcard-free)
// filters are a map access; wildcard filters are held in a trie. A Router is
// built once and is safe for concurrent lookups; Add must not race Lookup.
type Router[V any] struct {
	exact map[string][]V
	root  *node[V]
	n     int
}

type node[V any] struct {
	children map[string]*node[V]
	plus     *node[V]
	hash     []V // values under "<prefix>/#"
	vals     []V // values whose filter ends here
}

// NewRouter returns an empty router.
func NewRouter[V any]() *Router[V] {
	return &Router[V]{exact: map[string][]V{}, root: &node[V]{}}
}

// Add registers v under filter (a shared-subscription prefix is stripped).
func (r *Router[V]) Add(filter string, v V) error {
	filter, _ = Filter(filter)
	if err := Validate(filter); err != nil {
		return err
	}
	r.n++
	if !HasWildcard(filter) {
		r.exact[filter] = append(r.exact[filter], v)
		return nil
	}
	n := r.root
	for _, l := range strings.Split(filter, "/") {
		switch l {
		case "#":
			n.hash = append(n.hash, v)
			return nil
		case "+":
			if n.plus == nil {
				n.plus = &node[V]{}
			}
			n = n.plus
		default:
			if n.children == nil {
				n.children = map[string]*node[V]{}
			}
			c := n.children[l]
			if c == nil {
				c = &node[V]{}
				n.children[l] = c
			}
			n = c
		}
	}
	n.vals = append(n.vals, v)
	return nil
}

// AddExact registers v under name matched literally (no wildcard or
// shared-subscription interpretation), for schemes whose addresses are not
// MQTT topic filters (Kafka topics, file names).
func (r *Router[V]) AddExact(name string, v V) {
	r.n++
	r.exact[name] = append(r.exact[name], v)
}

// Len reports how many filters were added.
func (r *Router[V]) Len() int { return r.n }

// Lookup appends to dst every value whose filter matches topic and returns
// the extended slice. Pass a reused dst to avoid allocation.
func (r *Router[V]) Lookup(dst []V, topic string) []V {
	dst = append(dst, r.exact[topic]...)
	if r.root.children == nil && r.root.plus == nil && r.root.hash == nil {
		return dst
	}
	dollar := topic != "" && topic[0] == '$'
	return r.root.lookup(dst, topic, true, dollar)
}

func (n *node[V]) lookup(dst []V, topic string, first, dollar bool) []V {
	wild := !(first && dollar)
	if wild {
		dst = append(dst, n.hash...)
	}
	l, rest, more := strings.Cut(topic, "/")
	if c := n.children[l]; c != nil {
		if more {
			dst = c.lookup(dst, rest, false, dollar)
		} else {
			dst = append(dst, c.vals...)
			dst = append(dst, c.hash...)
		}
	}
	if wild && n.plus != nil {
		if more {
			dst = n.plus.lookup(dst, rest, false, dollar)
		} else {
			dst = append(dst, n.plus.vals...)
			dst = append(dst, n.plus.hash...)
		}
	}
	return dst
}

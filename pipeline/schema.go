package pipeline

import (
	"fmt"
	"reflect"
	"strings"
)

// FieldType is the type of a field in a record schema.
type FieldType string

// Field types. Int is a JSON integer literal (int64 with the DSL's json),
// Float any number, Any a value of any type.
const (
	String FieldType = "string"
	Float  FieldType = "float"
	Int    FieldType = "int"
	Bool   FieldType = "bool"
	Object FieldType = "object"
	List   FieldType = "list"
	Any    FieldType = "any"
)

// FieldTypes lists the field types a schema accepts.
var FieldTypes = []FieldType{String, Float, Int, Bool, Object, List, Any}

// SchemaField is one field of a record schema.
type SchemaField struct {
	Name string
	Type FieldType
}

// Schema describes the fields a record's values have. It is optional: with
// one, expressions of the pipelines reading the record are type-checked at
// load against the known fields (a misspelled field is an error with "did
// you mean"); without one, they are checked when records arrive.
type Schema []SchemaField

// Lookup returns the type of the named field.
func (s Schema) Lookup(name string) (FieldType, bool) {
	for _, f := range s {
		if f.Name == name {
			return f.Type, true
		}
	}
	return "", false
}

// Names lists the fields.
func (s Schema) Names() []string {
	out := make([]string, len(s))
	for i, f := range s {
		out[i] = f.Name
	}
	return out
}

// ParseFieldType reads a field type name.
func ParseFieldType(s string) (FieldType, error) {
	for _, t := range FieldTypes {
		if string(t) == s {
			return t, nil
		}
	}
	names := make([]string, len(FieldTypes))
	for i, t := range FieldTypes {
		names[i] = string(t)
	}
	return "", fmt.Errorf("unknown field type %q (want %s)%s", s, strings.Join(names, ", "), DidYouMean(s, names))
}

// WithSchema declares the fields of the record's values (see Schema).
func (r *RecordSpec) WithSchema(fields ...SchemaField) *RecordSpec {
	r.Schema = append(Schema(nil), fields...)
	return r
}

// SchemaOf derives a schema from a Go struct type, the typed twin of a
// .flow schema: each exported field is named by its json tag (or its Go
// name) and typed by its kind (string; float32/64 as float; integers as
// int; bool; maps and structs as object; slices as list; anything else
// any). Fields tagged json:"-" are left out.
func SchemaOf[T any]() Schema {
	t := reflect.TypeFor[T]()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var s Schema
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Name
		if tag, ok := f.Tag.Lookup("json"); ok {
			n, _, _ := strings.Cut(tag, ",")
			if n == "-" {
				continue
			}
			if n != "" {
				name = n
			}
		}
		s = append(s, SchemaField{Name: name, Type: kindType(f.Type)})
	}
	return s
}

func kindType(t reflect.Type) FieldType {
	switch t.Kind() {
	case reflect.String:
		return String
	case reflect.Float32, reflect.Float64:
		return Float
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return Int
	case reflect.Bool:
		return Bool
	case reflect.Map, reflect.Struct:
		return Object
	case reflect.Slice, reflect.Array:
		return List
	}
	return Any
}

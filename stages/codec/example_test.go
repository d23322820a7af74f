package codec_test

import (
	"fmt"

	"github.com/aimdb-dev/aimdb-flow/stages/codec"
)

// A record decoded with JSON or MessagePack has the same shape, so a
// pipeline can switch codecs without touching its expressions. The
// registry's json is LazyJSON: an object decodes to a *codec.Object that
// reads fields on demand (Map gives the map[string]any).
func Example() {
	reg := codec.Default()
	fmt.Println(reg.Names())

	js, _ := reg.Lookup("json")
	v, err := js.Decode([]byte(`{"device":"d-17","temp":23.5,"seq":1}`))
	if err != nil {
		panic(err)
	}
	obj := v.(*codec.Object)
	temp, _ := obj.Field("temp")
	fmt.Printf("%T %v\n", temp, temp)
	fmt.Println(obj.Map()["device"])

	mp, _ := reg.Lookup("msgpack")
	packed, _ := mp.Encode(v)
	back, _ := mp.Decode(packed)
	out, _ := js.Encode(back)
	fmt.Printf("%d bytes msgpack -> %s\n", len(packed), out)

	_, err = js.Decode([]byte(`{"temp":23.5,}`))
	fmt.Println(err)
	// Output:
	// [json msgpack raw]
	// float64 23.5
	// d-17
	// 32 bytes msgpack -> {"device":"d-17","seq":1,"temp":23.5}
	// json: invalid character '}' looking for beginning of object key string at offset 13
}

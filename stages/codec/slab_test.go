package codec

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestDecodedValuesStayIntact decodes many documents from several
// goroutines (sharing pooled decoders and their slabs), keeps every value,
// and checks afterwards that no later decode overwrote an earlier value.
// Under -race it also shows the slab hand-off is free of data races.
func TestDecodedValuesStayIntact(t *testing.T) {
	const workers, perWorker = 4, 2000
	type kept struct {
		json, msgpack any
		want          map[string]any
	}
	results := make([][]kept, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				long := strings.Repeat(fmt.Sprint(w), 130+i%7) // bigger than slabMaxString
				want := map[string]any{
					"device": fmt.Sprintf("d-%d-%d", w, i), "temp": float64(i) + 0.25, "seq": float64(i),
					"esc": fmt.Sprintf("é\n%d", i), "long": long, "list": []any{float64(w), "x"},
				}
				doc := fmt.Sprintf(`{"device":"d-%d-%d","temp":%d.25,"seq":%d,"esc":"\u00e9\n%d","long":"%s","list":[%d,"x"]}`,
					w, i, i, i, i, long, w)
				jv, err := JSON{}.Decode([]byte(doc))
				if err != nil {
					t.Error(err)
					return
				}
				p, err := MsgPack{}.Encode(want)
				if err != nil {
					t.Error(err)
					return
				}
				mv, err := MsgPack{}.Decode(p)
				if err != nil {
					t.Error(err)
					return
				}
				results[w] = append(results[w], kept{jv, mv, want})
			}
		}(w)
	}
	wg.Wait()
	for w := range results {
		for i, k := range results[w] {
			if !sameValue(k.json, k.want) {
				t.Fatalf("worker %d doc %d (json): got %#v, want %#v", w, i, k.json, k.want)
			}
			if !sameValue(k.msgpack, k.want) {
				t.Fatalf("worker %d doc %d (msgpack): got %#v, want %#v", w, i, k.msgpack, k.want)
			}
		}
	}
}

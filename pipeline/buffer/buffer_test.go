package buffer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aimdb-dev/aimdb-flow/pipeline/buffer"
)

var kinds = []buffer.Config{
	{Kind: buffer.Ring, Size: 8},
	{Kind: buffer.Latest},
	{Kind: buffer.Mailbox},
	{Kind: buffer.Queue, Size: 8},
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// The conformance suite: properties every kind must have.
func TestConformance(t *testing.T) {
	for _, cfg := range kinds {
		t.Run(cfg.String(), func(t *testing.T) {
			t.Run("config round trip", func(t *testing.T) {
				b := buffer.New[int](cfg)
				if b.Config() != cfg {
					t.Fatalf("Config() = %v, want %v", b.Config(), cfg)
				}
				parsed, err := buffer.Parse(cfg.String())
				if err != nil || parsed != cfg {
					t.Fatalf("Parse(%q) = %v, %v", cfg.String(), parsed, err)
				}
			})
			t.Run("single value reaches a waiting reader", func(t *testing.T) {
				b := buffer.New[int](cfg)
				r := b.Subscribe()
				got := make(chan int)
				go func() {
					v, err := r.Recv(ctxT(t))
					if err != nil {
						t.Error(err)
					}
					got <- v
				}()
				time.Sleep(time.Millisecond) // let the reader park (either order must work)
				if err := b.Push(ctxT(t), 42); err != nil {
					t.Fatal(err)
				}
				if v := <-got; v != 42 {
					t.Fatalf("got %d", v)
				}
			})
			t.Run("recv honours context", func(t *testing.T) {
				b := buffer.New[int](cfg)
				r := b.Subscribe()
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				if _, err := r.Recv(ctx); !errors.Is(err, context.Canceled) {
					t.Fatalf("err = %v, want context.Canceled", err)
				}
			})
			t.Run("close drains then ErrClosed", func(t *testing.T) {
				b := buffer.New[int](cfg)
				r := b.Subscribe()
				if err := b.Push(ctxT(t), 7); err != nil {
					t.Fatal(err)
				}
				b.Close()
				b.Close() // idempotent
				if v, err := r.Recv(ctxT(t)); err != nil || v != 7 {
					t.Fatalf("after close got %d, %v; want the held value", v, err)
				}
				if _, err := r.Recv(ctxT(t)); !errors.Is(err, buffer.ErrClosed) {
					t.Fatalf("err = %v, want ErrClosed", err)
				}
				if err := b.Push(ctxT(t), 8); !errors.Is(err, buffer.ErrClosed) {
					t.Fatalf("push after close: %v", err)
				}
			})
			t.Run("close wakes a parked reader", func(t *testing.T) {
				b := buffer.New[int](cfg)
				r := b.Subscribe()
				done := make(chan error)
				go func() { _, err := r.Recv(ctxT(t)); done <- err }()
				time.Sleep(time.Millisecond)
				b.Close()
				if err := <-done; !errors.Is(err, buffer.ErrClosed) {
					t.Fatalf("err = %v", err)
				}
			})
			t.Run("try recv", func(t *testing.T) {
				b := buffer.New[int](cfg)
				r := b.Subscribe()
				if _, ok, err := r.TryRecv(); ok || err != nil {
					t.Fatalf("empty TryRecv = %v, %v", ok, err)
				}
				b.Push(ctxT(t), 1)
				if v, ok, err := r.TryRecv(); !ok || err != nil || v != 1 {
					t.Fatalf("TryRecv = %d, %v, %v", v, ok, err)
				}
			})
			t.Run("values arrive in order, never duplicated", func(t *testing.T) {
				b := buffer.New[int](cfg)
				r := b.Subscribe()
				const n = 20000
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 1; i <= n; i++ {
						if err := b.Push(ctxT(t), i); err != nil {
							t.Error(err)
							return
						}
					}
					b.Close()
				}()
				last, count := 0, 0
				for {
					v, err := r.Recv(ctxT(t))
					var lag *buffer.LagError
					if errors.As(err, &lag) {
						continue
					}
					if errors.Is(err, buffer.ErrClosed) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					if v <= last {
						t.Fatalf("got %d after %d", v, last)
					}
					last = v
					count++
				}
				wg.Wait()
				if last != n {
					t.Fatalf("last value %d, want %d (the newest value must always arrive)", last, n)
				}
				st := b.Stats()
				if st.Pushed != n || st.Delivered != uint64(count) {
					t.Fatalf("stats %+v, delivered %d", st, count)
				}
				if lost := uint64(n - count); lost != st.Dropped+st.Lagged {
					t.Fatalf("lost %d but counted dropped %d + lagged %d", lost, st.Dropped, st.Lagged)
				}
				if cfg.Kind.Lossless() && count != n {
					t.Fatalf("lossless buffer delivered %d of %d", count, n)
				}
			})
			t.Run("reader close unsubscribes", func(t *testing.T) {
				b := buffer.New[int](cfg)
				r := b.Subscribe()
				r.Close()
				if b.Stats().Readers != 0 {
					t.Fatal("reader still counted")
				}
				for i := 0; i < 100; i++ { // must not block even for a queue
					if err := b.Push(ctxT(t), i); err != nil {
						t.Fatal(err)
					}
				}
			})
		})
	}
}

func TestRingLagsOnceThenResumesFromOldest(t *testing.T) {
	b := buffer.New[int](buffer.Config{Kind: buffer.Ring, Size: 4})
	r := b.Subscribe()
	for i := 1; i <= 10; i++ {
		b.Push(ctxT(t), i)
	}
	_, err := r.Recv(ctxT(t))
	var lag *buffer.LagError
	if !errors.As(err, &lag) || lag.Missed != 6 {
		t.Fatalf("err = %v, want lag of 6", err)
	}
	for want := 7; want <= 10; want++ {
		v, err := r.Recv(ctxT(t))
		if err != nil || v != want {
			t.Fatalf("got %d, %v; want %d", v, err, want)
		}
	}
	if st := b.Stats(); st.Lagged != 6 {
		t.Fatalf("lagged = %d", st.Lagged)
	}
}

func TestRingReadersAreIndependent(t *testing.T) {
	b := buffer.New[int](buffer.Config{Kind: buffer.Ring, Size: 16})
	r1, r2 := b.Subscribe(), b.Subscribe()
	for i := 0; i < 5; i++ {
		b.Push(ctxT(t), i)
	}
	for _, r := range []buffer.Reader[int]{r1, r2} {
		for i := 0; i < 5; i++ {
			if v, _ := r.Recv(ctxT(t)); v != i {
				t.Fatalf("got %d want %d", v, i)
			}
		}
	}
}

func TestLatestNewReaderSeesCurrentAndCollapses(t *testing.T) {
	b := buffer.New[string](buffer.Config{Kind: buffer.Latest})
	b.Push(ctxT(t), "a")
	b.Push(ctxT(t), "b")
	r := b.Subscribe()
	if v, _ := r.Recv(ctxT(t)); v != "b" {
		t.Fatalf("new reader got %q, want current value b", v)
	}
	b.Push(ctxT(t), "c")
	b.Push(ctxT(t), "d")
	if v, _ := r.Recv(ctxT(t)); v != "d" {
		t.Fatalf("got %q, want d", v)
	}
	if st := b.Stats(); st.Dropped != 1 {
		t.Fatalf("dropped = %d, want 1 (c collapsed)", st.Dropped)
	}
}

func TestMailboxReadersCompete(t *testing.T) {
	b := buffer.New[int](buffer.Config{Kind: buffer.Mailbox})
	r1, r2 := b.Subscribe(), b.Subscribe()
	b.Push(ctxT(t), 1)
	if v, ok, _ := r1.TryRecv(); !ok || v != 1 {
		t.Fatal("first reader should take the value")
	}
	if _, ok, _ := r2.TryRecv(); ok {
		t.Fatal("second reader must not see a taken value")
	}
	b.Push(ctxT(t), 2)
	b.Push(ctxT(t), 3)
	if v, _, _ := r2.TryRecv(); v != 3 {
		t.Fatalf("got %d want 3", v)
	}
	if st := b.Stats(); st.Dropped != 1 {
		t.Fatalf("dropped = %d", st.Dropped)
	}
}

func TestQueueBlocksWriterUntilSlowestReader(t *testing.T) {
	b := buffer.New[int](buffer.Config{Kind: buffer.Queue, Size: 2})
	fast, slow := b.Subscribe(), b.Subscribe()
	b.Push(ctxT(t), 1)
	b.Push(ctxT(t), 2)
	fast.Recv(ctxT(t))
	fast.Recv(ctxT(t))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := b.Push(ctx, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("push into a full queue: %v, want it to block until the deadline", err)
	}
	pushed := make(chan error)
	go func() { pushed <- b.Push(ctxT(t), 3) }()
	if v, _ := slow.Recv(ctxT(t)); v != 1 {
		t.Fatal("slow reader lost a value")
	}
	if err := <-pushed; err != nil {
		t.Fatal(err)
	}
	for _, want := range []int{2, 3} {
		if v, _ := slow.Recv(ctxT(t)); v != want {
			t.Fatalf("got %d want %d", v, want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, s := range []string{"", "ring", "ring x", "ring 0", "latest 4", "pool 3", "queue -1"} {
		if _, err := buffer.Parse(s); err == nil {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
}

func TestNoAllocationsPerValue(t *testing.T) {
	for _, cfg := range kinds {
		b := buffer.New[[4]int64](cfg)
		r := b.Subscribe()
		ctx := context.Background()
		allocs := testing.AllocsPerRun(1000, func() {
			b.Push(ctx, [4]int64{1, 2, 3, 4})
			r.Recv(ctx)
		})
		if allocs != 0 {
			t.Errorf("%s: %.1f allocs per hand-off, want 0", cfg, allocs)
		}
	}
}

func ExampleNew() {
	ctx := context.Background()
	b := buffer.New[string](buffer.Config{Kind: buffer.Ring, Size: 1024})
	r := b.Subscribe()
	b.Push(ctx, "hello")
	v, _ := r.Recv(ctx)
	fmt.Println(v, b.Stats().Delivered)
	// Output: hello 1
}

func TestLast(t *testing.T) {
	for _, cfg := range kinds {
		t.Run(cfg.String(), func(t *testing.T) {
			b := buffer.New[int](cfg)
			if _, ok := b.Last(); ok {
				t.Fatal("Last before any push")
			}
			b.Push(ctxT(t), 1) // no reader yet
			if v, ok := b.Last(); !ok || v != 1 {
				t.Fatalf("Last = %d, %v", v, ok)
			}
			r := b.Subscribe()
			if v, _ := b.Last(); v != 1 {
				t.Fatalf("after subscribe Last = %d", v)
			}
			for i := 2; i <= 5; i++ {
				b.Push(ctxT(t), i)
				if v, _ := b.Last(); v != i {
					t.Fatalf("Last = %d, want %d", v, i)
				}
				r.TryRecv()
				if v, _ := b.Last(); v != i {
					t.Fatalf("after read Last = %d, want %d", v, i)
				}
			}
		})
	}
}

func TestRecvBatch(t *testing.T) {
	for _, cfg := range kinds {
		t.Run(cfg.String(), func(t *testing.T) {
			b := buffer.New[int](cfg)
			r := b.Subscribe()
			for i := 1; i <= 5; i++ {
				b.Push(ctxT(t), i)
			}
			dst := make([]int, 3)
			n, err := r.RecvBatch(ctxT(t), dst)
			if err != nil || n == 0 {
				t.Fatalf("RecvBatch = %d, %v", n, err)
			}
			if cfg.Kind == buffer.Ring || cfg.Kind == buffer.Queue {
				if n != 3 || dst[0] != 1 || dst[2] != 3 {
					t.Fatalf("got %v (%d)", dst[:n], n)
				}
				n, _ = r.RecvBatch(ctxT(t), dst)
				if n != 2 || dst[0] != 4 || dst[1] != 5 {
					t.Fatalf("second batch %v", dst[:n])
				}
			} else if n != 1 || dst[0] != 5 {
				t.Fatalf("single-slot kinds hand over the newest value: %v", dst[:n])
			}
			b.Close()
			if n, err := r.RecvBatch(ctxT(t), dst); n != 0 || !errors.Is(err, buffer.ErrClosed) {
				t.Fatalf("after close: %d, %v", n, err)
			}
		})
	}
	// A lag is reported alone, then values resume.
	b := buffer.New[int](buffer.Config{Kind: buffer.Ring, Size: 2})
	r := b.Subscribe()
	for i := 1; i <= 5; i++ {
		b.Push(ctxT(t), i)
	}
	dst := make([]int, 4)
	var lag *buffer.LagError
	if n, err := r.RecvBatch(ctxT(t), dst); n != 0 || !errors.As(err, &lag) || lag.Missed != 3 {
		t.Fatalf("want lag 3 first, got %d, %v", n, err)
	}
	if n, _ := r.RecvBatch(ctxT(t), dst); n != 2 || dst[0] != 4 {
		t.Fatalf("after lag: %v", dst[:n])
	}
}

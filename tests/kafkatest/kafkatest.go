// Package kafkatest runs an in-process Kafka-protocol cluster (franz-go's
// kfake) for tests, and offers small kafka-go helpers to create topics,
// produce, consume and inspect committed offsets. Every client speaks the
// real Kafka wire protocol over loopback TCP.
//
//	c := kafkatest.Start(t, kafkatest.Options{Topics: map[string]int{"in": 3}})
//	c.Produce(t, "in", kafkatest.Msg("k1", "hello"))
//	msgs := c.Consume(t, "in", 1, 5*time.Second)
//
// The cluster is stopped by t.Cleanup. With Options.Persist the cluster can
// be stopped and restarted on the same ports with its data intact, which is
// how tests simulate a broker that is down.
package kafkatest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Options configure a test cluster.
type Options struct {
	// Brokers is the number of brokers (default 1).
	Brokers int
	// Topics to create at start: name -> partition count.
	Topics map[string]int
	// Persist keeps the cluster's state in a temporary directory so that
	// Stop followed by Restart keeps topics, records and committed offsets.
	Persist bool
	// Extra kfake options (SASL users, TLS, ...).
	Extra []kfake.Opt
	// SASL, when set, is used by the harness's own clients (Produce,
	// Consume, Client); pair it with kfake.EnableSASL and kfake.Superuser
	// in Extra.
	SASL sasl.Mechanism
	// TLS, when set, is the client TLS configuration of the harness's own
	// clients; pair it with kfake.TLS(serverConfig) in Extra.
	TLS *tls.Config
}

// Cluster is a running (or stopped) in-process test cluster.
type Cluster struct {
	t     testing.TB
	opts  Options
	dir   string
	ports []int

	mu sync.Mutex
	c  *kfake.Cluster
}

// Start starts a cluster on free 127.0.0.1 ports and registers its shutdown
// with t.Cleanup.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Brokers <= 0 {
		opts.Brokers = 1
	}
	cl := &Cluster{t: t, opts: opts}
	if opts.Persist {
		cl.dir = t.TempDir()
	}
	for i := 0; i < opts.Brokers; i++ {
		cl.ports = append(cl.ports, freePort(t))
	}
	cl.start()
	t.Cleanup(cl.Stop)
	if len(opts.Topics) > 0 {
		names := make([]string, 0, len(opts.Topics))
		for n := range opts.Topics {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			cl.CreateTopic(t, n, opts.Topics[n])
		}
	}
	return cl
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("kafkatest: free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (cl *Cluster) start() {
	cl.t.Helper()
	kopts := []kfake.Opt{
		kfake.Ports(cl.ports...),
		// Listen on loopback only, on the chosen ports.
		kfake.ListenFn(func(network, address string) (net.Listener, error) {
			_, port, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			return listenRetry(network, net.JoinHostPort("127.0.0.1", port))
		}),
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
	}
	if cl.dir != "" {
		kopts = append(kopts, kfake.DataDir(cl.dir))
	}
	kopts = append(kopts, cl.opts.Extra...)
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		cl.t.Fatalf("kafkatest: start cluster: %v", err)
	}
	cl.mu.Lock()
	cl.c = c
	cl.mu.Unlock()
}

// listenRetry retries a listen for a short while: after Stop the port may
// still be held by the closing listener.
func listenRetry(network, addr string) (net.Listener, error) {
	var err error
	for i := 0; i < 50; i++ {
		var ln net.Listener
		if ln, err = net.Listen(network, addr); err == nil {
			return ln, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, err
}

// Addrs returns the brokers' host:port addresses.
func (cl *Cluster) Addrs() []string {
	out := make([]string, len(cl.ports))
	for i, p := range cl.ports {
		out[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	return out
}

// Endpoint returns the connector endpoint URL "kafka://h1:p1,h2:p2".
func (cl *Cluster) Endpoint() string {
	s := "kafka://"
	for i, a := range cl.Addrs() {
		if i > 0 {
			s += ","
		}
		s += a
	}
	return s
}

// Kfake returns the underlying kfake cluster (nil while stopped).
func (cl *Cluster) Kfake() *kfake.Cluster {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.c
}

// Stop shuts the cluster down. It is safe to call more than once.
func (cl *Cluster) Stop() {
	cl.mu.Lock()
	c := cl.c
	cl.c = nil
	cl.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// Restart starts a stopped cluster again on the same ports. Without
// Options.Persist the new cluster is empty.
func (cl *Cluster) Restart() {
	cl.t.Helper()
	cl.Stop()
	cl.start()
}

// Transport returns a fresh kafka-go transport for the cluster (with the
// harness's SASL mechanism, if any).
func (cl *Cluster) Transport() *kafkago.Transport {
	return &kafkago.Transport{SASL: cl.opts.SASL, TLS: cl.opts.TLS}
}

// Dialer returns a kafka-go dialer for the cluster.
func (cl *Cluster) Dialer() *kafkago.Dialer {
	return &kafkago.Dialer{Timeout: 10 * time.Second, DualStack: true, SASLMechanism: cl.opts.SASL, TLS: cl.opts.TLS}
}

// Client returns a kafka-go admin client with a fresh transport.
func (cl *Cluster) Client() *kafkago.Client {
	return &kafkago.Client{Addr: kafkago.TCP(cl.Addrs()...), Timeout: 10 * time.Second, Transport: cl.Transport()}
}

// CreateTopic creates a topic with the given number of partitions.
func (cl *Cluster) CreateTopic(t testing.TB, name string, partitions int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cl.Client().CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{
		{Topic: name, NumPartitions: partitions, ReplicationFactor: 1},
	}})
	if err != nil {
		t.Fatalf("kafkatest: create topic %s: %v", name, err)
	}
	if e := resp.Errors[name]; e != nil {
		t.Fatalf("kafkatest: create topic %s: %v", name, e)
	}
}

// Msg builds a message with a key and a value (and optional header pairs
// "k1", "v1", "k2", "v2", ...).
func Msg(key, value string, headers ...string) kafkago.Message {
	m := kafkago.Message{Value: []byte(value)}
	if key != "" {
		m.Key = []byte(key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		m.Headers = append(m.Headers, kafkago.Header{Key: headers[i], Value: []byte(headers[i+1])})
	}
	return m
}

// Writer returns a synchronous kafka-go writer for topic (acks=all, hash
// partitioning by key, small batches), with a fresh transport.
func (cl *Cluster) Writer(topic string) *kafkago.Writer {
	return &kafkago.Writer{
		Addr:         kafkago.TCP(cl.Addrs()...),
		Topic:        topic,
		Balancer:     &kafkago.Hash{},
		RequiredAcks: kafkago.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		BatchSize:    1000,
		Transport:    cl.Transport(),
	}
}

// Produce writes msgs to topic and fails the test on error.
func (cl *Cluster) Produce(t testing.TB, topic string, msgs ...kafkago.Message) {
	t.Helper()
	w := cl.Writer(topic)
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("kafkatest: produce to %s: %v", topic, err)
	}
}

// Consume reads topic from the beginning of every partition (no consumer
// group) until n messages arrived or timeout passed, and returns what it
// read. It fails the test if fewer than n arrived.
func (cl *Cluster) Consume(t testing.TB, topic string, n int, timeout time.Duration) []kafkago.Message {
	t.Helper()
	msgs, err := cl.ReadAll(topic, n, timeout)
	if err != nil {
		t.Fatalf("kafkatest: consume %s: %v", topic, err)
	}
	return msgs
}

// ReadAll reads topic from the beginning of every partition until n
// messages arrived (n <= 0: until every partition's end as of the call) or
// timeout passed. Messages are grouped by partition, in offset order.
func (cl *Cluster) ReadAll(topic string, n int, timeout time.Duration) ([]kafkago.Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	parts, err := cl.Partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	var (
		mu   sync.Mutex
		out  []kafkago.Message
		wg   sync.WaitGroup
		errs []error
	)
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	ends := map[int]int64{}
	if n <= 0 {
		for _, p := range parts {
			end, err := cl.EndOffset(ctx, topic, p)
			if err != nil {
				return nil, err
			}
			ends[p] = end
		}
	}
	for _, p := range parts {
		if n <= 0 && ends[p] == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: cl.Addrs(), Topic: topic, Partition: p,
				Dialer: cl.Dialer(), MaxWait: 500 * time.Millisecond, MaxBytes: 1 << 20})
			defer r.Close()
			for {
				m, err := r.ReadMessage(rctx)
				if err != nil {
					if rctx.Err() == nil || n > 0 {
						mu.Lock()
						if n > 0 && len(out) >= n {
							mu.Unlock()
							return
						}
						errs = append(errs, fmt.Errorf("partition %d: %w", p, err))
						mu.Unlock()
					}
					return
				}
				mu.Lock()
				out = append(out, m)
				full := n > 0 && len(out) >= n
				mu.Unlock()
				if full {
					rcancel()
					return
				}
				if n <= 0 && m.Offset+1 >= ends[p] {
					return
				}
			}
		}()
	}
	wg.Wait()
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Partition != out[j].Partition {
			return out[i].Partition < out[j].Partition
		}
		return out[i].Offset < out[j].Offset
	})
	if n > 0 && len(out) >= n {
		return out, nil
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("read %d of %d: %w", len(out), n, errors.Join(errs...))
	}
	return out, nil
}

// Partitions returns the partition ids of topic.
func (cl *Cluster) Partitions(ctx context.Context, topic string) ([]int, error) {
	md, err := cl.Client().Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, err
	}
	for _, tp := range md.Topics {
		if tp.Name != topic {
			continue
		}
		if tp.Error != nil {
			return nil, tp.Error
		}
		ids := make([]int, 0, len(tp.Partitions))
		for _, p := range tp.Partitions {
			ids = append(ids, p.ID)
		}
		sort.Ints(ids)
		return ids, nil
	}
	return nil, fmt.Errorf("topic %q not found", topic)
}

// EndOffset returns the next offset to be written on a partition.
func (cl *Cluster) EndOffset(ctx context.Context, topic string, partition int) (int64, error) {
	resp, err := cl.Client().ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{
		topic: {kafkago.LastOffsetOf(partition)},
	}})
	if err != nil {
		return 0, err
	}
	for _, po := range resp.Topics[topic] {
		if po.Partition == partition {
			if po.Error != nil {
				return 0, po.Error
			}
			return po.LastOffset, nil
		}
	}
	return 0, fmt.Errorf("partition %d of %s not found", partition, topic)
}

// Committed returns the committed offsets of group on topic, by partition
// (partitions without a commit are absent).
func (cl *Cluster) Committed(ctx context.Context, group, topic string) (map[int]int64, error) {
	parts, err := cl.Partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	resp, err := cl.Client().OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return nil, err
	}
	if resp.Error != nil {
		return nil, resp.Error
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			return nil, p.Error
		}
		if p.CommittedOffset >= 0 {
			out[p.Partition] = p.CommittedOffset
		}
	}
	return out, nil
}

// Lag returns, per partition, the end offset minus the committed offset of
// group (the whole partition when nothing is committed).
func (cl *Cluster) Lag(ctx context.Context, group, topic string) (map[int]int64, error) {
	committed, err := cl.Committed(ctx, group, topic)
	if err != nil {
		return nil, err
	}
	parts, err := cl.Partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := map[int]int64{}
	for _, p := range parts {
		end, err := cl.EndOffset(ctx, topic, p)
		if err != nil {
			return nil, err
		}
		out[p] = end - committed[p]
	}
	return out, nil
}

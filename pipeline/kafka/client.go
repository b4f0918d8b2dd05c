package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/cutover/cutover/internal/retry"
)

// Config says how to reach Kafka.
type Config struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// ClientID names cutover's connections in broker logs and quotas.
	ClientID string
	// DialTimeout bounds connecting to a broker; default 10s.
	DialTimeout time.Duration
	// TLS, when set, encrypts every connection (and may carry a client
	// certificate).
	TLS *tls.Config
	// SASL, when set, authenticates every connection (PLAIN, SCRAM, AWS
	// MSK IAM: franz-go's sasl packages).
	SASL sasl.Mechanism
}

func (c Config) opts() []kgo.Opt {
	dial := c.DialTimeout
	if dial <= 0 {
		dial = 10 * time.Second
	}
	id := c.ClientID
	if id == "" {
		id = "cutover"
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(id),
		kgo.DialTimeout(dial),
		// A topic cutover has just created has no leaders for a moment;
		// the default 5 s between metadata refreshes made every command
		// that creates its topic wait about that long before its first
		// write.
		kgo.MetadataMinAge(250 * time.Millisecond),
	}
	if c.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(c.TLS))
	}
	if c.SASL != nil {
		opts = append(opts, kgo.SASL(c.SASL))
	}
	return opts
}

// Connect makes a client and checks that a broker answers before ctx's
// deadline (or within 15s), so a wrong address fails at start with a
// message that says what to check instead of hanging in retries.
func Connect(ctx context.Context, c Config, extra ...kgo.Opt) (*kgo.Client, error) {
	if len(c.Brokers) == 0 {
		return nil, fmt.Errorf("kafka: no brokers configured (set --kafka-brokers or kafka.brokers)")
	}
	cl, err := kgo.NewClient(append(c.opts(), extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := cl.Ping(pingCtx); err != nil {
		cl.Close()
		var ke *kerr.Error
		switch {
		case errors.As(err, &ke) && (ke.Code == kerr.SaslAuthenticationFailed.Code || ke.Code == kerr.IllegalSaslState.Code ||
			ke.Code == kerr.UnsupportedSaslMechanism.Code):
			return nil, fmt.Errorf("kafka %s refused cutover's credentials: %w (check kafka.sasl.mechanism, username and the password in KAFKA_SASL_PASSWORD)",
				strings.Join(c.Brokers, ","), err)
		case strings.Contains(err.Error(), "tls:") || strings.Contains(err.Error(), "x509:"):
			return nil, fmt.Errorf("kafka %s: TLS failed: %w (check kafka.tls: the CA that signs the brokers' certificates, the client certificate, and that the listener speaks TLS)",
				strings.Join(c.Brokers, ","), err)
		}
		return nil, fmt.Errorf("kafka: no broker of %s answered: %w (check --kafka-brokers and that Kafka is running and reachable)",
			strings.Join(c.Brokers, ","), err)
	}
	return cl, nil
}

// waitProducerReady blocks until the cluster can hand out an idempotent
// producer ID. On a fresh cluster the coordinator that does this is still
// loading for a few seconds, and records produced meanwhile can fail; one
// InitProducerID of our own, retried until it succeeds, makes the first
// real produce safe. The ID it obtains is simply never used.
func waitProducerReady(ctx context.Context, cl *kgo.Client) error {
	return retry.For(ctx, 2*time.Minute, func() error {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.ProducerID = -1
		req.ProducerEpoch = -1
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return retry.Permanent(ctx.Err())
		case kerr.IsRetriable(err):
			return err
		}
		return retry.Permanent(fmt.Errorf("kafka cannot give cutover an idempotent producer ID: %w (grant IDEMPOTENT_WRITE on the cluster)", err))
	}, nil, retry.Initial(100*time.Millisecond), retry.Max(time.Minute))
}

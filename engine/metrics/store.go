package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// StoreHealth is the store's state at a scrape: whether it answered a ping, and whether
// the in-memory revocation list is current.
type StoreHealth struct {
	Up                 bool
	RevocationsCurrent bool
}

// storeScrapeWait bounds the ping a scrape makes, below Prometheus's default scrape
// timeout, so that a store that hangs shows as down rather than failing the scrape.
const storeScrapeWait = 2 * time.Second

// WatchStore reports the store's health at every scrape as callgate_store_up and
// callgate_store_revocations_current (1 or 0). health pings the store (engine.StoreStatus);
// call WatchStore once, when the gateway has a store.
func (m *Metrics) WatchStore(health func(context.Context) StoreHealth) {
	m.reg.MustRegister(&storeCollector{health: health})
}

var (
	storeUpDesc          = prometheus.NewDesc("callgate_store_up", "Whether the store answered a ping at this scrape (1) or not (0).", nil, nil)
	storeRevocationsDesc = prometheus.NewDesc("callgate_store_revocations_current", "Whether the in-memory revocation list is current (1) or stale while the store cannot be reached (0).", nil, nil)
)

type storeCollector struct {
	health func(context.Context) StoreHealth
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- storeUpDesc
	ch <- storeRevocationsDesc
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), storeScrapeWait)
	defer cancel()
	h := c.health(ctx)
	ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, bit(h.Up))
	ch <- prometheus.MustNewConstMetric(storeRevocationsDesc, prometheus.GaugeValue, bit(h.RevocationsCurrent))
}

func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

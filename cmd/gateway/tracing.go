package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/callgate/callgate/config"
	"github.com/callgate/callgate/engine/clientaddr"
	"github.com/callgate/callgate/engine/telemetry"
)

// setupTelemetry starts the OpenTelemetry tracing the OTEL_* environment asks for; nil
// when it asks for none (docs/operations.md, "Tracing with OpenTelemetry"). An incoming
// traceparent is honoured only from the trusted proxies (proxy.trusted_proxies), the same
// peers whose X-Forwarded-* headers the gateway believes.
func setupTelemetry(ctx context.Context, cfg config.Config, getenv func(string) string) (*telemetry.Telemetry, error) {
	o := telemetry.Options{Getenv: getenv, Version: version}
	// config.Validate has refused a malformed CIDR already; with no resolver no one is
	// trusted, which is the safe side.
	if addrs, err := clientaddr.New(cfg.Proxy.TrustedProxies); err == nil && len(cfg.Proxy.TrustedProxies) > 0 {
		o.TrustParent = func(r *http.Request) bool { return addrs.IsTrusted(r.RemoteAddr) }
	}
	return telemetry.Setup(ctx, o)
}

// telemetryComponent flushes the spans still buffered when serve stops. Nothing to run.
func telemetryComponent(tel *telemetry.Telemetry, logger *slog.Logger) component {
	return component{name: "telemetry", close: func() {
		if err := tel.Close(); err != nil {
			logger.Warn("tracing: spans lost at shutdown", "error", err.Error())
		}
	}}
}

// storeSystem names the store's backend in its spans.
func storeSystem(setting string) string {
	if setting == "" || setting == config.StoreBolt {
		return "bolt"
	}
	return "redis"
}

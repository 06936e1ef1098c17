//go:build tools

// Package jaegertool pins Jaeger v2 (the collector-based all-in-one binary), the tracing backend
// the OpenTelemetry tests export to and read traces back from through its query API. It lives in
// a module of its own so that the gateway's go.mod never carries Jaeger's dependency graph.
package jaegertool

import _ "github.com/jaegertracing/jaeger/cmd/jaeger"

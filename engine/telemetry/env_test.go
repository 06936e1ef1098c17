package telemetry

import (
	"context"
	"strings"
	"testing"
)

func TestReadEnv(t *testing.T) {
	tests := []struct {
		name         string
		env          map[string]string
		off          bool
		wantErr      string
		wantEndpoint string
		wantProtocol string
		wantService  string
	}{
		{name: "nothing set is off", env: map[string]string{"OTEL_SERVICE_NAME": "x"}, off: true},
		{name: "disabled wins", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "TRUE"}, off: true},
		{name: "exporter none", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, off: true},
		{name: "base endpoint gains the signal path", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"},
			wantEndpoint: "http://c:4318/v1/traces", wantProtocol: "http/protobuf", wantService: "callgate"},
		{name: "traces endpoint used as is, and wins", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://b/otlp", "OTEL_SERVICE_NAME": "edge"},
			wantEndpoint: "https://b/otlp", wantProtocol: "http/protobuf", wantService: "edge"},
		{name: "grpc keeps the base", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
			wantEndpoint: "http://c:4317", wantProtocol: "grpc", wantService: "callgate"},
		{name: "service name from resource attributes", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs,deployment.environment=prod"},
			wantEndpoint: "http://c/v1/traces", wantProtocol: "http/protobuf", wantService: "from-attrs"},
		{name: "bad protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"}, wantErr: "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{name: "endpoint without scheme", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, wantErr: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "bad sampler", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_TRACES_SAMPLER": "sometimes"}, wantErr: "OTEL_TRACES_SAMPLER"},
		{name: "bad ratio", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, wantErr: "OTEL_TRACES_SAMPLER_ARG"},
		{name: "malformed headers name the variable, not the value", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_HEADERS": "api-key-s3cr3t"}, wantErr: "OTEL_EXPORTER_OTLP_HEADERS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := readEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one naming %s", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cr3t") {
					t.Fatalf("error %q quotes the variable's value", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v", err)
			}
			if tt.off {
				if e != nil {
					t.Fatalf("got tracing on (%+v), want off", e)
				}
				return
			}
			if e == nil {
				t.Fatal("got tracing off, want on")
			}
			if e.endpoint != tt.wantEndpoint || e.protocol != tt.wantProtocol || e.serviceName != tt.wantService {
				t.Errorf("got endpoint %q protocol %q service %q, want %q %q %q", e.endpoint, e.protocol, e.serviceName, tt.wantEndpoint, tt.wantProtocol, tt.wantService)
			}
		})
	}
}

func TestParsePairs(t *testing.T) {
	got, err := parsePairs(" authorization=Bearer%20abc , x-tenant=t1,")
	if err != nil {
		t.Fatal(err)
	}
	if got["authorization"] != "Bearer abc" || got["x-tenant"] != "t1" || len(got) != 2 {
		t.Errorf("got %v, want authorization=Bearer abc and x-tenant=t1", got)
	}
}

// TestOffIsPassThrough: a nil *Telemetry (tracing off) hands back what it was given.
func TestOffIsPassThrough(t *testing.T) {
	tel, err := Setup(context.Background(), Options{Getenv: func(string) string { return "" }})
	if err != nil || tel != nil {
		t.Fatalf("Setup with no environment: got %v, %v; want nil, nil", tel, err)
	}
	if tel.Tracer() != nil {
		t.Error("Tracer with tracing off is not nil: every generation would serialise its calls")
	}
	if tel.Transport(nil) != nil || tel.Store(nil, "bolt") != nil || tel.LogHandler(nil) != nil {
		t.Error("with tracing off a wrapper is not the value it was given")
	}
}

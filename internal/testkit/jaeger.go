package testkit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// JaegerBinary returns the pinned Jaeger v2 binary (CALLGATE_JAEGER, else
// testdata/jaeger/bin/jaeger), failing in CI and skipping elsewhere when it is missing.
func JaegerBinary(t testing.TB, repoRoot string) string {
	t.Helper()
	return peerBinary(t, repoRoot, "CALLGATE_JAEGER", "jaeger", "Jaeger")
}

// Jaeger is one running Jaeger v2 with in-memory storage: the OTLP receiver spans are sent
// to, and the query API they are read back from.
type Jaeger struct {
	OTLPHTTP string // http://127.0.0.1:<port>, the base of OTLP/HTTP (…/v1/traces)
	OTLPGRPC string // http://127.0.0.1:<port>
	Query    string // http://127.0.0.1:<port>, the query API (/api/traces/{id})
}

// StartJaeger runs Jaeger with testdata/jaeger/config.yaml until the test ends and returns
// once its query API answers. Every port is a free loopback one.
func StartJaeger(t testing.TB, binary, repoRoot string) *Jaeger {
	t.Helper()
	ports := map[string]int{}
	for _, name := range []string{"JAEGER_OTLP_HTTP_PORT", "JAEGER_OTLP_GRPC_PORT", "JAEGER_QUERY_PORT", "JAEGER_QUERY_GRPC_PORT", "JAEGER_HEALTH_PORT"} {
		ports[name] = FreePort(t, false)
	}
	j := &Jaeger{
		OTLPHTTP: fmt.Sprintf("http://127.0.0.1:%d", ports["JAEGER_OTLP_HTTP_PORT"]),
		OTLPGRPC: fmt.Sprintf("http://127.0.0.1:%d", ports["JAEGER_OTLP_GRPC_PORT"]),
		Query:    fmt.Sprintf("http://127.0.0.1:%d", ports["JAEGER_QUERY_PORT"]),
	}
	config, err := filepath.Abs(filepath.Join(repoRoot, "testdata", "jaeger", "config.yaml"))
	if err != nil {
		t.Fatalf("jaeger config: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, binary, "--config", config)
	cmd.Env = os.Environ()
	for name, port := range ports {
		cmd.Env = append(cmd.Env, name+"="+strconv.Itoa(port))
	}
	runPeer(t, "jaeger", cmd, cancel, j.Query+"/api/services")
	return j
}

// JaegerTrace is one trace as the query API returns it (GET /api/traces/{id}).
type JaegerTrace struct {
	TraceID   string                   `json:"traceID"`
	Spans     []JaegerSpan             `json:"spans"`
	Processes map[string]JaegerProcess `json:"processes"`
}

// JaegerSpan is one span of a JaegerTrace.
type JaegerSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"` // CHILD_OF, FOLLOWS_FROM
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags      []JaegerTag `json:"tags"`
	ProcessID string      `json:"processID"`
	Duration  int64       `json:"duration"` // microseconds
}

// JaegerTag is one attribute of a span or process.
type JaegerTag struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

// JaegerProcess is the resource that sent a span.
type JaegerProcess struct {
	ServiceName string      `json:"serviceName"`
	Tags        []JaegerTag `json:"tags"`
}

// Parent is the span's parent in its own trace, or "".
func (s JaegerSpan) Parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" && r.TraceID == s.TraceID {
			return r.SpanID
		}
	}
	return ""
}

// Tag is the value of the span's attribute key as text, or "".
func (s JaegerSpan) Tag(key string) string {
	for _, tg := range s.Tags {
		if tg.Key == key {
			return fmt.Sprint(tg.Value)
		}
	}
	return ""
}

// Trace reads one trace by its id; found is false while Jaeger does not have it (yet).
func (j *Jaeger) Trace(ctx context.Context, traceID string) (tr JaegerTrace, found bool, err error) {
	var body struct {
		Data []JaegerTrace `json:"data"`
	}
	status, err := j.get(ctx, "/api/traces/"+traceID, &body)
	if err != nil || status == http.StatusNotFound || len(body.Data) == 0 {
		return tr, false, err
	}
	if status != http.StatusOK {
		return tr, false, fmt.Errorf("GET /api/traces/%s: status %d", traceID, status)
	}
	return body.Data[0], true, nil
}

// Traces lists the traces of a service (at most limit, newest first).
func (j *Jaeger) Traces(ctx context.Context, service string, limit int) ([]JaegerTrace, error) {
	var body struct {
		Data []JaegerTrace `json:"data"`
	}
	status, err := j.get(ctx, fmt.Sprintf("/api/traces?service=%s&limit=%d&lookback=1h", service, limit), &body)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK && status != http.StatusNotFound {
		return nil, fmt.Errorf("GET /api/traces?service=%s: status %d", service, status)
	}
	return body.Data, nil
}

func (j *Jaeger) get(ctx context.Context, path string, into any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.Query+path, nil)
	if err != nil {
		return 0, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusOK {
		if err := json.NewDecoder(res.Body).Decode(into); err != nil {
			return res.StatusCode, fmt.Errorf("decode %s: %w", path, err)
		}
	}
	return res.StatusCode, nil
}

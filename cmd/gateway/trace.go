package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/callgate/callgate/engine/inspect"
)

const traceUsage = `Usage: gateway trace [flags]

Follows a running gateway's inspector in the terminal: every auth request, proxied request
and forward-auth check as it happens, with each callback in order (its trigger, duration
and the scripts version that ran it, or its error at file:line:col) and what the core did.
The gateway must run with --dev, or with inspector.enabled (then pass its credential).
Arguments and results are in --json's output only; secrets are redacted by the gateway.

Flags:
`

func (c *cli) runTrace(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("trace", flag.ContinueOnError)
	gatewayURL := fs.String("url", "http://localhost:3000", "the gateway's URL")
	token := fs.String("token", "", "the inspector's admin credential (default $"+inspectorTokenEnv+")")
	asJSON := fs.Bool("json", false, "print each event as one line of JSON, arguments and results included")
	rest, err := c.parseFlags(fs, traceUsage, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return c.usageError(fs, traceUsage, "trace takes no arguments, got %q", rest)
	}
	if *token == "" {
		*token = c.getenv(inspectorTokenEnv)
	}
	f := tracer{out: c.stdout, url: strings.TrimSuffix(*gatewayURL, "/") + inspect.EventsPath, token: *token, json: *asJSON}
	return f.follow(ctx)
}

// tracer follows the event stream, reconnecting from the last event it printed, as a
// browser's EventSource would, until ctx ends.
type tracer struct {
	out   io.Writer
	url   string
	token string
	json  bool
	last  uint64
}

// errRefused is an answer no retry will change (off, refused): trace stops on it.
var errRefused = errors.New("refused")

func (f *tracer) follow(ctx context.Context) error {
	for {
		err := f.stream(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errRefused) {
			return err
		}
		fmt.Fprintf(f.out, "-- %v; reconnecting\n", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
}

func (f *tracer) stream(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", errRefused, err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if f.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	if f.last > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(f.last, 10))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", f.url, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return fmt.Errorf("%w: %s answered %s: %s", errRefused, f.url, res.Status, strings.TrimSpace(string(body)))
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var e inspect.Event
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			continue
		}
		f.last = e.ID
		if f.json {
			fmt.Fprintln(f.out, data)
			continue
		}
		if line := traceLine(e); line != "" {
			fmt.Fprintln(f.out, line)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read the event stream: %w", err)
	}
	return errors.New("the gateway ended the event stream")
}

// traceLine is one event for a person: the flow's number, then what happened.
func traceLine(e inspect.Event) string {
	at := e.Time.Local().Format("15:04:05.000")
	switch e.Type {
	case "flow":
		return fmt.Sprintf("%s #%d %s %s %s", at, e.Flow, e.Start.Kind, e.Start.Method, e.Start.Route)
	case "callback":
		c := e.Callback
		s := fmt.Sprintf("%s #%d   %s", at, e.Flow, c.Name)
		if c.Trigger != "" {
			s += " (trigger " + c.Trigger + ")"
		}
		s += fmt.Sprintf(" %.2f ms, scripts %s", c.DurationMs, c.Generation)
		if c.Error != nil {
			s += fmt.Sprintf(": %s: %s", c.Error.Kind, c.Error.Message)
			if c.Error.File != "" {
				s += fmt.Sprintf(" at %s:%d:%d", c.Error.File, c.Error.Line, c.Error.Column)
			}
		}
		return s
	case "core":
		return fmt.Sprintf("%s #%d   core %s: %s", at, e.Flow, e.Core.What, e.Core.Summary)
	case "end":
		return fmt.Sprintf("%s #%d answered %d in %.2f ms", at, e.Flow, e.Start.Status, e.Start.DurationMs)
	}
	return ""
}

package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	Inputs []struct {
		Name     string `json:"name"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	Panels []dashboardPanel `json:"panels"`
}

type dashboardPanel struct {
	Title      string `json:"title"`
	Type       string `json:"type"`
	Datasource struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr       string `json:"expr"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
}

var metricName = regexp.MustCompile(`\bcallgate_[a-z0-9_]+\b`)

// TestGrafanaDashboardMatchesMetrics reads docs/grafana/callgate.json and checks every
// metric each panel queries against what a running gateway exports after traffic that
// makes every series exist (a sign-in, a refused one, a thrown callback, a timed-out one,
// a session read): a metric renamed or dropped fails here, not on an operator's screen.
func TestGrafanaDashboardMatchesMetrics(t *testing.T) {
	raw, err := os.ReadFile(repoPath("docs", "grafana", "callgate.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("docs/grafana/callgate.json is not JSON: %v", err)
	}
	if len(d.Inputs) != 1 || d.Inputs[0].Name != "DS_PROMETHEUS" || d.Inputs[0].PluginID != "prometheus" {
		t.Errorf("the dashboard's inputs are %+v, want the one Prometheus datasource DS_PROMETHEUS", d.Inputs)
	}

	gw, _ := tracedGateway(t, nil, "--config", writeConfig(t, "script:\n  timeouts: { authorize: 30s, jwt: 300ms }\n"))
	signedInClient(t, gw)
	for _, user := range []struct{ name, password string }{{"jatin", "wrong"}, {"throw", "x"}, {"loop", "x"}} {
		if res := signInWithCredentials(t, newBrowserClient(t), gw, user.name, user.password); res.Status == http.StatusOK {
			t.Fatalf("sign in as %s: got 200, want a refusal", user.name)
		}
	}
	res, err := http.Get(gw.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	exported := map[string]bool{}
	for line := range strings.SplitSeq(string(body), "\n") {
		if name, _, ok := strings.Cut(line, "{"); ok && !strings.HasPrefix(line, "#") {
			exported[name] = true
		} else if name, _, ok := strings.Cut(line, " "); ok && !strings.HasPrefix(line, "#") {
			exported[name] = true
		}
	}

	var queried int
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource.UID != "${DS_PROMETHEUS}" || p.Datasource.UID != "${DS_PROMETHEUS}" {
				t.Errorf("panel %q: datasource %q, want ${DS_PROMETHEUS}", p.Title, tg.Datasource.UID)
			}
			names := metricName.FindAllString(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q reads no callgate metric", p.Title, tg.Expr)
			}
			for _, n := range names {
				queried++
				if !exported[n] {
					t.Errorf("panel %q queries %s, which the gateway does not export; it exports %v", p.Title, n, callgateNames(exported))
				}
			}
		}
	}
	if queried == 0 {
		t.Fatal("the dashboard queries no metric")
	}
}

func callgateNames(m map[string]bool) []string {
	var out []string
	for n := range m {
		if strings.HasPrefix(n, "callgate_") {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

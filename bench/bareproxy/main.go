// Command bareproxy is the yardstick of bench/proxy.sh: a small upstream app, and a bare
// httputil.ReverseProxy with no authentication in front of it, tuned as callgate's proxy is
// (keep-alive transport, 256 idle connections per host, pooled 32 KiB copy buffers), so the
// benchmark measures what callgate adds and nothing else.
//
//	bareproxy -mode upstream -listen 127.0.0.1:9001
//	bareproxy -mode proxy -listen 127.0.0.1:9002 -to http://127.0.0.1:9001
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
	"time"
)

func main() {
	mode := flag.String("mode", "upstream", "upstream or proxy")
	listen := flag.String("listen", "127.0.0.1:9001", "address to listen on")
	to := flag.String("to", "", "upstream URL (proxy mode)")
	flag.Parse()
	var h http.Handler
	switch *mode {
	case "upstream":
		// About the size of a small JSON API answer; it echoes the user the gateway names.
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"ok":true,"user":%q,"path":%q,"pad":"%s"}`, r.Header.Get("X-Callgate-User"), r.URL.Path,
				"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
		})
	case "proxy":
		u, err := url.Parse(*to)
		if err != nil || u.Host == "" {
			log.Fatalf("bareproxy: -to %q is not a URL", *to)
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 256
		t.MaxIdleConns = 256
		h = &httputil.ReverseProxy{
			Transport:  t,
			BufferPool: &bufferPool{pool: sync.Pool{New: func() any { return new([32 << 10]byte) }}},
			// wrk closes its connections mid-request when a run ends; that is not news.
			ErrorLog: log.New(io.Discard, "", 0),
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(u)
				pr.SetXForwarded()
			},
		}
	default:
		fmt.Fprintf(os.Stderr, "bareproxy: unknown mode %q\n", *mode)
		os.Exit(2)
	}
	srv := &http.Server{Addr: *listen, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// bufferPool reuses ReverseProxy's 32 KiB body-copy buffers, as callgate's proxy does.
type bufferPool struct{ pool sync.Pool }

func (b *bufferPool) Get() []byte { return b.pool.Get().(*[32 << 10]byte)[:] }

func (b *bufferPool) Put(buf []byte) {
	if len(buf) == 32<<10 {
		b.pool.Put((*[32 << 10]byte)(buf))
	}
}

package inspect

import "net/http"

// StartRequest begins a flow for an HTTP request: the request that carries it, and a
// writer that remembers the answer's status for EndRequest. On a nil inspector it returns
// w and r as they are and a nil flow.
func (in *Inspector) StartRequest(w http.ResponseWriter, r *http.Request, kind Kind, route string) (http.ResponseWriter, *http.Request, *Flow) {
	if in == nil {
		return w, r, nil
	}
	ctx, f := in.Start(r.Context(), kind, r.Method, route, r.Host)
	return &statusWriter{ResponseWriter: w, status: http.StatusOK}, r.WithContext(ctx), f
}

// EndRequest ends f with the status the writer StartRequest returned answered.
func EndRequest(w http.ResponseWriter, f *Flow) {
	if f == nil {
		return
	}
	status := http.StatusOK
	if sw, ok := w.(*statusWriter); ok {
		status = sw.status
	}
	f.End(status)
}

// statusWriter remembers the status; Flush and Unwrap keep streamed answers and
// http.ResponseController working through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Package reqbody bounds how long a client may take to send a request body. The server has
// no ReadTimeout (it would also cut WebSockets, server-sent events and long uploads), so
// without a deadline on the body alone a client that sends its headers and then one byte a
// minute holds a goroutine for as long as it likes. The auth routes and the reverse proxy
// both use it.
package reqbody

import (
	"io"
	"net/http"
	"time"
)

// LimitTime puts a read deadline of timeout, on the wall clock, on r's body. The deadline
// is lifted once the body has been read to its end: after that net/http reads the
// connection in the background to notice a client going away, and an expired deadline
// there would cancel the request's context while the handler still runs. A body that is
// never read to its end keeps the deadline, so net/http's own draining of it after the
// handler is bounded too. Nothing is done for a request without a body, a timeout of 0, or
// a ResponseWriter without deadlines (a test recorder).
func LimitTime(w http.ResponseWriter, r *http.Request, timeout time.Duration) {
	if timeout <= 0 || r.Body == nil || r.Body == http.NoBody {
		return
	}
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return
	}
	r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
}

// deadlineBody lifts the read deadline when the body has been read to its end.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

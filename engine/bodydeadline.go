package engine

import (
	"errors"
	"os"
)

// errBodyTimeout is answered with 408: the client did not send its body in time.
var errBodyTimeout = errors.New("request body not received in time")

// bodyError maps a failed body read to what the client is told: 408 when the deadline cut
// it off, else the error itself.
func bodyError(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return errBodyTimeout
	}
	return err
}

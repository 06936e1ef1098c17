//go:build !linux

package main

import (
	"errors"
	"net"
	"os"
)

// peerUID is not known off Linux: the socket's mode (0600) is the only check there.
func peerUID(net.Conn) (int, error) { return -1, errors.ErrUnsupported }

// fileOwner is not known off Linux.
func fileOwner(os.FileInfo) (int, bool) { return -1, false }

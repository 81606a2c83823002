package config

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
)

// Ports chosen by FreePort lie in [portLow, portHigh): below the ephemeral
// range Linux gives outgoing connections (32768 and up by default), so a
// port written into a configuration is not taken by a connection later.
const portLow, portHigh = 20000, 32000

// FreePort returns a TCP port that is free on 127.0.0.1 now, chosen at
// random below the ephemeral range. skip, when not nil, reports ports
// already handed out, so that several calls give different ports.
func FreePort(skip func(int) bool) (int, error) {
	for range 1000 {
		p := portLow + rand.IntN(portHigh-portLow)
		if skip != nil && skip(p) {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		_ = l.Close()
		return p, nil
	}
	return 0, errors.New("no free TCP port found")
}

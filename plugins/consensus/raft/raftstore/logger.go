package raftstore

import (
	"fmt"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// badgerLogger forwards badger's logs to an hclog.Logger, one level lower
// than badger's own (its informational messages are chatty).
type badgerLogger struct {
	l hclog.Logger
}

func (b badgerLogger) Errorf(format string, args ...any) {
	b.l.Error(strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func (b badgerLogger) Warningf(format string, args ...any) {
	b.l.Warn(strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func (b badgerLogger) Infof(format string, args ...any) {
	if b.l.IsDebug() {
		b.l.Debug(strings.TrimSpace(fmt.Sprintf(format, args...)))
	}
}

func (b badgerLogger) Debugf(format string, args ...any) {
	if b.l.IsTrace() {
		b.l.Trace(strings.TrimSpace(fmt.Sprintf(format, args...)))
	}
}
